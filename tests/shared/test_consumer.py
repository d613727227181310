"""Consumers against the real broker and server: idempotency, retries, dead letters, poison messages."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.contracts.envelope import Envelope
from shared.contracts.events import VolunteerJoinedUnit
from shared.messaging.broker import make_broker
from shared.messaging.consumer import H_ATTEMPTS, H_REASON, EventConsumer
from shared.messaging.dlq import list_dead_letters, replay_dead_letters
from shared.messaging.topics import ensure_topics
from shared.settings import ServiceSettings
from shared.storage import apply_once, mongo_client
from tests.fixtures import eventually, make_settings, read_topic


def event(volunteer: str, unit: str = "u1") -> Envelope[Any]:
    data = VolunteerJoinedUnit(volunteer_id=volunteer, unit_id=unit, joined_at=datetime.now(UTC), version=1)
    return Envelope.new(data, source="/stvs/registry", subject=volunteer)


class Harness:
    """A consumer group on the volunteers stream whose handler counts into MongoDB (via apply_once)."""

    def __init__(self, settings: ServiceSettings, name: str) -> None:
        self.settings = settings
        self.client = mongo_client(settings.mongo_url, app_name="test")
        self.db = self.client[settings.database(name)]
        self.broker = make_broker(settings, service=name)
        self.consumer = EventConsumer(
            service=name, name="main", settings=settings, db=self.db, streams=["stvs.registry.volunteers"]
        )
        self.calls: Counter[str] = Counter()
        self.fail_first: dict[str, int] = {}
        self.always_fail: set[str] = set()

        @self.consumer.on(VolunteerJoinedUnit)
        async def count(env: Envelope[Any]) -> None:
            vid = env.data.volunteer_id
            self.calls[vid] += 1
            if vid in self.always_fail or self.calls[vid] <= self.fail_first.get(vid, 0):
                raise RuntimeError(f"handler failure for {vid}")
            await apply_once(self.db.counts, env.data.unit_id, env.id, {"$inc": {"joined": 1}})

        self.consumer.attach(self.broker)

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()
        await self.client.close()

    async def count(self, unit: str) -> int:
        doc = await self.db.counts.find_one({"_id": unit})
        return int(doc["joined"]) if doc else 0


async def publish_raw(settings: ServiceSettings, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, max_request_size=1_100_000
    )
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(settings.topic("stvs.registry.volunteers"), value, key=key)
    finally:
        await producer.stop()


async def test_the_same_event_delivered_twice_changes_state_once(settings: ServiceSettings) -> None:
    h = Harness(settings, "dup")
    await h.start()
    env = event("v-dup", unit="u-dup")
    await publish_raw(settings, [(b"v-dup", env.to_json()), (b"v-dup", env.to_json())])
    marker = event("v-dup-2", unit="u-dup")
    await publish_raw(settings, [(b"v-dup-2", marker.to_json())])
    await eventually(lambda: h.calls["v-dup-2"] == 1)
    assert await h.count("u-dup") == 2  # v-dup once, v-dup-2 once
    assert h.calls["v-dup"] == 1, "the duplicate was recognised before the handler ran"
    await h.stop()


async def test_apply_once_skips_an_event_whose_effect_was_written_before_a_crash(settings: ServiceSettings) -> None:
    client = mongo_client(settings.mongo_url, app_name="test")
    col = client[settings.database("apply")]["counts"]
    assert await apply_once(col, "u", "e1", {"$inc": {"n": 1}})
    # Redelivery after a crash that happened after the write but before the processed-id was recorded:
    assert not await apply_once(col, "u", "e1", {"$inc": {"n": 1}})
    assert await apply_once(col, "u", "e2", {"$inc": {"n": 1}})
    doc = await col.find_one({"_id": "u"})
    assert doc is not None and doc["n"] == 2
    await client.close()


async def test_a_handler_failing_twice_is_retried_and_committed_once(infra: Any) -> None:
    settings = make_settings(infra)
    await ensure_topics(settings, partitions=3)
    h = Harness(settings, "retry")
    h.fail_first["v-flaky"] = 2
    await h.start()
    await publish_raw(settings, [(b"v-flaky", event("v-flaky", unit="u-flaky").to_json())])
    await eventually(lambda: h.count("u-flaky"))
    assert h.calls["v-flaky"] == 3
    await h.stop()

    # A new process of the same group starts after the committed offset: nothing is handled again.
    h2 = Harness(settings, "retry")
    await h2.start()
    after = event("v-after", unit="u-flaky")
    await publish_raw(settings, [(b"v-after", after.to_json())])
    await eventually(lambda: h2.calls["v-after"] == 1)
    assert h2.calls["v-flaky"] == 0
    assert await h2.count("u-flaky") == 2
    dead = await list_dead_letters(settings.kafka_bootstrap, settings.topic("stvs.registry.volunteers") + ".dlq")
    assert dead == []
    await h2.stop()


async def test_poison_messages_land_in_the_dlq_with_the_reason_and_the_stream_goes_on(
    settings: ServiceSettings,
) -> None:
    h = Harness(settings, "poison")
    h.always_fail.add("v-broken-handler")
    await h.start()
    good = event("v-good", unit="u-poison")
    valid_but_bad_data = json.loads(event("v-bad-data").to_json())
    valid_but_bad_data["data"]["version"] = "not a number"
    unknown = json.loads(event("v-unknown").to_json())
    unknown["type"] = "stvs.volunteer.teleported.v1"
    no_envelope = {"hello": "world"}
    await publish_raw(
        settings,
        [
            (b"p1", b"\xff\xfe not json at all"),
            (b"p2", json.dumps(no_envelope).encode()),
            (b"p3", json.dumps(unknown).encode()),
            (b"p4", json.dumps(valid_but_bad_data).encode()),
            (b"p5", b"{" + b'"x":"' + b"a" * 1_000_100 + b'"}'),
            (b"v-broken-handler", event("v-broken-handler").to_json()),
            (b"v-good", good.to_json()),
        ],
    )
    await eventually(lambda: h.count("u-poison"))
    dlq = settings.topic("stvs.registry.volunteers") + ".dlq"
    records = await read_topic(settings.kafka_bootstrap, dlq, expect=6)
    reasons = {r.key: dict(r.headers)[H_REASON].decode() for r in records}
    assert reasons == {
        b"p1": "not_json",
        b"p2": "bad_envelope",
        b"p3": "unknown_type",
        b"p4": "bad_data",
        b"p5": "too_large",
        b"v-broken-handler": "handler_failed",
    }
    attempts = {r.key: dict(r.headers)[H_ATTEMPTS].decode() for r in records}
    assert attempts[b"v-broken-handler"] == str(settings.consumer_max_attempts)
    assert h.calls["v-broken-handler"] == settings.consumer_max_attempts

    # The operator fixes the cause and replays the handler failure: it is consumed this time.
    listed = await list_dead_letters(settings.kafka_bootstrap, dlq)
    broken = [d for d in listed if d.key == "v-broken-handler"]
    assert broken and broken[0].reason == "handler_failed"
    h.always_fail.clear()
    n = await replay_dead_letters(settings.kafka_bootstrap, dlq, {(broken[0].partition, broken[0].offset)})
    assert n == 1
    await eventually(lambda: h.count("u1"))
    await h.stop()


async def test_a_replayed_dead_letter_reaches_only_the_group_that_failed_it(infra: Any) -> None:
    settings = make_settings(infra)  # a topic of its own: no other test's dead letters
    await ensure_topics(settings, partitions=3)
    failing, other = Harness(settings, "replay_a"), Harness(settings, "replay_b")
    failing.always_fail.add("v-replayed")
    await failing.start()
    await other.start()
    env = event("v-replayed", unit="u-replayed")
    await publish_raw(settings, [(b"v-replayed", env.to_json())])
    dlq = settings.topic("stvs.registry.volunteers") + ".dlq"
    await read_topic(settings.kafka_bootstrap, dlq, expect=1)
    await eventually(lambda: other.count("u-replayed"))
    # The other group has long forgotten the event id (its memory expired): the replay must still not reach it.
    await other.db["_processed"].delete_many({})
    failing.always_fail.clear()
    n = await replay_dead_letters(settings.kafka_bootstrap, dlq, groups={failing.consumer.group})
    assert n == 1
    await eventually(lambda: failing.count("u-replayed"))
    marker = event("v-after-replay", unit="u-replayed")  # once this is through, the replay has passed `other` too
    await publish_raw(settings, [(b"v-after-replay", marker.to_json())])
    await eventually(lambda: other.calls["v-after-replay"] == 1)
    assert other.calls["v-replayed"] == 1 and await other.count("u-replayed") == 2
    assert await replay_dead_letters(settings.kafka_bootstrap, dlq, groups={"another-service-group"}) == 0
    await failing.stop()
    await other.stop()
