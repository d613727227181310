"""The batch projections against the real FerretDB, without Kafka in between: a batch applied again (whole or in
part), a crash between the writes of one batch, offset high-water marks of the hours buckets, a second copy of an
event published later, and the pruning of old markers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.reporting import views
from services.reporting.projections import Batch, Op, Position, Projections, hours_bucket
from services.reporting.store import UNIT_STATS, UNITS, VOLUNTEER_HOURS
from shared.settings import ServiceSettings
from shared.storage import Doc, mongo_client
from tests.reporting.helpers import at, completed, corrected, unit_event, volunteer_registered


@pytest.fixture
async def db(settings: ServiceSettings) -> AsyncIterator[AsyncDatabase[Doc]]:
    client = mongo_client(settings.mongo_url, app_name="test-projections")
    database = client[settings.database("reporting_projections")]
    await client.drop_database(database.name)
    try:
        yield database
    finally:
        await client.drop_database(database.name)
        await client.close()


class Crash(Exception):
    pass


class CrashingOnce(Projections):
    """Fails the first write of one collection, as a process dying between the writes of a batch would."""

    def __init__(self, db: AsyncDatabase[Doc], collection: str) -> None:
        super().__init__(db)
        self.collection = collection
        self.crashed = False

    async def _write(
        self, docs: Mapping[tuple[str, str], Mapping[str, Op]], now: Any, prefetched: Mapping[str, Doc] = {}
    ) -> None:
        if not self.crashed and any(c == self.collection for c, _ in docs):
            self.crashed = True
            raise Crash
        await super()._write(docs, now, prefetched)


async def unit(db: AsyncDatabase[Doc], uid: str) -> Doc:
    return await db[UNITS].find_one({"_id": uid}) or {}


async def year_stats(db: AsyncDatabase[Doc], uid: str) -> Doc:
    return await db[UNIT_STATS].find_one({"_id": f"{uid}:2026"}) or {}


async def hours_of(db: AsyncDatabase[Doc], vid: str) -> float:
    found = await views.volunteer_stats(db, vid)
    return float(found["hours"]) if found else 0.0


async def test_a_batch_applied_again_in_part_counts_each_event_once(db: AsyncDatabase[Doc]) -> None:
    projections = Projections(db)
    a1 = completed("a1", "K1", at(2026, 5, 1), [("v1", 2)])
    a2 = completed("a2", "K1", at(2026, 5, 2), [("v1", 3)])
    a3 = completed("a3", "K1", at(2026, 5, 3), [("v1", 4)])
    await projections.apply([unit_event("K1", "county_team", ["P"]), a1, a2])
    await projections.apply([a1, a2, a3, a3])  # redelivered poll, larger this time, one event twice
    stats = await year_stats(db, "K1")
    assert (stats["activities"], stats["hours_c"]) == (3, 900)
    assert await hours_of(db, "v1") == 9.0


async def test_a_crash_between_volunteer_and_counters_is_repaired_on_redelivery(db: AsyncDatabase[Doc]) -> None:
    await Projections(db).apply([unit_event("K1", "county_team", ["P"])])
    events = [volunteer_registered(f"v{i}", ["K1"]) for i in range(5)]
    crashing = CrashingOnce(db, UNITS)
    with pytest.raises(Crash):
        await crashing.apply(events)  # volunteer documents written, unit counters not
    assert int((await unit(db, "K1")).get("volunteers") or 0) == 0
    await crashing.apply(events)  # the poll is delivered again
    await crashing.apply(events)  # and once more
    assert (await unit(db, "K1"))["volunteers"] == 5
    # the same, read from Kafka (offset high-water marks in the counters), and a second copy published later
    read = [volunteer_registered(f"w{i}", ["K1"]) for i in range(4)]
    where = {e.id: Position("volunteers|1", 20 + i) for i, e in enumerate(read)}
    crashing = CrashingOnce(db, UNITS)
    with pytest.raises(Crash):
        await crashing.apply(read, where)
    await crashing.apply(read, where)
    await crashing.apply(read[:2], {e.id: Position("volunteers|1", 90 + i) for i, e in enumerate(read[:2])})
    assert (await unit(db, "K1"))["volunteers"] == 9
    assert [k for k in (await unit(db, "K1"))["_applied"] if k.startswith("hw~")] == ["hw~volunteers|1"]
    found = await views.volunteer_stats(db, "v3")
    assert found is not None and found["unit_ids"] == ["K1"]


async def test_hours_buckets_skip_by_offset_and_a_later_copy_is_dropped(db: AsyncDatabase[Doc]) -> None:
    projections = CrashingOnce(db, UNIT_STATS)
    event = completed("a1", "K1", at(2026, 6, 1), [("v1", 2), ("v2", 5)])
    where = {event.id: Position("activities|0", 7)}
    with pytest.raises(Crash):
        await projections.apply([event], where)  # buckets written, unit_stats (written last) not
    assert await hours_of(db, "v1") == 2.0
    await projections.apply([event], where)  # redelivered at the same offset: buckets skip, unit_stats applies
    assert (await hours_of(db, "v1"), await hours_of(db, "v2")) == (2.0, 5.0)
    assert (await year_stats(db, "K1"))["hours_c"] == 700
    # the producer published it a second time (another offset): dropped whole
    await projections.apply([event], {event.id: Position("activities|0", 12)})
    assert (await hours_of(db, "v1"), (await year_stats(db, "K1"))["hours_c"]) == (2.0, 700)
    # the buckets keep a high-water mark per partition, not one marker per event
    bucket = await db[VOLUNTEER_HOURS].find_one({"_id": hours_bucket("v1")})
    assert bucket is not None and set(bucket["_applied"]) == {"hw~activities|0"}


async def test_corrections_are_idempotent_in_any_order(db: AsyncDatabase[Doc]) -> None:
    projections = Projections(db)
    fix = corrected("a1", "K1", at(2026, 6, 1), "v1", previous=2, hours=3.25)
    await projections.apply([fix])  # the correction before the completion (different partitions are possible)
    await projections.apply([completed("a1", "K1", at(2026, 6, 1), [("v1", 2)]), fix])
    assert await hours_of(db, "v1") == 3.25
    assert (await year_stats(db, "K1"))["hours_c"] == 325
    k1 = {"_id": "K1", "kind": "county_team"}
    report = await views.monthly_report(db, views.Tree({"K1": k1}, k1, [k1], {"K1": ["K1"]}), "2026-06", 5)
    assert report["own"]["hours"] == 3.25
    assert [(a["activity_id"], a["hours"]) for a in report["activities_carried_out"]] == [("a1", 3.25)]


async def test_markers_older_than_the_retention_are_pruned_when_their_document_is_written(
    db: AsyncDatabase[Doc],
) -> None:
    keeping = Projections(db)
    await keeping.apply([completed("a1", "K1", at(2026, 5, 1), [("v1", 1)])])
    await keeping.apply([completed("a2", "K1", at(2026, 5, 2), [("v1", 1)])])
    assert len((await year_stats(db, "K1"))["_applied"]) == 2
    pruning = Projections(db, retention=timedelta(0))
    last = completed("a3", "K1", at(2026, 5, 3), [("v1", 1)])
    await pruning.apply([last])
    stats = await year_stats(db, "K1")
    assert set(stats["_applied"]) == {last.id}  # the older two are gone, the counts stay
    assert (stats["activities"], stats["hours_c"]) == (3, 300)


def test_ops_of_one_event_on_one_document_are_merged_not_deduplicated() -> None:
    batch = Batch()
    batch.inc(UNITS, "K1", "e1", {"volunteers": 1}, {})
    batch.inc(UNITS, "K1", "e1", {"volunteers": 1}, {})
    assert batch.docs[(UNITS, "K1")]["e1"].inc == {"volunteers": 2}
