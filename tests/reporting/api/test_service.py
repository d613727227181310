"""The reporting service against the real Kafka and FerretDB: projections from published events, roll-up,
idempotency, order independence, membership moves, compliance, submissions with their events, and replay."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.reporting.adapters.mongo import PROJECTIONS, MongoProjectionStore
from services.reporting.api.schemas import ComplianceTable, MonthlyReport
from services.reporting.replay import replay
from services.reporting.usecases.projection import ProjectEvents
from shared.contracts.events import REPORTS
from shared.identity import Identity
from shared.settings import ServiceSettings
from tests.fixtures import eventually, read_topic
from tests.reporting.helpers import (
    Harness,
    at,
    completed,
    corrected,
    get_json,
    headers,
    joined,
    left,
    publicity,
    publish,
    running,
    unit_event,
    volunteer_inactive,
    volunteer_registered,
    when,
)


@pytest.fixture(scope="module")
async def harness(settings: ServiceSettings) -> AsyncIterator[Harness]:
    async with running(settings) as started:
        yield started


async def caught_up(harness: Harness) -> None:
    """Until the projections consumer has read everything published so far."""
    consumer = harness.app.state.service.consumers[0]

    async def no_lag() -> bool | None:
        return True if not any((await consumer.lag()).values()) else None

    await eventually(no_lag)


async def test_projections_roll_up_through_the_hierarchy(harness: Harness) -> None:
    await publish(
        harness.settings,
        [
            unit_event("P", "province_corps", []),
            unit_event("C1", "city_detachment", ["P"], city="石家庄市"),
            unit_event("K1", "county_team", ["P", "C1"], city="石家庄市"),
            unit_event("U1", "university_detachment", ["P"]),
            volunteer_registered("v1", ["C1"]),
            volunteer_registered("v2", ["K1"]),
            volunteer_registered("v3", ["K1"]),
            volunteer_registered("v4", ["U1"]),
            completed("a1", "K1", at(2026, 5, 10), [("v2", 2.5), ("v3", 1.5)]),
            completed(
                "a2",
                "C1",
                at(2026, 7, 1),
                [("v1", 3)],
                themes=("national_key_event", "poverty_health"),
                line="enterprise_park",
            ),
            # People served come with the publicity after the activity; a republished figure corrects the count.
            publicity("a1", "K1", at(2026, 5, 10), 40),
            publicity("a2", "C1", at(2026, 7, 1), 100),
            publicity("a2", "C1", at(2026, 7, 1), 110, previous=100),
        ],
    )

    async def caught_up() -> Any:
        body = await harness.stats("C1")
        ready = body and body["rollup"]["activities"] == 2 and body["rollup"]["volunteers"] == 3
        return body if ready and body["rollup"]["people_served"] == 150 else None

    c1 = await eventually(caught_up)
    assert c1["own"]["activities"] == 1
    assert c1["own"]["hours"] == 3.0
    assert c1["own"]["volunteers"] == 1
    assert c1["rollup"]["hours"] == 7.0
    assert c1["rollup"]["quarters"] == {"2": 1, "3": 1}
    assert c1["rollup"]["lines"] == {"community_school": 1, "enterprise_park": 1}
    assert c1["rollup"]["themes"] == {"women_youth": 1, "national_key_event": 1, "poverty_health": 1}
    assert c1["own"]["people_served"] == 110
    assert c1["rollup"]["units"] == 2

    province = await eventually(lambda: when(harness.stats("P"), lambda b: b["rollup"]["volunteers"] == 4))
    assert province["rollup"]["activities"] == 2
    assert province["own"]["activities"] == 0

    v2 = await eventually(lambda: harness.volunteer("v2"))
    assert (v2["hours"], v2["activities"], v2["star_level"]) == (2.5, 1, 0)
    assert v2["platform_number"] == "HB20260000v2"
    assert v2["display_name"] == "志愿者v2"

    may = await get_json(harness.client, "/monthly-reports/C1/2026-05", harness.settings)
    assert may["own"]["activities"] == 0
    assert may["rollup"]["activities"] == 1
    assert may["rollup"]["hours"] == 4.0
    assert may["team_building"]["subtree_volunteers"] == 3
    assert may["submission"] is None
    assert [(a["activity_id"], a["unit_name"], a["hours"]) for a in may["activities_carried_out"]] == [
        ("a1", "K1科技志愿者支队", 4.0)
    ]
    assert (may["rollup"]["people_served"], may["activities_carried_out"][0]["people_served"]) == (40, 40)
    april = await get_json(harness.client, "/monthly-reports/C1/2026-04", harness.settings)
    assert (april["team_building"]["new_volunteers"], april["team_building"]["subtree_new_volunteers"]) == (1, 3)
    assert may["team_building"]["subtree_new_volunteers"] == 0


async def test_a_duplicate_delivery_counts_once(harness: Harness) -> None:
    await publish(harness.settings, [unit_event("K2", "county_team", ["P", "C1"])])
    twice = completed("a3", "K2", at(2026, 5, 11), [("v7", 2)])
    await publish(harness.settings, [twice, twice])  # the same event id delivered twice
    await eventually(lambda: when(harness.stats("K2"), lambda b: b["own"].get("activities") == 1))
    # bypass the consumer's own de-duplication: the projection itself must not count an event twice
    projections = ProjectEvents(MongoProjectionStore(harness.db))
    direct = completed("a4", "K2", at(2026, 5, 12), [("v7", 1)])
    await projections.handle(direct)
    await projections.handle(direct)
    await projections.apply([direct, direct])  # twice in one batch
    await publish(harness.settings, [direct])  # and once more through the consumer (also keeps replay honest)
    await caught_up(harness)
    k2 = await harness.stats("K2")
    assert k2["own"]["activities"] == 2
    assert k2["own"]["hours"] == 3.0
    v7 = await harness.volunteer("v7")
    assert (v7["hours"], v7["activities"]) == (3.0, 2)


async def test_completion_before_registration_still_counts_for_the_volunteer(harness: Harness) -> None:
    await publish(harness.settings, [completed("a5", "U1", at(2026, 6, 2), [("v9", 4.25)])])
    early = await eventually(lambda: harness.volunteer("v9"))
    assert (early["hours"], early["activities"]) == (4.25, 1)
    assert early["platform_number"] is None
    assert early["display_name"] == "参与者v9"
    await publish(harness.settings, [volunteer_registered("v9", ["U1"], name="王志愿")])
    later = await eventually(lambda: when(harness.volunteer("v9"), lambda b: b["platform_number"]))
    assert (later["hours"], later["activities"]) == (4.25, 1)
    assert later["display_name"] == "王志愿"
    assert later["unit_ids"] == ["U1"]
    await eventually(lambda: when(harness.stats("U1"), lambda b: b["own"]["volunteers"] == 2))


async def test_leaving_a_unit_and_moving_a_unit_move_the_numbers(harness: Harness) -> None:
    await publish(harness.settings, [volunteer_registered("v5", ["K2"])])
    await eventually(lambda: when(harness.stats("K2"), lambda b: b["own"]["volunteers"] == 1))
    await publish(harness.settings, [left("v5", "K2", 2), joined("v5", "C1", 3)])
    await eventually(lambda: when(harness.stats("C1"), lambda b: b["own"]["volunteers"] == 2))
    k2 = await harness.stats("K2")
    assert k2["own"]["volunteers"] == 0
    # a stale event (older version) changes nothing
    await publish(harness.settings, [joined("v5", "K2", 2)])
    await publish(harness.settings, [unit_event("S1", "sub_team", ["P", "C1"])])
    await publish(harness.settings, [completed("a6", "S1", at(2026, 8, 1), [("v5", 2)])])
    await eventually(
        lambda: when(harness.stats("C1"), lambda b: b["rollup"]["units"] == 4 and b["rollup"]["activities"] == 5)
    )
    u1_before = (await harness.stats("U1"))["rollup"]["activities"]
    await publish(harness.settings, [unit_event("S1", "sub_team", ["P", "U1"], version=2)])
    await eventually(lambda: when(harness.stats("U1"), lambda b: b["rollup"]["activities"] == u1_before + 1))
    c1 = await harness.stats("C1")
    assert c1["rollup"]["activities"] == 4
    assert (await harness.stats("K2"))["own"]["volunteers"] == 0
    # a volunteer who becomes inactive no longer counts anywhere; their hours stay theirs
    await publish(harness.settings, [volunteer_inactive("v5", ["C1"], 4)])
    await eventually(lambda: when(harness.stats("C1"), lambda b: b["own"]["volunteers"] == 1))
    v5 = await harness.volunteer("v5")
    assert (v5["hours"], v5["status"]) == (2.0, "inactive")
    # a rejected unit drops out of its parent's subtree
    await publish(harness.settings, [unit_event("S1", "sub_team", ["P", "U1"], version=3, status="rejected")])
    await eventually(lambda: when(harness.stats("U1"), lambda b: b["rollup"]["activities"] == u1_before))


async def test_compliance_statuses_and_gaps(harness: Harness) -> None:
    leaders = {"支队长": 1, "副支队长": 3, "秘书长": 1}
    await publish(
        harness.settings,
        [
            unit_event("C9", "city_detachment", ["P"], leaders=leaders, city="唐山市"),
            unit_event(
                "K9",
                "county_team",
                ["P", "C9"],
                contact=False,
                registered_at=at(2026, 4, 25),
                time=at(2026, 4, 25),
                leaders={"队长": 1},
            ),
            volunteer_registered("v91", ["C9"]),
            volunteer_registered("v92", ["C9"]),
            completed("a91", "C9", at(2026, 5, 20), [("v91", 2)], themes=("women_youth",)),
        ],
    )
    await eventually(  # the volunteers arrive on another topic than the activity: wait for both
        lambda: when(
            harness.stats("C9"),
            lambda b: b["rollup"]["units"] == 2 and b["own"]["activities"] == 1 and b["own"]["volunteers"] == 2,
        )
    )
    rows = await harness.compliance("C9", at(2026, 8, 1))
    c9, k9 = rows["C9"], rows["K9"]
    assert (c9["headcount"]["status"], c9["headcount"]["gap"]) == ("not_yet", 298)
    assert (c9["leaders"]["status"], c9["leaders"]["gap"]) == ("met", 0)
    assert c9["activity-Q2"]["status"] == "met"
    assert (c9["activity-Q3"]["status"], c9["activity-Q3"]["gap"]) == ("not_yet", 1)
    assert c9["theme-women_youth"]["status"] == "met"
    assert (c9["theme-poverty_health"]["status"], c9["theme-poverty_health"]["gap"]) == ("not_yet", 1)
    assert c9["registration"]["status"] == "met"
    assert c9["contact_person"]["status"] == "met"
    assert (c9["action_plan"]["status"], c9["action_plan"]["gap"]) == ("missed", 1)
    assert (c9["monthly-2026-04"]["status"], c9["monthly-2026-04"]["gap"]) == ("missed", 1)
    assert c9["_row"]["subtree_volunteers"] == 2
    assert (k9["registration"]["status"], k9["registration"]["gap"]) == ("missed", 0)  # registered, but late
    assert (k9["contact_person"]["status"], k9["contact_person"]["gap"]) == ("missed", 1)
    assert (k9["headcount"]["gap"], k9["leaders"]["gap"]) == (50, 2)
    assert "monthly-2026-04" in k9  # registered April 25: April still needs a report
    q2 = await harness.compliance("C9", at(2026, 8, 1), quarter=2)
    assert {r for r in q2["C9"] if r.startswith(("activity-", "monthly-"))} == {
        "activity-Q2",
        "monthly-2026-04",
        "monthly-2026-05",
        "monthly-2026-06",
    }


async def test_submissions_emit_events_are_marked_late_and_count_for_compliance(harness: Harness) -> None:
    client, settings = harness.client, harness.settings
    admin = Identity(subject="c9-admin", role="unit_admin", unit_id="C9", display_name="唐山管理员")
    harness.app.state.clock = lambda: at(2026, 5, 4, 9)
    try:
        body = {
            "unit_id": "C9",
            "year": 2026,
            "text": "行动计划正文",
            "attachment_links": ["https://example.org/a1.pdf"],
        }
        response = await client.post("/action-plans", json=body, headers=headers(settings, admin))
        assert response.status_code == 201, response.text
        assert response.json()["late"] is True
        assert (await client.post("/action-plans", json=body, headers=headers(settings, admin))).status_code == 409

        response = await client.post("/monthly-reports/C9/2026-04/submit", headers=headers(settings, admin))
        assert response.status_code == 201, response.text
        assert response.json()["late"] is False
        assert response.json()["submitted_by"] == "c9-admin"
        again = await client.post("/monthly-reports/C9/2026-04/submit", headers=headers(settings, admin))
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")
        future = await client.post("/monthly-reports/C9/2026-06/submit", headers=headers(settings, admin))
        assert future.status_code == 422

        other = Identity(subject="x", role="unit_admin", unit_id="K1")
        forbidden = await client.post("/monthly-reports/C9/2026-05/submit", headers=headers(settings, other))
        assert forbidden.status_code == 403

        harness.app.state.clock = lambda: at(2026, 6, 6, 9)
        response = await client.post("/monthly-reports/C9/2026-05/submit", headers=headers(settings, admin))
        assert response.json()["late"] is True
    finally:
        harness.app.state.clock = lambda: at(2026, 11, 1)

    records = await read_topic(settings.kafka_bootstrap, settings.topic(REPORTS), expect=3)
    events = [json.loads(r.value) for r in records]
    kinds = sorted((e["type"], e["data"].get("month") or str(e["data"].get("year")), e["data"]["late"]) for e in events)
    assert kinds == [
        ("stvs.report.action_plan_submitted.v1", "2026", True),
        ("stvs.report.monthly_submitted.v1", "2026-04", False),
        ("stvs.report.monthly_submitted.v1", "2026-05", True),
    ]
    assert all(e["subject"] == "C9" and e["data"]["submitted_by"] == "c9-admin" for e in events)

    async def counted() -> Any:
        rows = await harness.compliance("C9", at(2026, 8, 1))
        return rows["C9"] if rows["C9"]["monthly-2026-05"]["gap"] == 0 else None

    c9 = await eventually(counted)
    assert (c9["action_plan"]["status"], c9["action_plan"]["gap"]) == ("missed", 0)  # submitted late
    assert (c9["monthly-2026-04"]["status"], c9["monthly-2026-04"]["gap"]) == ("met", 0)
    assert (c9["monthly-2026-05"]["status"], c9["monthly-2026-05"]["gap"]) == ("missed", 0)
    report = await get_json(client, "/monthly-reports/C9/2026-04", settings)
    assert report["submission"]["submitted_by"] == "c9-admin"
    assert report["submission"]["late"] is False


async def test_hours_correction_moves_volunteer_unit_month_and_quarter(harness: Harness) -> None:
    await publish(
        harness.settings,
        [
            unit_event("K7", "county_team", ["P", "C1"]),
            volunteer_registered("v70", ["K7"]),
            completed("a70", "K7", at(2026, 9, 20), [("v70", 99), ("v71", 2)]),
        ],
    )
    before = await eventually(lambda: when(harness.volunteer("v70"), lambda b: b["hours"] == 99))
    assert before["star_level"] == 0
    c1_before = await eventually(lambda: when(harness.stats("C1"), lambda b: b["rollup"]["hours"] >= 101))
    fix = corrected("a70", "K7", at(2026, 9, 20), "v70", previous=99, hours=101.5)
    await publish(harness.settings, [fix, fix])  # delivered twice: applied once
    after = await eventually(lambda: when(harness.volunteer("v70"), lambda b: b["hours"] == 101.5))
    assert (after["star_level"], after["activities"]) == (1, 1)
    await caught_up(harness)
    assert (await harness.volunteer("v70"))["hours"] == 101.5
    k7 = await harness.stats("K7")
    assert k7["own"]["hours"] == 103.5
    assert k7["own"]["quarter_hours"] == {"3": 103.5}
    assert k7["own"]["activities"] == 1  # a correction is no new activity
    c1 = await harness.stats("C1")
    assert c1["rollup"]["hours"] == c1_before["rollup"]["hours"] + 2.5
    september = await get_json(harness.client, "/monthly-reports/K7/2026-09", harness.settings)
    assert september["own"]["hours"] == 103.5
    assert [(a["activity_id"], a["hours"]) for a in september["activities_carried_out"]] == [("a70", 103.5)]
    # a correction downwards takes hours away again (and the star with them)
    await publish(harness.settings, [corrected("a70", "K7", at(2026, 9, 20), "v70", previous=101.5, hours=90)])
    down = await eventually(lambda: when(harness.volunteer("v70"), lambda b: b["hours"] == 90))
    assert down["star_level"] == 0


async def test_replay_rebuilds_identical_projections(harness: Harness) -> None:
    async def snapshot() -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for name in PROJECTIONS:
            docs = [d async for d in harness.db[name].find({}, {"_applied": 0})]
            out[name] = sorted(docs, key=lambda d: str(d["_id"]))
        return out

    await caught_up(harness)  # the last batch of the tests above is written in full
    before = await snapshot()
    assert all(before[name] for name in PROJECTIONS)
    await replay(harness.settings, timeout_s=120)
    after = await snapshot()
    for name in PROJECTIONS:
        assert after[name] == before[name], name


async def test_the_answers_written_by_orjson_are_what_their_response_models_say(harness: Harness) -> None:
    """The compliance table and the monthly report skip FastAPI's validation (their size): their models, which
    forbid any key they do not declare, must still describe them exactly."""
    await caught_up(harness)
    for unit in ("P", "C1", "K1"):
        table = await get_json(harness.client, "/compliance", harness.settings, unit_id=unit, year=2026)
        assert table["units"] and ComplianceTable.model_validate(table)
        for month in ("2026-04", "2026-05", "2026-09"):
            report = await get_json(harness.client, f"/monthly-reports/{unit}/{month}", harness.settings)
            assert MonthlyReport.model_validate(report)
