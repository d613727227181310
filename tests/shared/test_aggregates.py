"""The storage port on the real server: no update lost between writers that share nothing but the database, a
transaction announces its events only once it committed, and an event is applied to a document once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.aggregates import Aggregates, Contended, Write, in_transaction
from shared.contracts.envelope import Envelope, parse_envelope
from shared.contracts.events import VOLUNTEERS, VolunteerJoinedUnit
from shared.messaging.outbox import OUTBOX_N, Outbox
from shared.messaging.relay import OutboxRelay
from shared.settings import ServiceSettings
from shared.storage import apply_once, mongo_client
from tests.fixtures import read_topic


def joined(volunteer: str, unit: str) -> Envelope[Any]:
    data = VolunteerJoinedUnit(volunteer_id=volunteer, unit_id=unit, joined_at=datetime.now(UTC), version=1)
    return Envelope.new(data, source="/stvs/registry", subject=volunteer)


async def test_writers_in_two_processes_lose_no_update(settings: ServiceSettings) -> None:
    """Two clients (as two replicas would have) × 10 tasks × 20 read-decide-write changes of one document."""
    clients = [mongo_client(settings.mongo_url, app_name=f"replica-{i}") for i in range(2)]
    stores = [Aggregates(Outbox(c[settings.database("port_race")], relay=None), "counters") for c in clients]
    await stores[0].create({"_id": "c1", "n": 0, "seen": []})

    def add(token: str) -> Any:
        def decide(doc: dict[str, Any] | None) -> Write[int]:
            assert doc is not None
            # the decision reads the document: a lost update would lose a token (a plain $inc could not show it)
            return Write({"$set": {"n": doc["n"] + 1, "seen": [*doc["seen"], token]}}, result=doc["n"] + 1)

        return decide

    async def writer(store: Aggregates, name: str) -> None:
        for i in range(20):
            await store.change("c1", add(f"{name}-{i}"))

    await asyncio.gather(*(writer(stores[t % 2], f"w{t}") for t in range(10)))
    doc = await stores[0].get("c1")
    assert doc is not None
    assert doc["n"] == 200 and len(set(doc["seen"])) == 200, "every change counted once"
    assert doc["version"] == 201
    for c in clients:
        await c.close()


async def test_a_change_that_never_gets_its_turn_is_refused_not_written(settings: ServiceSettings) -> None:
    client = mongo_client(settings.mongo_url, app_name="test")
    outbox = Outbox(client[settings.database("port_contended")], relay=None)
    store = Aggregates(outbox, "things", attempts=3)
    await store.create({"_id": "t1", "n": 0})

    async def meddle(doc: dict[str, Any] | None) -> Write[None]:
        await outbox.db.things.update_one({"_id": "t1"}, {"$inc": {"version": 1}})  # someone else got there first
        return Write({"$set": {"n": 99}})

    with pytest.raises(Contended):
        await store.change("t1", meddle)
    doc = await store.get("t1")
    assert doc is not None and doc["n"] == 0 and doc["version"] == 4
    await client.close()


async def test_a_transaction_publishes_its_events_only_once_committed(settings: ServiceSettings) -> None:
    client = mongo_client(settings.mongo_url, app_name="test")
    db = client[settings.database("port_tx")]
    relay = OutboxRelay(db, settings, service="port_tx", collections=["volunteers", "units"])
    await relay.start()
    outbox = Outbox(db, relay)
    volunteers, units = Aggregates(outbox, "volunteers"), Aggregates(outbox, "units")
    await units.create({"_id": "u1", "members": 0})

    aborted, committed = joined("v-abort", "u1"), joined("v-tx", "u1")

    async def join_then_fail(tx: Any) -> None:
        await volunteers.create({"_id": "v-abort"}, [aborted], tx=tx)
        raise RuntimeError("the second write's check failed")

    with pytest.raises(RuntimeError):
        await in_transaction(outbox, join_then_fail)
    assert await volunteers.get("v-abort") is None, "nothing of an aborted transaction is stored"

    async def join(tx: Any) -> None:
        await volunteers.create({"_id": "v-tx"}, [committed], tx=tx)
        unit = await units.get("u1", tx)
        assert unit is not None
        assert await units.write(unit, Write({"$inc": {"members": 1}}), tx=tx)

    await in_transaction(outbox, join)
    unit = await units.get("u1")
    assert unit is not None and unit["members"] == 1 and unit["version"] == 2

    records = await read_topic(settings.kafka_bootstrap, settings.topic(VOLUNTEERS), expect=1)
    assert [parse_envelope(r.value).id for r in records] == [committed.id], "the aborted event never left"
    await relay.flush()
    doc = await volunteers.get("v-tx")
    assert doc is not None and doc[OUTBOX_N] == 0
    await relay.stop()
    await client.close()


async def test_an_event_is_applied_once_however_often_it_arrives(settings: ServiceSettings) -> None:
    client = mongo_client(settings.mongo_url, app_name="test")
    col = client[settings.database("port_once")]["stats"]
    applied = await asyncio.gather(*(apply_once(col, "u1", "event-1", {"$inc": {"hours": 2}}) for _ in range(20)))
    applied += [await apply_once(col, "u1", "event-2", {"$inc": {"hours": 3}})]
    assert applied.count(True) == 2
    doc = await col.find_one({"_id": "u1"})
    assert doc is not None and doc["hours"] == 5
    await client.close()
