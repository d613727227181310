"""Outbox throughput: 100,000 events written through the outbox and published by the relay.

Figures: the relay's publish rate for a 100,000-event backlog (``relay_publish_events_per_s``, and its ratio to
the raw produce ceiling of the same run — goal ≥ 0.5), the end-to-end rate of writing the aggregates with their
events and publishing them (``write_and_publish_events_per_s``), and how fast the published events are then
removed from their documents afterwards (``clear_events_per_s``, housekeeping that runs beside publishing).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from benchmarks.harness import BenchContext
from shared.contracts.envelope import Envelope
from shared.contracts.events import VolunteerJoinedUnit
from shared.messaging.broker import make_broker
from shared.messaging.outbox import Outbox, OutboxRelay, PendingEvent, _pending
from shared.messaging.topics import ensure_topics
from shared.settings import ServiceSettings
from shared.storage import mongo_client

EVENTS = 100_000
CHUNK = 1_000


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
    finally:
        await broker.stop()
        await client.drop_database(db.name)
        await client.close()


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.01)
