"""The outbox against the real broker and server: nothing lost after a crash, nothing re-published twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from shared.contracts.envelope import Envelope, parse_envelope
from shared.contracts.events import VOLUNTEERS, VolunteerJoinedUnit
from shared.messaging.broker import make_broker
from shared.messaging.outbox import OUTBOX, OUTBOX_N, Outbox
from shared.messaging.relay import OutboxRelay
from shared.settings import ServiceSettings
from shared.storage import mongo_client
from tests.fixtures import eventually, read_topic


def joined(volunteer: str, unit: str, version: int) -> Envelope[Any]:
    data = VolunteerJoinedUnit(volunteer_id=volunteer, unit_id=unit, joined_at=datetime.now(UTC), version=version)
    return Envelope.new(data, source="/stvs/registry", subject=volunteer)


async def test_relay_publishes_what_a_crashed_writer_left_and_nothing_twice_after_restart(
    settings: ServiceSettings,
) -> None:
    client = mongo_client(settings.mongo_url, app_name="test")
    db = client[settings.database("outbox_crash")]
    # The "crashed" writer: state and events written atomically, but the process died before any relay saw them.
    crashed = Outbox(db, relay=None)
    events = [joined("v-crash", "u1", 1), joined("v-crash", "u2", 2)]
    await crashed.insert_one("volunteers", {"_id": "v-crash", "name": "张三"}, events)

    broker = make_broker(settings, service="test")
    await broker.start()
    relay = OutboxRelay(db, settings, service="outbox_crash", collections=["volunteers"])
    assert await relay.sweep(grace_s=0) == 2
    doc = await db.volunteers.find_one({"_id": "v-crash"})
    assert doc is not None and doc[OUTBOX_N] == 0 and not doc.get(OUTBOX)

    # The first relay stops (its sweeper lease is released), and its successor finds nothing left to publish.
    await relay.stop()
    relay2 = OutboxRelay(db, settings, service="outbox_crash", collections=["volunteers"])
    assert await relay2.sweep(grace_s=0) == 0
    # ...and it does sweep (a held lease would make it return 0 too): a later left-behind event is published.
    late = joined("v-crash", "u3", 3)
    await crashed.update_one("volunteers", {"_id": "v-crash"}, {"$set": {"name": "张三"}}, [late])
    assert await relay2.sweep(grace_s=0) == 1, "the first relay gave the sweeper lease up when it stopped"

    records = await read_topic(settings.kafka_bootstrap, settings.topic(VOLUNTEERS), expect=3)
    ids = [parse_envelope(r.value).id for r in records if r.key == b"v-crash"]
    assert ids == [e.id for e in [*events, late]], "published once each, in the order they were written"
    await relay2.stop()
    await broker.stop()
    await client.close()


async def test_fast_path_publishes_in_order_per_aggregate_and_clears_the_document(settings: ServiceSettings) -> None:
    client = mongo_client(settings.mongo_url, app_name="test")
    db = client[settings.database("outbox_fast")]
    broker = make_broker(settings, service="test")
    await broker.start()
    relay = OutboxRelay(db, settings, service="outbox_fast", collections=["volunteers"])
    await relay.start()
    outbox = Outbox(db, relay)

    await outbox.insert_one("volunteers", {"_id": "v-fast", "units": []}, [joined("v-fast", "u0", 1)])
    sent = [joined("v-fast", f"u{i}", i + 1) for i in range(1, 20)]
    for i, env in enumerate(sent, start=1):
        result = await outbox.update_one("volunteers", {"_id": "v-fast"}, {"$push": {"units": f"u{i}"}}, [env])
        assert result.modified_count == 1
    await relay.flush()

    records = await read_topic(settings.kafka_bootstrap, settings.topic(VOLUNTEERS), expect=20)
    versions = [parse_envelope(r.value).data.version for r in records if r.key == b"v-fast"]  # type: ignore[attr-defined]
    assert versions == list(range(1, 21))

    async def cleared() -> bool:
        doc = await db.volunteers.find_one({"_id": "v-fast"})
        return doc is not None and doc[OUTBOX_N] == 0 and doc[OUTBOX] == {} and len(doc["units"]) == 19

    await eventually(cleared)
    await relay.stop()
    await broker.stop()
    await client.close()


async def test_an_update_that_matches_nothing_publishes_nothing(settings: ServiceSettings) -> None:
    client = mongo_client(settings.mongo_url, app_name="test")
    db = client[settings.database("outbox_phantom")]
    broker = make_broker(settings, service="test")
    await broker.start()
    relay = OutboxRelay(db, settings, service="outbox_phantom", collections=["volunteers"])
    await relay.start()
    outbox = Outbox(db, relay)
    phantom = joined("v-missing", "u1", 1)
    result = await outbox.update_one("volunteers", {"_id": "v-missing"}, {"$set": {"x": 1}}, [phantom])
    assert result.matched_count == 0
    await relay.flush()
    assert relay.backlog == 0
    assert await relay.sweep(grace_s=0) == 0
    records = await read_topic(settings.kafka_bootstrap, settings.topic(VOLUNTEERS), expect=1, timeout_s=2)
    assert all(parse_envelope(r.value).id != phantom.id for r in records)
    await relay.stop()
    await broker.stop()
    await client.close()


async def test_the_sweeper_leaves_alone_the_events_of_a_write_still_under_way(settings: ServiceSettings) -> None:
    client = mongo_client(settings.mongo_url, app_name="test")
    db = client[settings.database("outbox_hold")]
    relay = OutboxRelay(db, settings, service="outbox_hold", collections=["volunteers"])
    outbox = Outbox(db, relay)
    staged = [Outbox.stage_insert({"_id": f"v-hold-{i}"}, [joined(f"v-hold-{i}", "u1", 1)]) for i in range(3)]
    held = outbox.hold(staged)
    await db.volunteers.insert_many(staged[:2])  # a chunked import, part-way through
    assert await relay.sweep(grace_s=0) == 0
    outbox.release(held)  # the import is taken back: now they would be the sweeper's
    assert await relay.sweep(grace_s=0) == 2
    await relay.stop()
    await client.close()


async def test_a_sweeper_running_beside_the_writer_publishes_nothing_twice(settings: ServiceSettings) -> None:
    """A sweep may read a write the server applied before the writer heard back: it must leave those events alone."""
    client = mongo_client(settings.mongo_url, app_name="test")
    db = client[settings.database("outbox_race")]
    broker = make_broker(settings, service="test")
    await broker.start()
    relay = OutboxRelay(db, settings, service="outbox_race", collections=["volunteers"])
    await relay.start()
    outbox = Outbox(db, relay)
    writes = 120
    stop = asyncio.Event()

    async def sweep_all_the_time() -> int:
        swept = 0
        while not stop.is_set():
            swept += await relay.sweep(grace_s=0)
        return swept

    sweeper = asyncio.create_task(sweep_all_the_time())
    await outbox.insert_one("volunteers", {"_id": "v-race", "n": 0}, [joined("v-race", "u0", 1)])
    for i in range(1, writes):
        await outbox.update_one("volunteers", {"_id": "v-race"}, {"$inc": {"n": 1}}, [joined("v-race", f"u{i}", i + 1)])
    await relay.flush()
    stop.set()
    assert await sweeper == 0, "every event was the fast path's: the sweeper took none of them"

    records = await read_topic(settings.kafka_bootstrap, settings.topic(VOLUNTEERS), expect=writes)
    versions = [parse_envelope(r.value).data.version for r in records if r.key == b"v-race"]  # type: ignore[attr-defined]
    assert versions == list(range(1, writes + 1))
    await relay.stop()
    await broker.stop()
    await client.close()
