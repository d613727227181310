"""The projections against the real MongoDB-protocol server, without Kafka in between: a poll applied again (whole or
in part), a failure in the middle of a poll's transaction, two members applying the same events at the same time,
a copy of an event weeks later, and corrections in any order. The merge of updates and the chunking are pure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.reporting.adapters.mongo import (
    APPLIED,
    APPLIED_RETENTION,
    UNIT_STATS,
    UNITS,
    VOLUNTEER_STATS,
    MongoProjectionStore,
    MongoReadModels,
    MongoSubmissions,
    indexes,
)
from services.reporting.domain.hierarchy import Tree
from services.reporting.domain.projection import Record
from services.reporting.domain.rollup import monthly_rollup, volunteer_record
from services.reporting.usecases.ports import ProjectionWrite
from services.reporting.usecases.projection import ProjectEvents
from shared.calendar import monthly_report_due
from shared.messaging.outbox import Outbox
from shared.settings import ServiceSettings
from shared.storage import Doc, mongo_client, utcnow
from tests.reporting.helpers import (
    at,
    completed,
    corrected,
    joined,
    left,
    unit_event,
    volunteer_inactive,
    volunteer_registered,
)


@pytest.fixture
async def db(settings: ServiceSettings) -> AsyncIterator[AsyncDatabase[Doc]]:
    client = mongo_client(settings.mongo_url, app_name="test-projections")
    database = client[settings.database("reporting_projections")]
    await client.drop_database(database.name)
    await indexes().create(database)
    try:
        yield database
    finally:
        await client.drop_database(database.name)
        await client.close()


class Crash(Exception):
    pass


def Projections(db: AsyncDatabase[Doc], *, chunk_writes: int = 100_000) -> ProjectEvents:
    """The projection use case on MongoDB, as the service composes it."""
    return ProjectEvents(MongoProjectionStore(db), chunk_writes=chunk_writes)


class CrashingOnce(ProjectEvents):
    """Fails once after every write of a chunk was sent, before its transaction commits (a process dying there)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(MongoProjectionStore(db))
        self.crashed = False

    async def decide_and_save(self, envs: Sequence[Any], tx: ProjectionWrite) -> None:
        await super().decide_and_save(envs, tx)
        if not self.crashed:
            self.crashed = True
            raise Crash


async def unit(db: AsyncDatabase[Doc], uid: str) -> Doc:
    return await db[UNITS].find_one({"_id": uid}) or {}


async def year_stats(db: AsyncDatabase[Doc], uid: str) -> Doc:
    return await db[UNIT_STATS].find_one({"_id": f"{uid}:2026"}) or {}


async def volunteer_stats(db: AsyncDatabase[Doc], vid: str) -> Record | None:
    return volunteer_record(vid, *await MongoReadModels(db).volunteer(vid))


async def monthly_report(db: AsyncDatabase[Doc], tree: Tree, month: str, day: int) -> Record:
    docs = await MongoReadModels(db).month_figures(month, tree.member_ids())
    submission = await MongoSubmissions(db, Outbox(db, None)).get(f"monthly:{tree.root['_id']}:{month}")
    due = monthly_report_due(int(month[:4]), int(month[5:]), day)
    return monthly_rollup(tree, tree.only_members(docs), month, due, submission)


async def hours_of(db: AsyncDatabase[Doc], vid: str) -> tuple[float, int]:
    found = await volunteer_stats(db, vid)
    return (float(found["hours"]), int(found["activities"])) if found else (0.0, 0)


async def test_a_poll_applied_again_in_part_counts_each_event_once(db: AsyncDatabase[Doc]) -> None:
    projections = Projections(db)
    a1 = completed("a1", "K1", at(2026, 5, 1), [("v1", 2)])
    a2 = completed("a2", "K1", at(2026, 5, 2), [("v1", 3)])
    a3 = completed("a3", "K1", at(2026, 5, 3), [("v1", 4)])
    await projections.apply([unit_event("K1", "county_team", ["P"]), a1, a2])
    await projections.apply([a1, a2, a3, a3])  # redelivered poll, larger this time, one event twice
    stats = await year_stats(db, "K1")
    assert (stats["activities"], stats["hours_c"]) == (3, 900)
    assert await hours_of(db, "v1") == (9.0, 3)


async def test_a_failure_inside_a_poll_leaves_nothing_and_the_redelivery_applies_it_all(
    db: AsyncDatabase[Doc],
) -> None:
    await Projections(db).apply([unit_event("K1", "county_team", ["P"])])
    events = [volunteer_registered(f"v{i}", ["K1"]) for i in range(5)]
    events.append(completed("a1", "K1", at(2026, 6, 1), [("v1", 2), ("v2", 5)]))
    crashing = CrashingOnce(db)
    with pytest.raises(Crash):
        await crashing.apply(events)
    assert int((await unit(db, "K1")).get("volunteers") or 0) == 0  # nothing of the poll was written
    assert await db[VOLUNTEER_STATS].count_documents({}) == 0
    assert await db[APPLIED].count_documents({}) == 0
    await crashing.apply(events)  # the poll is delivered again
    await crashing.apply(events)  # and once more
    assert (await unit(db, "K1"))["volunteers"] == 5
    assert (await year_stats(db, "K1"))["hours_c"] == 700
    assert await hours_of(db, "v2") == (5.0, 1)
    found = await volunteer_stats(db, "v3")
    assert found is not None and found["unit_ids"] == ["K1"]


async def test_two_members_applying_the_same_events_at_once_count_them_once(
    db: AsyncDatabase[Doc], settings: ServiceSettings
) -> None:
    """A rebalance can hand a partition to another member while its old owner still applies the poll."""
    other_client = mongo_client(settings.mongo_url, app_name="test-projections-2")  # as another process would
    try:
        first, second = Projections(db), Projections(other_client[db.name])
        await first.apply([unit_event("K1", "county_team", ["P"]), unit_event("K2", "county_team", ["P"])])
        for round_ in range(5):
            people = [(f"r{round_}-v{i}", 1.5) for i in range(8)]
            poll = [volunteer_registered(vid, ["K1"]) for vid, _ in people]
            poll += [completed(f"r{round_}-a{i}", f"K{1 + i % 2}", at(2026, 7, 1 + i), people) for i in range(6)]
            poll.append(left(people[0][0], "K1", 2))
            await asyncio.gather(first.apply(poll), second.apply(poll), first.apply(poll[3:]))
        k1, k2 = await year_stats(db, "K1"), await year_stats(db, "K2")
        assert (k1["activities"], k2["activities"]) == (15, 15)
        assert k1["hours_c"] + k2["hours_c"] == 5 * 6 * 8 * 150
        assert (await unit(db, "K1"))["volunteers"] == 5 * 7
        for round_ in range(5):
            assert await hours_of(db, f"r{round_}-v3") == (9.0, 6)
        assert await db[APPLIED].count_documents({}) == 30
    finally:
        await other_client.close()


async def test_a_copy_weeks_later_still_counts_once(db: AsyncDatabase[Doc]) -> None:
    """A dead letter can be re-published up to 30 days later: what was applied is remembered longer than that."""
    assert timedelta(days=30) < APPLIED_RETENTION
    projections = Projections(db)
    activity = completed("a1", "K1", at(2026, 5, 1), [("v1", 2)])
    registration = volunteer_registered("v1", ["K1"])
    await projections.apply([registration, activity])
    await db[APPLIED].update_many({}, {"$set": {"at": utcnow() - timedelta(days=29)}})  # as if long ago
    await projections.apply([activity, registration])
    assert await hours_of(db, "v1") == (2.0, 1)
    assert ((await year_stats(db, "K1"))["activities"], (await unit(db, "K1"))["volunteers"]) == (1, 1)


async def test_membership_moves_and_stale_events_in_one_poll(db: AsyncDatabase[Doc]) -> None:
    projections = Projections(db)
    await projections.apply(
        [
            volunteer_registered("v1", ["K1"]),
            left("v1", "K1", 2),
            joined("v1", "K2", 3),
            joined("v1", "K1", 2),  # stale: version 2 was the leave
            volunteer_registered("v2", ["K1"]),
        ]
    )
    assert ((await unit(db, "K1"))["volunteers"], (await unit(db, "K2"))["volunteers"]) == (1, 1)
    await projections.apply([volunteer_inactive("v1", ["K2"], 4)])
    assert (await unit(db, "K2"))["volunteers"] == 0
    found = await volunteer_stats(db, "v1")
    assert found is not None and (found["status"], found["unit_ids"]) == ("inactive", ["K2"])


async def test_corrections_are_idempotent_in_any_order(db: AsyncDatabase[Doc]) -> None:
    projections = Projections(db)
    fix = corrected("a1", "K1", at(2026, 6, 1), "v1", previous=2, hours=3.25)
    await projections.apply([fix])  # the correction before the completion (different partitions are possible)
    await projections.apply([completed("a1", "K1", at(2026, 6, 1), [("v1", 2)]), fix])
    assert await hours_of(db, "v1") == (3.25, 1)
    assert (await year_stats(db, "K1"))["hours_c"] == 325
    k1 = {"_id": "K1", "kind": "county_team"}
    report = await monthly_report(db, Tree({"K1": k1}, k1, [k1], {"K1": ["K1"]}), "2026-06", 5)
    assert report["own"]["hours"] == 3.25
    assert [(a["activity_id"], a["hours"]) for a in report["activities_carried_out"]] == [("a1", 3.25)]


async def test_a_poll_larger_than_one_transaction_is_applied_in_chunks(db: AsyncDatabase[Doc]) -> None:
    projections = Projections(db, chunk_writes=7)
    poll = [completed(f"a{i}", "K1", at(2026, 8, 1 + i), [(f"v{i % 3}", 1), ("v9", 0.5)]) for i in range(10)]
    await projections.apply(poll)
    await projections.apply(poll[4:])
    assert ((await year_stats(db, "K1"))["activities"], await hours_of(db, "v9")) == (10, (5.0, 10))
