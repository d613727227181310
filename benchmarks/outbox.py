"""Outbox throughput: 100,000 events written through the outbox and published by the relay.

Figures: the relay's publish rate for a 100,000-event backlog (``relay_publish_events_per_s``, and its ratio to
the raw produce ceiling of the same run — goal ≥ 0.5), the end-to-end rate of writing the aggregates with their
events and publishing them (``write_and_publish_events_per_s``), and how fast the published events are then
removed from their documents afterwards (``clear_events_per_s``, housekeeping that runs beside publishing).

The relay could instead follow a change stream of the outbox collections (the storage issue asked to measure both
and keep the faster correct one). Step 3 measures the two paths from a write to its event acknowledged by Kafka,
with the same relay publishing: the hand-over the platform uses (the writing process hands its events to its
relay once the write is acknowledged) and a change stream (`watch` on the collection, the inserted document's
staged events published as each change arrives): p50/p99 of one event written at a time
(``handover_p50_ms``, ``change_stream_p50_ms`` …) and the rate for 20,000 events written in chunks
(``handover_events_per_s``, ``change_stream_events_per_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from benchmarks.harness import BenchContext
from shared.contracts.envelope import Envelope
from shared.contracts.events import VolunteerJoinedUnit
from shared.messaging.broker import make_broker
from shared.messaging.outbox import Outbox, PendingEvent, _pending
from shared.messaging.relay import OutboxRelay
from shared.messaging.topics import ensure_topics
from shared.settings import ServiceSettings
from shared.storage import Doc, mongo_client

EVENTS = 100_000
CHUNK = 1_000
PATH_SINGLES = 300  # events written one at a time, for the latency of each path
PATH_EVENTS = 20_000  # events written in chunks, for the rate of each path


def _events(n: int, prefix: str) -> list[tuple[dict[str, Any], list[Envelope[Any]]]]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        vid = f"{prefix}-{i}"
        data = VolunteerJoinedUnit(volunteer_id=vid, unit_id=f"unit-{i % 1500}", joined_at=now, version=1)
        out.append(
            ({"_id": vid, "name": "志愿者", "pad": "x" * 600}, [Envelope.new(data, source="/stvs/bench", subject=vid)])
        )
    return out


async def bench(ctx: BenchContext) -> None:
    settings = ServiceSettings(
        kafka_bootstrap=ctx.kafka_bootstrap, mongo_url=ctx.mongo_url, namespace="b" + uuid.uuid4().hex[:8]
    )
    await ensure_topics(settings)
    client = mongo_client(settings.mongo_url, app_name="bench")
    db = client[settings.database("outbox_bench")]
    broker = make_broker(settings, service="bench")
    await broker.start()
    try:
        # 1. A backlog the relay finds already written (as after an outage): the relay's own publish rate.
        staged = [Outbox.stage_insert(doc, evs) for doc, evs in _events(EVENTS, "backlog")]
        for start in range(0, EVENTS, CHUNK):
            await db.volunteers.insert_many(staged[start : start + CHUNK])
        pending: list[PendingEvent] = [
            _pending("volunteers", d["_id"], eid, entry) for d in staged for eid, entry in d["_outbox"].items()
        ]
        relay = OutboxRelay(db, settings, service="outbox_bench", collections=["volunteers"])
        started = time.perf_counter()
        for start in range(0, EVENTS, relay.batch):
            await relay.publish(pending[start : start + relay.batch])
        publish_s = time.perf_counter() - started
        ctx.report("relay_publish_events_per_s", EVENTS / publish_s)
        ceiling = ctx.ceiling.get("kafka_produce_events_per_s")
        if ceiling:
            ctx.report("relay_publish_ratio_to_produce_ceiling", EVENTS / publish_s / ceiling)
        started = time.perf_counter()
        for start in range(0, EVENTS, relay.batch):
            await relay._clear(pending[start : start + relay.batch])
        ctx.report("clear_events_per_s", EVENTS / (time.perf_counter() - started))

        # 2. End to end through a running relay: write aggregates with their events and publish them.
        relay = OutboxRelay(db, settings, service="outbox_bench_live", collections=["fresh"])
        await relay.start()
        outbox = Outbox(db, relay)
        fresh = _events(EVENTS, "live")
        started = time.perf_counter()
        for start in range(0, EVENTS, CHUNK):
            await outbox.insert_many("fresh", fresh[start : start + CHUNK])
        while relay.backlog:
            await _sleep()
        e2e_s = time.perf_counter() - started
        ctx.report("write_and_publish_events_per_s", EVENTS / e2e_s)
        await relay.stop(flush_s=0)  # clearing goes on beside publishing; what is left is the sweeper's

        # 3. Hand-over against a change stream, from the write to Kafka's acknowledgement.
        await _paths(ctx, db, settings)
    finally:
        await broker.stop()
        await client.drop_database(db.name)
        await client.close()


async def _sleep() -> None:
    await asyncio.sleep(0.01)


class _TimedRelay(OutboxRelay):
    """The platform's relay, noting when each event's publication was acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acked: dict[str, float] = {}
        self.arrived = asyncio.Event()

    async def publish(self, events: Sequence[PendingEvent]) -> None:
        await super().publish(events)
        now = time.perf_counter()
        for ev in events:
            self.acked[ev.event_id] = now
        self.arrived.set()

    async def until(self, count: int, follower: asyncio.Task[None] | None = None) -> None:
        while len(self.acked) < count:
            if follower is not None and follower.done():
                follower.result()  # the change-stream relay failed: say why
                raise RuntimeError("the change-stream relay stopped")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 1.0)


async def _paths(ctx: BenchContext, db: Any, settings: ServiceSettings) -> None:
    for path in ("handover", "change_stream"):
        collection = f"path_{path}"
        relay = _TimedRelay(db, settings, service=f"outbox_bench_{path}", collections=[collection])
        follower = asyncio.create_task(_follow(db[collection], relay)) if path == "change_stream" else None
        if follower is not None:
            await asyncio.sleep(1.0)  # the change stream is open before the first write
        else:
            await relay.start()
        outbox = Outbox(db, relay if follower is None else None)
        try:
            latencies = []
            for doc, evs in _events(PATH_SINGLES, f"{path}-one"):
                started = time.perf_counter()
                await outbox.insert_one(collection, doc, evs)
                await relay.until(len(relay.acked) + 1, follower)
                latencies.append((relay.acked[str(evs[0].id)] - started) * 1000)
            ctx.report(f"{path}_p50_ms", statistics.median(latencies))
            ctx.report(f"{path}_p99_ms", statistics.quantiles(latencies, n=100)[98])
            fresh = _events(PATH_EVENTS, f"{path}-bulk")
            done = len(relay.acked) + PATH_EVENTS
            started = time.perf_counter()
            for start in range(0, PATH_EVENTS, CHUNK):
                await outbox.insert_many(collection, fresh[start : start + CHUNK])
            await relay.until(done, follower)
            ctx.report(f"{path}_events_per_s", PATH_EVENTS / (time.perf_counter() - started))
        finally:
            if follower is not None:
                follower.cancel()
            else:
                await relay.stop(flush_s=0)
            await relay._drop_producer()


async def _follow(collection: Any, relay: OutboxRelay) -> None:
    """A change-stream relay: every inserted document's staged events, published as its change arrives."""
    # A short await: after a change, whatever else is already there joins its batch without a second's wait.
    watching = collection.watch([{"$match": {"operationType": "insert"}}], max_await_time_ms=5)
    async with await watching as stream:
        while True:
            changes: list[Doc] = [await stream.next()]
            while len(changes) < relay.batch and (more := await stream.try_next()) is not None:
                changes.append(more)
            pending = [
                _pending(collection.name, c["fullDocument"]["_id"], eid, entry)
                for c in changes
                for eid, entry in c["fullDocument"].get("_outbox", {}).items()
            ]
            await relay.publish(pending)
