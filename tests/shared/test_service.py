"""The service frame: graceful shutdown finishes and commits in-flight work; consumer lag is measured."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.contracts.envelope import Envelope
from shared.contracts.events import VOLUNTEERS, VolunteerJoinedUnit
from shared.identity import Identity, acting_as
from shared.service import Service
from shared.settings import ServiceSettings
from tests.fixtures import eventually, signing


def joined(volunteer: str) -> Envelope[Any]:
    data = VolunteerJoinedUnit(volunteer_id=volunteer, unit_id="u1", joined_at=datetime.now(UTC), version=1)
    return Envelope.new(data, source="/stvs/registry", subject=volunteer)


def slow_service(settings: ServiceSettings, started: list[str], finished: list[str]) -> Service:
    service = Service("graceful", settings, outbox_collections=["volunteers"])
    consumer = service.consumer("main", [VOLUNTEERS])

    @consumer.on(VolunteerJoinedUnit)
    async def slow(env: Envelope[Any]) -> None:
        started.append(env.data.volunteer_id)
        await asyncio.sleep(1.5)
        await service.db.done.insert_one({"_id": env.id})
        finished.append(env.data.volunteer_id)

    return service


async def publish(settings: ServiceSettings, *events: Envelope[Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for env in events:
            await producer.send_and_wait(settings.topic(VOLUNTEERS), env.to_json(), key=env.subject.encode())
    finally:
        await producer.stop()


async def test_stopping_finishes_the_handler_in_flight_and_the_restart_redoes_nothing(
    settings: ServiceSettings,
) -> None:
    started: list[str] = []
    finished: list[str] = []
    service = slow_service(settings, started, finished)
    await service.start()
    await publish(settings, joined("v-inflight"))
    await eventually(lambda: started == ["v-inflight"])
    await service.stop()  # SIGTERM path: stop polling, let the handler finish, commit, close
    assert finished == ["v-inflight"]

    started2: list[str] = []
    finished2: list[str] = []
    again = slow_service(settings, started2, finished2)
    await again.start()
    try:
        await publish(settings, joined("v-next"))
        await eventually(lambda: finished2 == ["v-next"])
        assert started2 == ["v-next"], "the committed event is not handled again"
        lag = await again.consumers[0].lag()
        assert lag == {settings.topic(VOLUNTEERS): 0}
    finally:
        await again.stop()


async def test_consumer_lag_counts_what_is_waiting(settings: ServiceSettings) -> None:
    service = Service("lagging", settings)
    consumer = service.consumer("main", [VOLUNTEERS])
    consumer.on(VolunteerJoinedUnit)(_ignore)
    await publish(settings, joined("a"), joined("b"), joined("c"))
    lag = await consumer.lag()  # the group has committed nothing yet
    assert lag[settings.topic(VOLUNTEERS)] >= 3
    await service.client.close()


async def _ignore(env: Envelope[Any]) -> None:
    return None


async def test_health_and_readiness_report_kafka_mongodb_and_the_outbox(settings: ServiceSettings) -> None:
    service = Service("health", settings, outbox_collections=["things"])
    app = service.create_app(title="test")
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, auth=signing(app), base_url="http://s") as client,
    ):
        assert (await client.get("/healthz")).json() == {"status": "ok", "service": "health"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "mongodb": "ok", "kafka": "ok", "outbox_backlog": 0}
        metrics = await client.get("/metrics")
        assert "stvs_events_published_total" in metrics.text
        unauthorised = await client.get("/admin/dlq", params={"stream": VOLUNTEERS})
        assert unauthorised.status_code == 401
        assert unauthorised.headers["content-type"] == "application/problem+json"
        assert "网关" in unauthorised.json()["detail"]
        admin = acting_as(Identity(subject="p", role="province_admin"))
        empty = await client.get("/admin/dlq", params={"stream": VOLUNTEERS}, headers=admin)
        assert empty.status_code == 404, "this service consumes no stream"
        huge = await client.get("/admin/dlq", params={"stream": VOLUNTEERS, "limit": 10**9}, headers=admin)
        assert huge.status_code == 422, "a listing of dead letters is bounded"
        assert huge.headers["content-type"] == "application/problem+json"


async def test_processed_event_ids_are_kept_while_their_dead_letters_can_be_replayed(
    settings: ServiceSettings,
) -> None:
    service = Service("memory", settings.model_copy(update={"dlq_retention_days": 30}))
    await service.start()
    try:
        indexes = await service.db["_processed"].index_information()
        ttl = [spec["expireAfterSeconds"] for spec in indexes.values() if "expireAfterSeconds" in spec]
        assert ttl == [37 * 86_400], indexes  # 30 days of dead letters, and a week more
    finally:
        await service.stop()


async def test_metrics_and_readiness_are_for_operators_only(settings: ServiceSettings) -> None:
    app = Service("ops", settings).create_app(title="ops")

    async def get(path: str, client: tuple[str, int], **headers: str) -> int:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://ops") as http:
            return (await http.get(path, headers=headers)).status_code

    assert await get("/metrics", ("127.0.0.1", 40000)) == 200  # Prometheus on the same host
    assert await get("/metrics", ("203.0.113.7", 40000)) == 404
    assert await get("/readyz", ("203.0.113.7", 40000)) == 404
    assert await get("/metrics", ("127.0.0.1", 40000), **{"X-Forwarded-For": "203.0.113.7"}) == 404
    assert await get("/healthz", ("203.0.113.7", 40000)) == 200  # liveness tells nothing: open to the prober
