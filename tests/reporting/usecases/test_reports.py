"""Submitted reports read back, amended and reviewed on the in-memory ports: every version kept and the latest
shown with who and when, the province office's decision with its event, and where each unit stands."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.reporting.domain.errors import Conflict, Forbidden, Invalid, NotFound
from services.reporting.domain.reports import ReviewDecision
from services.reporting.usecases.projection import ProjectEvents
from services.reporting.usecases.submissions import ActionPlan
from shared.contracts.events import ReportAccepted, ReportAmended, ReportReturned
from shared.identity import Identity
from tests.reporting.helpers import at, unit_event
from tests.reporting.usecases.memory import PROVINCE_ADMIN, Reporting

C1_ADMIN = Identity(subject="c1-admin", role="unit_admin", unit_id="C1", display_name="石家庄管理员")
K1_ADMIN = Identity(subject="k1-admin", role="unit_admin", unit_id="K1", display_name="县队管理员")
K2_ADMIN = Identity(subject="k2-admin", role="unit_admin", unit_id="K2")

ACCEPT, RETURN = ReviewDecision.ACCEPT, ReviewDecision.RETURN


async def season(now: datetime) -> Reporting:
    app = Reporting(now=now)
    await ProjectEvents(app.store).apply(
        [
            unit_event("P", "province_corps", []),
            unit_event("C1", "city_detachment", ["P"]),
            unit_event("K1", "county_team", ["P", "C1"]),
            unit_event("K2", "county_team", ["P", "C1"]),
            unit_event("K3", "county_team", ["P", "C1"], registered_at=at(2026, 6, 2)),
        ]
    )
    return app


async def test_an_action_plan_is_read_whole_by_its_unit_and_those_above_it_only() -> None:
    app = await season(datetime(2026, 4, 20, tzinfo=UTC))
    await app.submit.action_plan(K1_ADMIN, ActionPlan("K1", 2026, "全年开展科普活动12次", ["https://x.cn/a1.xlsx"]))
    for reader in (K1_ADMIN, C1_ADMIN, PROVINCE_ADMIN):
        plan = await app.reports.read(reader, "action_plan", "K1", "2026")
        assert plan["current"]["text"] == "全年开展科普活动12次"
        assert plan["current"]["attachment_links"] == ["https://x.cn/a1.xlsx"]
        assert (plan["status"], plan["version"], plan["late"]) == ("submitted", 1, False)
        assert plan["current"]["submitted_by_name"] == "县队管理员"
    with pytest.raises(NotFound):
        await app.reports.read(K2_ADMIN, "action_plan", "K1", "2026")  # beside it: nothing revealed
    with pytest.raises(NotFound):
        await app.reports.read(K1_ADMIN, "action_plan", "K1", "2025")  # never submitted


async def test_amendments_keep_every_version_and_show_the_latest_with_who_and_when() -> None:
    app = await season(datetime(2026, 4, 20, tzinfo=UTC))
    await app.submit.action_plan(K1_ADMIN, ActionPlan("K1", 2026, "初稿", []))
    app.clock.now = datetime(2026, 4, 22, tzinfo=UTC)
    plan = await app.reports.amend_action_plan(C1_ADMIN, ActionPlan("K1", 2026, "修改稿", []), "补充活动安排")
    assert (plan["version"], plan["current"]["text"], plan["current"]["note"]) == (2, "修改稿", "补充活动安排")
    assert plan["current"]["submitted_by"] == "c1-admin"
    assert plan["current"]["submitted_at"] == datetime(2026, 4, 22, tzinfo=UTC)
    assert [v["text"] for v in plan["versions"]] == ["初稿", "修改稿"]
    assert plan["submitted_at"] == datetime(2026, 4, 20, tzinfo=UTC)  # the deadline judges the first one
    event = app.submissions.events[-1]
    assert isinstance(event.data, ReportAmended)
    assert (event.data.kind, event.data.period, event.data.version) == ("action_plan", "2026", 2)
    with pytest.raises(Forbidden):
        await app.reports.amend_action_plan(K2_ADMIN, ActionPlan("K1", 2026, "越权", []), None)
    with pytest.raises(NotFound):
        await app.reports.amend_action_plan(K1_ADMIN, ActionPlan("K1", 2025, "无初稿", []), None)


async def test_the_province_office_returns_with_a_comment_then_accepts_and_it_is_closed() -> None:
    app = await season(datetime(2026, 4, 20, tzinfo=UTC))
    await app.submit.action_plan(K1_ADMIN, ActionPlan("K1", 2026, "初稿", []))
    with pytest.raises(Forbidden):
        await app.reports.review(C1_ADMIN, "action_plan", "K1", "2026", ACCEPT, 1, None)  # the province office only
    with pytest.raises(Invalid):
        await app.reports.review(PROVINCE_ADMIN, "action_plan", "K1", "2026", RETURN, 1, "  ")  # says why
    plan = await app.reports.review(PROVINCE_ADMIN, "action_plan", "K1", "2026", RETURN, 1, "缺少季度安排")
    assert (plan["status"], plan["status_zh"]) == ("returned", "已退回")
    assert plan["reviews"][0]["comment"] == "缺少季度安排" and plan["reviews"][0]["decision"] == "return"
    returned = app.submissions.events[-1].data
    assert isinstance(returned, ReportReturned) and (returned.unit_id, returned.version) == ("K1", 1)
    assert "缺少" not in app.submissions.events[-1].model_dump_json()  # the comment stays out of events
    with pytest.raises(Conflict):
        await app.reports.review(PROVINCE_ADMIN, "action_plan", "K1", "2026", ACCEPT, 1, None)  # awaits the unit
    await app.reports.amend_action_plan(K1_ADMIN, ActionPlan("K1", 2026, "含季度安排", []), "已补充")
    with pytest.raises(Conflict):
        await app.reports.review(PROVINCE_ADMIN, "action_plan", "K1", "2026", ACCEPT, 1, None)  # not the latest
    plan = await app.reports.review(PROVINCE_ADMIN, "action_plan", "K1", "2026", ACCEPT, 2, None)
    assert (plan["status"], plan["version"], len(plan["reviews"])) == ("accepted", 2, 2)
    accepted = app.submissions.events[-1].data
    assert isinstance(accepted, ReportAccepted) and accepted.version == 2
    with pytest.raises(Conflict) as refused:
        await app.reports.amend_action_plan(K1_ADMIN, ActionPlan("K1", 2026, "再改", []), None)
    assert refused.value.code == "report_accepted"


async def test_a_monthly_report_amended_is_generated_again_and_kept_per_version() -> None:
    app = await season(datetime(2026, 5, 3, tzinfo=UTC))
    await app.submit.monthly_report(K1_ADMIN, "K1", "2026-04")
    report = await app.reports.read(C1_ADMIN, "monthly", "K1", "2026-04")
    assert report["current"]["report"]["month"] == "2026-04" and report["current"]["report"]["unit_id"] == "K1"
    app.clock.now = datetime(2026, 5, 8, tzinfo=UTC)
    amended = await app.reports.amend_monthly(K1_ADMIN, "K1", "2026-04", "更正活动数")
    assert amended["version"] == 2 and len(amended["versions"]) == 2
    assert amended["current"]["note"] == "更正活动数" and amended["late"] is False  # first one was on time
    assert amended["status"] == "submitted"


async def test_the_listing_says_where_each_unit_stands() -> None:
    app = await season(datetime(2026, 5, 3, tzinfo=UTC))
    await app.submit.monthly_report(K1_ADMIN, "K1", "2026-04")
    await app.submit.monthly_report(C1_ADMIN, "C1", "2026-04")
    await app.reports.review(PROVINCE_ADMIN, "monthly", "C1", "2026-04", ACCEPT, 1, "很好")
    app.clock.now = datetime(2026, 5, 7, tzinfo=UTC)  # after the 5th: the April report is due
    await app.submit.monthly_report(PROVINCE_ADMIN, "P", "2026-04")
    listing = await app.reports.listing(PROVINCE_ADMIN, "monthly", "2026-04", None, None)
    status = {row["unit_id"]: row["status"] for row in listing["units"]}
    assert status == {"P": "late", "C1": "accepted", "K1": "submitted", "K2": "missing"}  # K3 came in June
    assert listing["counts"] == {"accepted": 1, "returned": 0, "late": 1, "submitted": 1, "missing": 1, "pending": 0}
    await app.reports.review(PROVINCE_ADMIN, "monthly", "K1", "2026-04", RETURN, 1, "数据有误")
    missing = await app.reports.listing(C1_ADMIN, "monthly", "2026-04", None, "returned")
    assert [row["unit_id"] for row in missing["units"]] == ["K1"]
    assert missing["counts"]["returned"] == 1
    plans = await app.reports.listing(PROVINCE_ADMIN, "action_plan", "2026", "C1", None)
    assert {row["status"] for row in plans["units"]} == {"missing"}  # April 30 has passed, none submitted
    with pytest.raises(NotFound):
        await app.reports.listing(K2_ADMIN, "monthly", "2026-04", "K1", None)


async def test_compliance_counts_a_returned_report_as_not_yet_done_until_submitted_again() -> None:
    app = await season(datetime(2026, 4, 20, tzinfo=UTC))
    await app.submit.action_plan(K1_ADMIN, ActionPlan("K1", 2026, "初稿", []))
    await app.reports.review(PROVINCE_ADMIN, "action_plan", "K1", "2026", RETURN, 1, "缺少季度安排")

    async def action_plan_rule() -> dict[str, object]:
        await ProjectEvents(app.store).apply(app.submissions.events)
        app.submissions.events.clear()
        table = await app.queries.compliance(PROVINCE_ADMIN, "K1", 2026, None, datetime(2026, 5, 10, tzinfo=UTC))
        [row] = table["units"]
        return next(r for r in row["rules"] if r["rule"] == "action_plan")

    returned = await action_plan_rule()
    assert (returned["status"], returned["gap"]) == ("not_yet", 1) and "退回" in str(returned["detail_zh"])
    app.clock.now = datetime(2026, 5, 8, tzinfo=UTC)
    await app.reports.amend_action_plan(K1_ADMIN, ActionPlan("K1", 2026, "修改稿", []), None)
    again = await action_plan_rule()
    assert (again["status"], again["gap"]) == ("met", 0)  # on time: judged by the first submission


async def test_before_the_deadline_a_report_not_submitted_is_pending() -> None:
    app = await season(datetime(2026, 4, 25, tzinfo=UTC))
    plans = await app.reports.listing(C1_ADMIN, "action_plan", "2026", None, None)
    assert {row["status"] for row in plans["units"]} == {"pending"}
    assert plans["counts"]["pending"] == 4  # C1 and its three county teams
