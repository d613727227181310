"""The reads on the in-memory port: compliance of units from their facts, the monthly roll-up through the hierarchy,
the caller's scope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.reporting.domain.errors import Invalid, NotFound
from services.reporting.usecases.projection import ProjectEvents
from shared.identity import Identity
from tests.reporting.helpers import at, completed, joined, unit_event, volunteer_registered
from tests.reporting.usecases.memory import PROVINCE_ADMIN, Reporting

COUNTY_LEADERS = {"team_chief": 1, "team_deputy": 2}


async def hierarchy(app: Reporting) -> ProjectEvents:
    """P (province) → C1 (city) → K1 (county, 50 volunteers, its leaders), K2 (county, 10 volunteers, no deputy)."""
    project = ProjectEvents(app.store)
    await project.apply(
        [
            unit_event("P", "province_corps", [], name="省总队"),
            unit_event("C1", "city_detachment", ["P"], name="石家庄市支队"),
            unit_event("K1", "county_team", ["P", "C1"], name="正定县队", leaders=COUNTY_LEADERS),
            unit_event("K2", "county_team", ["P", "C1"], name="井陉县队", leaders={"team_chief": 1}, contact=False),
            *[volunteer_registered(f"k1-{i}", ["K1"]) for i in range(50)],
            *[volunteer_registered(f"k2-{i}", ["K2"]) for i in range(10)],
        ]
    )
    return project


async def test_compliance_of_a_unit_comes_from_its_facts() -> None:
    app = Reporting()
    project = await hierarchy(app)
    await project.apply([completed("a1", "K1", at(2026, 5, 20), [("k1-1", 2)], themes=["women_youth"])])
    table = await app.queries.compliance(PROVINCE_ADMIN, "C1", 2026, None, datetime(2026, 7, 15, tzinfo=UTC))
    rows = {row["unit_id"]: row for row in table["units"]}
    assert list(rows) == ["C1", "K2", "K1"]  # the root first, then by depth and name (井陉 before 正定)
    k1 = {r["rule"]: r for r in rows["K1"]["rules"]}
    assert (k1["headcount"]["status"], k1["headcount"]["gap"]) == ("met", 0)
    assert k1["leaders"]["status"] == "met"
    assert (k1["activity-Q2"]["status"], k1["activity-Q3"]["status"]) == ("met", "not_yet")
    assert k1["theme-women_youth"]["status"] == "met" and k1["theme-poverty_health"]["status"] == "not_yet"
    assert k1["contact_person"]["status"] == "met"
    k2 = {r["rule"]: r for r in rows["K2"]["rules"]}
    assert (k2["headcount"]["status"], k2["headcount"]["gap"]) == ("not_yet", 40)
    assert (k2["leaders"]["status"], k2["leaders"]["gap"]) == ("not_yet", 2)
    assert (k2["activity-Q2"]["status"], k2["contact_person"]["status"]) == ("missed", "missed")
    # the city's own first batch does not count its county teams (they have their own minimum)
    assert (rows["C1"]["subtree_volunteers"], rows["C1"]["first_batch_volunteers"]) == (60, 0)
    assert {r["rule"] for r in rows["K1"]["rules"]} >= {"monthly-2026-04", "monthly-2026-07"}


async def test_one_quarter_shows_its_own_rules_only() -> None:
    app = Reporting()
    await hierarchy(app)
    table = await app.queries.compliance(PROVINCE_ADMIN, "K1", 2026, 2, datetime(2026, 7, 15, tzinfo=UTC))
    rules = {r["rule"] for r in table["units"][0]["rules"]}
    assert "activity-Q2" in rules and "activity-Q3" not in rules
    assert {"monthly-2026-04", "monthly-2026-06"} <= rules and "monthly-2026-07" not in rules


async def test_the_monthly_report_rolls_the_subtree_up() -> None:
    app = Reporting()
    project = await hierarchy(app)
    await project.apply(
        [
            completed("a1", "K1", at(2026, 6, 3), [("k1-1", 2), ("k1-2", 2)], served=40),
            completed("a2", "C1", at(2026, 6, 9), [("k1-3", 1.5)], line="enterprise_park"),
            completed("a3", "K2", at(2026, 7, 1), [("k2-1", 3)]),  # another month
            joined("k2-1", "K1", 2, when=at(2026, 6, 20)),
        ]
    )
    report = await app.queries.monthly_report(PROVINCE_ADMIN, "C1", "2026-06")
    assert (report["own"]["activities"], report["own"]["hours"]) == (1, 1.5)
    assert (report["rollup"]["activities"], report["rollup"]["hours"], report["rollup"]["people_served"]) == (
        2,
        5.5,
        40,
    )
    assert report["rollup"]["lines"] == {"community_school": 1, "enterprise_park": 1}
    assert [a["activity_id"] for a in report["activities_carried_out"]] == ["a1", "a2"]
    team = report["team_building"]
    assert (team["units"], team["subtree_volunteers"], team["subtree_new_volunteers"]) == (3, 61, 1)
    assert report["submission"] is None
    assert report["due_at"] == datetime(2026, 7, 5, 23, 59, 59, tzinfo=report["due_at"].tzinfo)


async def test_out_of_scope_is_not_found_and_a_bad_month_is_refused() -> None:
    app = Reporting()
    await hierarchy(app)
    other = Identity(subject="u-2", role="unit_admin", unit_id="K2")
    with pytest.raises(NotFound):
        await app.queries.unit_stats(other, "K1", 2026)
    assert (await app.queries.unit_stats(other, "K2", 2026))["unit_id"] == "K2"
    with pytest.raises(Invalid) as refused:
        await app.queries.monthly_report(PROVINCE_ADMIN, "K1", "2026-13")
    assert refused.value.code == "bad_month"
    with pytest.raises(NotFound):
        await app.queries.volunteer_record(other, "k1-1")  # a volunteer of a unit beside it
