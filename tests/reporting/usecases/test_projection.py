"""The projection use case on the in-memory port: what a poll counts, however often and in whatever order it comes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from services.reporting.usecases.ports import ProjectionWrite
from services.reporting.usecases.projection import ProjectEvents
from tests.reporting.helpers import at, completed, corrected, joined, left, publicity, unit_event, volunteer_registered
from tests.reporting.usecases.memory import PROVINCE_ADMIN, Reporting


class Boom(Exception):
    pass


class Failing(ProjectEvents):
    async def decide_and_save(self, envs: Sequence[Any], tx: ProjectionWrite) -> None:
        await super().decide_and_save(envs, tx)
        raise Boom


async def test_a_projection_applied_twice_counts_once() -> None:
    app = Reporting()
    project = ProjectEvents(app.store)
    poll = [
        unit_event("P", "province_corps", []),
        unit_event("K1", "county_team", ["P"]),
        volunteer_registered("v1", ["K1"]),
        completed("a1", "K1", at(2026, 5, 1), [("v1", 2.5)], served=30),
    ]
    await project.apply(poll)
    await project.apply(poll)  # the poll redelivered
    await project.apply([poll[3], poll[3], poll[2]])  # a copy of an event twice in one poll
    await project.handle(poll[3])  # and once more alone
    stats = await app.queries.unit_stats(PROVINCE_ADMIN, "K1", 2026)
    assert (stats["own"]["activities"], stats["own"]["hours"], stats["own"]["people_served"]) == (1, 2.5, 30)
    assert (stats["own"]["volunteers"], stats["rollup"]["volunteers"]) == (1, 1)
    record = await app.queries.volunteer_record(PROVINCE_ADMIN, "v1")
    assert (record["hours"], record["activities"], record["display_name"]) == (2.5, 1, "志愿者v1")


async def test_a_failed_chunk_leaves_nothing_behind() -> None:
    app = Reporting()
    project = ProjectEvents(app.store)
    await project.apply([unit_event("K1", "county_team", ["P"])])

    events = [volunteer_registered("v1", ["K1"]), completed("a1", "K1", at(2026, 5, 1), [("v1", 2)])]
    with pytest.raises(Boom):
        await Failing(app.store).apply(events)  # fails after every save of the chunk, before it commits
    assert int((await app.store.unit("K1") or {}).get("volunteers") or 0) == 0
    await project.apply(events)
    assert (await app.store.unit("K1") or {})["volunteers"] == 1


async def test_membership_moves_count_in_the_units_and_stale_events_change_nothing() -> None:
    app = Reporting()
    project = ProjectEvents(app.store)
    await project.apply([unit_event("K1", "county_team", ["P"]), unit_event("K2", "county_team", ["P"])])
    await project.apply([volunteer_registered("v1", ["K1"]), left("v1", "K1", 2), joined("v1", "K2", 3)])
    await project.apply([joined("v1", "K1", 2)])  # stale: version 2 was the leave
    units = await app.store.all_units()
    assert (units["K1"]["volunteers"], units["K2"]["volunteers"]) == (0, 1)


async def test_people_served_come_from_the_publicity_and_its_correction() -> None:
    app = Reporting()
    project = ProjectEvents(app.store)
    starts = at(2026, 6, 10)
    first = publicity("a1", "K1", starts, 120)
    await project.apply([unit_event("K1", "county_team", ["P"]), completed("a1", "K1", starts, [("v1", 2)])])
    await project.apply([first, first])
    await project.apply([first, publicity("a1", "K1", starts, 150, previous=120)])  # corrected by the unit
    report = await app.queries.monthly_report(PROVINCE_ADMIN, "K1", "2026-06")
    assert report["own"]["people_served"] == 150
    assert [(a["activity_id"], a["people_served"]) for a in report["activities_carried_out"]] == [("a1", 150)]
    stats = await app.queries.unit_stats(PROVINCE_ADMIN, "K1", 2026)
    assert stats["own"]["people_served"] == 150


async def test_corrections_count_whichever_comes_first() -> None:
    app = Reporting()
    project = ProjectEvents(app.store)
    fix = corrected("a1", "K1", at(2026, 6, 1), "v1", previous=2, hours=3.25)
    await project.apply([unit_event("K1", "county_team", ["P"]), fix])
    await project.apply([completed("a1", "K1", at(2026, 6, 1), [("v1", 2)]), fix])
    assert (await app.queries.volunteer_record(PROVINCE_ADMIN, "v1"))["hours"] == 3.25
    report = await app.queries.monthly_report(PROVINCE_ADMIN, "K1", "2026-06")
    assert report["own"]["hours"] == 3.25


async def test_a_poll_larger_than_a_chunk_goes_in_several_transactions() -> None:
    app = Reporting()
    project = ProjectEvents(app.store, chunk_writes=7)
    poll = [completed(f"a{i}", "K1", at(2026, 8, 1 + i), [(f"v{i % 3}", 1), ("v9", 0.5)]) for i in range(10)]
    await project.apply(poll)
    assert app.store.transactions > 1
    assert (await app.queries.volunteer_record(PROVINCE_ADMIN, "v9"))["activities"] == 10
