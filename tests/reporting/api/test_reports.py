"""Reports read back, amended, reviewed and listed through the reporting service's HTTP API, on the real Kafka and
MongoDB: every version kept, the province office's decision with its event (no personal data), the listing, and
compliance counting a returned report as not yet done until it is submitted again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.reporting.api.schemas import Report, ReportListing
from shared.contracts.envelope import Envelope
from shared.contracts.events import REPORTS, ReportAmended
from shared.identity import Identity
from shared.settings import ServiceSettings
from tests.fixtures import eventually, read_topic
from tests.reporting.helpers import Harness, at, headers, publish, running, unit_event

C1 = Identity(subject="c1-admin", role="unit_admin", unit_id="C1", display_name="石家庄管理员")
K1 = Identity(subject="k1-admin", role="unit_admin", unit_id="K1", display_name="鹿泉管理员")
K2 = Identity(subject="k2-admin", role="unit_admin", unit_id="K2")
P = Identity(subject="p-admin", role="province_admin", display_name="省科协办公室")


@pytest.fixture(scope="module")
async def harness(settings: ServiceSettings) -> AsyncIterator[Harness]:
    async with running(settings) as started:
        await publish(
            settings,
            [
                unit_event("P", "province_corps", []),
                unit_event("C1", "city_detachment", ["P"], city="石家庄市"),
                unit_event("K1", "county_team", ["P", "C1"], city="石家庄市"),
                unit_event("K2", "county_team", ["P", "C1"], city="石家庄市"),
            ],
        )

        async def known() -> Any:
            return await started.stats("K2")

        await eventually(known)
        yield started


async def call(harness: Harness, method: str, url: str, who: Identity, **kwargs: Any) -> Any:
    return await harness.client.request(method, url, headers=headers(harness.settings, who), **kwargs)


async def test_an_action_plan_through_return_amendment_and_acceptance(harness: Harness) -> None:
    harness.app.state.clock = lambda: at(2026, 4, 25)
    body = {"unit_id": "K1", "year": 2026, "text": "全年开展活动12次", "attachment_links": ["https://x.cn/a1.xlsx"]}
    assert (await call(harness, "POST", "/action-plans", K1, json=body)).status_code == 201

    read = await call(harness, "GET", "/action-plans/K1/2026", C1)  # the unit above reads it whole
    assert read.status_code == 200, read.text
    plan = Report.model_validate(read.json())
    assert (plan.status, plan.version, plan.current.text) == ("submitted", 1, "全年开展活动12次")
    assert plan.current.attachment_links == ["https://x.cn/a1.xlsx"]
    assert (await call(harness, "GET", "/action-plans/K1/2026", K2)).status_code == 404  # beside it
    assert (await call(harness, "GET", "/action-plans/K1/2025", K1)).json()["code"] == "report_not_found"
    bad = await call(harness, "GET", "/action-plans/K1/twenty", K1)
    assert (bad.status_code, bad.json()["code"]) == (422, "bad_year")

    review = {"decision": "return", "version": 1, "comment": "请补充各季度活动安排"}
    refused = await call(harness, "POST", "/action-plans/K1/2026/review", C1, json=review)
    assert refused.status_code == 403  # only the province office reviews
    no_reason = await call(harness, "POST", "/action-plans/K1/2026/review", P, json={**review, "comment": ""})
    assert (no_reason.status_code, no_reason.json()["code"]) == (422, "comment_required")
    returned = await call(harness, "POST", "/action-plans/K1/2026/review", P, json=review)
    assert returned.status_code == 200, returned.text
    assert returned.json()["status"] == "returned" and returned.json()["reviews"][0]["comment"] == review["comment"]

    harness.app.state.clock = lambda: at(2026, 4, 28)
    amend = {"text": "全年开展活动12次，每季度3次", "note": "已补充季度安排"}
    amended = await call(harness, "POST", "/action-plans/K1/2026/versions", K1, json=amend)
    assert amended.status_code == 201, amended.text
    plan = Report.model_validate(amended.json())
    assert (plan.version, plan.status, plan.current.note) == (2, "submitted", "已补充季度安排")
    assert [v.text for v in plan.versions] == ["全年开展活动12次", "全年开展活动12次，每季度3次"]
    assert plan.current.submitted_by_name == "鹿泉管理员"

    stale = await call(harness, "POST", "/action-plans/K1/2026/review", P, json={"decision": "accept", "version": 1})
    assert (stale.status_code, stale.json()["code"]) == (409, "stale_version")
    accepted = await call(harness, "POST", "/action-plans/K1/2026/review", P, json={"decision": "accept", "version": 2})
    assert accepted.json()["status"] == "accepted"
    closed = await call(harness, "POST", "/action-plans/K1/2026/versions", K1, json=amend)
    assert (closed.status_code, closed.json()["code"]) == (409, "report_accepted")

    records = await read_topic(harness.settings.kafka_bootstrap, harness.settings.topic(REPORTS), expect=4)
    events = [json.loads(r.value) for r in records if json.loads(r.value)["data"]["unit_id"] == "K1"]
    review_events = [(e["type"], e["data"]["kind"], e["data"]["period"], e["data"]["version"]) for e in events[1:]]
    assert review_events == [
        ("stvs.report.returned.v1", "action_plan", "2026", 1),
        ("stvs.report.amended.v1", "action_plan", "2026", 2),
        ("stvs.report.accepted.v1", "action_plan", "2026", 2),
    ]
    for event in events:  # no personal data, no free text
        assert "鹿泉管理员" not in json.dumps(event, ensure_ascii=False) and "季度" not in json.dumps(event)


async def test_a_returned_monthly_report_counts_as_not_yet_done_and_the_listing_shows_it(harness: Harness) -> None:
    harness.app.state.clock = lambda: at(2026, 5, 3)
    assert (await call(harness, "POST", "/monthly-reports/K2/2026-04/submit", K2)).status_code == 201
    assert (await call(harness, "POST", "/monthly-reports/C1/2026-04/submit", C1)).status_code == 201
    read = await call(harness, "GET", "/monthly-reports/K2/2026-04/submission", C1)
    assert read.status_code == 200, read.text
    assert read.json()["current"]["report"]["month"] == "2026-04"
    review = {"decision": "return", "version": 1, "comment": "活动数据不完整"}
    assert (await call(harness, "POST", "/monthly-reports/K2/2026-04/review", P, json=review)).status_code == 200
    ok = {"decision": "accept", "version": 1}
    assert (await call(harness, "POST", "/monthly-reports/C1/2026-04/review", P, json=ok)).status_code == 200

    generated = await call(harness, "GET", "/monthly-reports/K2/2026-04", K2)  # the month's page says it too
    assert (generated.json()["submission"]["status"], generated.json()["submission"]["version"]) == ("returned", 1)

    harness.app.state.clock = lambda: at(2026, 5, 10)
    answer = await call(harness, "GET", "/monthly-reports", P, params={"month": "2026-04", "unit_id": "C1"})
    assert answer.status_code == 200, answer.text
    listing = ReportListing.model_validate(answer.json())
    assert {r.unit_id: r.status for r in listing.units} == {"C1": "accepted", "K1": "missing", "K2": "returned"}
    assert (listing.counts["returned"], listing.counts["missing"]) == (1, 1)
    only = await call(harness, "GET", "/monthly-reports", C1, params={"month": "2026-04", "status": "returned"})
    assert [r["unit_id"] for r in only.json()["units"]] == ["K2"]
    assert (
        await call(harness, "GET", "/monthly-reports", K2, params={"month": "2026-04", "unit_id": "C1"})
    ).status_code == 404

    async def rule() -> Any:
        rows = await harness.compliance("K2", at(2026, 5, 10))
        found = rows["K2"]["monthly-2026-04"]
        return found if found["gap"] == 1 else None

    returned = await eventually(rule)
    assert returned["status"] == "not_yet" and "退回" in returned["detail_zh"]
    amended = await call(harness, "POST", "/monthly-reports/K2/2026-04/versions", K2, json={"note": "已补全"})
    assert amended.status_code == 201 and amended.json()["version"] == 2

    async def again() -> Any:
        rows = await harness.compliance("K2", at(2026, 5, 10))
        found = rows["K2"]["monthly-2026-04"]
        return found if found["gap"] == 0 else None

    assert (await eventually(again))["status"] == "met"  # judged by the first submission, on time


async def test_a_plan_submitted_before_versions_existed_is_read_and_amended(harness: Harness) -> None:
    """Records written before this change carry no status, version or versions: their content is version 1."""
    harness.app.state.clock = lambda: at(2026, 5, 2)
    legacy = {"_id": "action_plan:K2:2026", "kind": "action_plan", "unit_id": "K2", "period": "2026",
              "text": "旧版计划", "attachment_links": [], "submitted_at": at(2026, 4, 29), "submitted_by": "k2-admin",
              "submitted_by_name": None, "late": False, "due_at": at(2026, 4, 30, 23)}  # fmt: skip
    await harness.db["submissions"].insert_one(legacy)
    plan = (await call(harness, "GET", "/action-plans/K2/2026", K2)).json()
    assert (plan["status"], plan["version"], plan["current"]["text"]) == ("submitted", 1, "旧版计划")
    amended = await call(harness, "POST", "/action-plans/K2/2026/versions", K2, json={"text": "新版计划"})
    assert amended.status_code == 201, amended.text
    assert [v["text"] for v in amended.json()["versions"]] == ["旧版计划", "新版计划"]
    stored = await harness.db["submissions"].find_one({"_id": "action_plan:K2:2026"})
    assert stored is not None and (stored["version"], stored["text"]) == (2, "新版计划")
    # a writer that read version 1 and comes second writes nothing, its event neither: the caller is told to refresh
    late = ReportAmended(unit_id="K2", kind="action_plan", period="2026", version=2, amended_at=at(2026, 5, 2))
    event = Envelope.new(late, source="/stvs/reporting", subject="K2")
    store = harness.app.state.reports.store
    assert not await store.update("action_plan:K2:2026", {"version": None, "status": None}, {"text": "x"}, event)
    stored = await harness.db["submissions"].find_one({"_id": "action_plan:K2:2026"})
    assert stored is not None and stored["text"] == "新版计划" and event.id not in (stored.get("_outbox") or {})
