"""Fault 5: poison messages of every kind published straight onto the topics mid-stream. Each lands in the DLQ of
every consumer group reading that topic, with its reason; the stream goes on; the operator lists the dead letters
and replays them through the API once the cause is fixed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaProducer

from infra.local.fleet import Fleet
from shared.contracts import events as ev
from tests.resilience.support import Figures, Workload, compare, report, settle, volume

GROUPS_OF = {
    ev.VOLUNTEERS: {
        "activities.volunteers",
        "gateway.volunteers",
        "notifier.delivery",
        "notifier.webhooks",
        "reporting.projections",
    },
    ev.ACTIVITIES: {"notifier.obligations", "notifier.delivery", "notifier.webhooks", "reporting.projections"},
}


def poison() -> dict[str, bytes]:
    """reason -> message."""
    now = datetime.now(UTC).isoformat()

    def envelope(type_: str, data: object) -> bytes:
        body = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/stvs/chaos",
            "type": type_,
            "subject": "poison",
            "time": now,
            "datacontenttype": "application/json",
            "data": data,
        }
        return json.dumps(body).encode()

    return {
        "not_json": b"\x00\xff this is not json {",
        "bad_envelope": json.dumps({"hello": "world", "id": 1}).encode(),
        "unknown_type": envelope("stvs.chaos.unheard_of.v1", {"x": 1}),
        "bad_data": envelope(ev.VolunteerRegistered.event_type, {"volunteer_id": 42, "version": -1}),
        "too_large": b'{"pad":"' + b"x" * 1_200_000 + b'"}',
    }


def fixed_event() -> tuple[str, bytes]:
    """A valid event that had been dead-lettered (say, by a bug since fixed): an activity publication."""
    aid = "chaos-replayed-" + uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    data = ev.ActivityPublished(
        activity_id=aid,
        unit_id="chaos-unit",
        title="补发的活动",
        line_of_work="community_school",
        themes=["poverty_health"],
        starts_at=now,
        ends_at=now,
        capacity=1,
        published_at=now,
    )
    from shared.contracts.envelope import Envelope

    return aid, Envelope.new(data, source="/stvs/activities", subject=aid).to_json()


async def test_poison_messages_dead_lettered_listed_and_replayed(fleet: Fleet) -> None:
    vol = volume(slow=False)
    wl = Workload(fleet, vol)
    bootstrap = fleet.endpoints.kafka_bootstrap
    try:
        await asyncio.wait_for(wl.seed(), 120)
        stream = asyncio.create_task(wl.stream())
        await asyncio.wait_for(wl.reached(40), 300)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=3_000_000, acks="all")
        await producer.start()
        sent: dict[str, dict[str, bytes]] = {}
        try:
            for stream_name in GROUPS_OF:
                topic = fleet.settings.topic(stream_name)
                sent[topic] = poison()
                for msg in sent[topic].values():
                    await producer.send_and_wait(topic, msg, key=b"poison")
            aid, fixed = fixed_event()
            activities_dlq = fleet.settings.topic(ev.ACTIVITIES) + ".dlq"
            await producer.send_and_wait(
                activities_dlq,
                fixed,
                key=aid.encode(),
                headers=[
                    ("x-stvs-reason", b"handler_failed"),
                    ("x-stvs-error", b"RuntimeError('a bug, since fixed')"),
                    ("x-stvs-attempts", b"4"),
                    ("x-stvs-original-topic", fleet.settings.topic(ev.ACTIVITIES).encode()),
                    ("x-stvs-consumer-group", f"{fleet.namespace}.stvs.notifier.delivery".encode()),
                ],
            )
        finally:
            await producer.stop()
        t0 = time.monotonic()
        await asyncio.wait_for(stream, 900)  # the stream goes on past the poison
        figures = Figures("poison")
        figures.recover_s = await settle(fleet, wl, vol.settle_s) + (time.monotonic() - t0) * 0
        expected = {t + ".dlq": {m.decode(errors="replace")[:100] for m in msgs.values()} for t, msgs in sent.items()}
        expected[activities_dlq].add(fixed.decode()[:100])
        dead = await compare(fleet, wl, figures, expected_dead=expected)

        # every poison message is in the DLQ of every group reading its topic, with its reason
        missing = []
        for topic, msgs in sent.items():
            stream_name = topic.removeprefix(fleet.namespace + ".")
            for reason, msg in msgs.items():
                groups = {
                    r.headers.get("x-stvs-consumer-group", "").removeprefix(f"{fleet.namespace}.stvs.")
                    for r in dead.get(topic + ".dlq", [])
                    if r.value[:100] == msg[:100] and r.headers.get("x-stvs-reason") == reason
                }
                if groups != GROUPS_OF[stream_name]:
                    missing.append((topic, reason, sorted(GROUPS_OF[stream_name] - groups)))
        figures.dead_letters = sum(len(v) for v in dead.values())

        # the operator lists and replays through the gateway
        async with httpx.AsyncClient(base_url=fleet.api, timeout=60) as client:
            r = await client.post("/auth/signin", json={"username": "province", "password": "province-pass-1"})
            auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
            listed = await client.get("/notifier/admin/dlq", params={"stream": ev.ACTIVITIES}, headers=auth)
            assert listed.status_code == 200, listed.text
            letters = listed.json()
            reasons = {d["reason"] for d in letters}
            assert {"not_json", "bad_envelope", "unknown_type", "too_large"} <= reasons, reasons
            mine = [d for d in letters if d["key"] == aid]
            assert mine and mine[0]["error"].startswith("RuntimeError"), letters[:3]
            big = [d for d in letters if d["reason"] == "too_large"]
            assert big and big[0]["size"] <= 1_000_000, big[:1]  # stored truncated, the original size in a header
            replay = await client.post(
                "/notifier/admin/dlq/replay",
                json={"stream": ev.ACTIVITIES, "offsets": [[mine[0]["partition"], mine[0]["offset"]]]},
                headers=auth,
            )
            assert replay.status_code == 200 and replay.json()["replayed"] == 1, replay.text

        # the replayed event is applied (once) by the consumers of its topic
        from shared.storage import mongo_client

        client_db = mongo_client(fleet.endpoints.mongo_url, app_name="chaos-check")
        try:
            deadline = time.monotonic() + 60
            doc = None
            while doc is None and time.monotonic() < deadline:
                doc = await client_db[fleet.settings.database("notifier")]["activities"].find_one({"_id": aid})
                await asyncio.sleep(0.5)
        finally:
            await client_db.close()
        report(figures, wl, poison=sum(len(v) for v in sent.values()), misplaced=len(missing))
        assert doc is not None and doc["status"] == "published", "the replayed dead letter was not applied"
        assert not missing, missing
        assert figures.lost == 0 and figures.duplicated == 0, figures.findings
    finally:
        await wl.close()


async def _duplicates_skipped(url: str) -> float:
    """Events this process found already processed (a redelivery it had to skip), from its /metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(url + "/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("stvs_events_consumed_total{") and 'outcome="duplicate"' in line
    )


async def test_sigterm_under_load_finishes_in_flight_and_redoes_nothing(fleet: Fleet) -> None:
    """Fault 6: each service stopped with SIGTERM mid-stream exits 0 after finishing what it had taken; after the
    restart no event is handled again (no duplicate skipped either: every offset was committed)."""
    from infra.local.fleet import SERVICES
    from tests.resilience.support import assert_clean, chaos_dead_letters, run_fault

    redone: dict[str, float] = {}
    codes: dict[str, int | None] = {}
    known_dead = await chaos_dead_letters(fleet)  # the poison test's, in the same namespace

    async def fault(wl: Workload) -> None:
        for name in SERVICES:
            codes[name] = await fleet.stop_service(name)
            await fleet.start_service(name)
            await wl.reached(wl.progress + 10)
            redone[name] = await _duplicates_skipped(fleet.url(name))

    corps = await _corps_of(fleet)
    wl = Workload(
        fleet,
        volume(slow=False),
        first_seq=50_000,
        city=("tangshan", "唐山市"),
        city_admin=("chaos_admin2", "chaos-admin-pass-2"),
    )
    await wl.seed(corps_id=corps)
    figures, _ = await run_fault(fleet, "sigterm", fault, slow=False, wl=wl, expected_dead=known_dead)
    print(f"  exit codes after SIGTERM: {codes}; events handled again after restart: {redone}")
    assert all(code in (0, -15) for code in codes.values()), codes  # -9: had to be killed
    assert not any(redone.values()), redone
    assert_clean(figures)


async def _corps_of(fleet: Fleet) -> str | None:
    """The province corps the poison test created, if it ran first in this fleet."""
    async with httpx.AsyncClient(base_url=fleet.api, timeout=30) as client:
        r = await client.post("/auth/signin", json={"username": "province", "password": "province-pass-1"})
        if r.status_code != 200:
            return None
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        units = (await client.get("/units", headers=auth, params={"kind": "province_corps"})).json()
    items = units["items"] if isinstance(units, dict) else units
    return next((str(u["id"]) for u in items if u["kind"] == "province_corps"), None)
