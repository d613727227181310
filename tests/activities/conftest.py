"""The activities service in-process on the real Kafka and FerretDB, plus helpers to call it and read its events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from services.activities.adapters.mongo import Store
from services.activities.app import create_app
from services.activities.settings import ActivitiesSettings
from shared.contracts.envelope import Envelope, parse_envelope
from shared.contracts.events import Event
from shared.identity import Identity, acting_as
from shared.messaging.dlq import partitions_of
from shared.service import Service
from shared.settings import ServiceSettings
from tests.fixtures import signing

CHECKIN_SECRET = "test-checkin-secret"


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    settings: ActivitiesSettings

    @property
    def service(self) -> Service:
        service: Service = self.app.state.service
        return service

    @property
    def store(self) -> Store:
        store: Store = self.app.state.store
        return store

    def headers(self, role: str, **fields: Any) -> dict[str, str]:
        identity = Identity(subject=fields.pop("subject", f"{role}-user"), role=role, **fields)
        return acting_as(identity)

    def admin(self, unit_id: str = "unit-1") -> dict[str, str]:
        return self.headers("unit_admin", unit_id=unit_id, subject=f"admin-{unit_id}")

    def province(self) -> dict[str, str]:
        return self.headers("province_admin", subject="province")

    def volunteer(self, volunteer_id: str) -> dict[str, str]:
        return self.headers("volunteer", volunteer_id=volunteer_id, subject=f"user-{volunteer_id}")

    async def add_volunteer(
        self, volunteer_id: str, *, status: str = "active", units: tuple[str, ...] = ("unit-1",), version: int = 1
    ) -> None:
        """Put a volunteer into the local copy as the consumer would (the consumer itself is tested separately)."""
        await self.store.apply_volunteer(
            volunteer_id,
            version,
            {"status": status, "unit_ids": list(units), "display_name": f"志愿者{volunteer_id}"},
        )

    async def events(self, subject: str, stream: str) -> list[Envelope[Event]]:
        """Every event about ``subject`` that reached the stream's topic (after the outbox was flushed)."""
        assert self.service.relay is not None
        await self.service.relay.flush()
        return [
            e
            for e in await read_all(self.settings.kafka_bootstrap, self.settings.topic(stream))
            if e.subject == subject
        ]


async def read_all(bootstrap: str, topic: str) -> list[Envelope[Event]]:
    """All events of a topic up to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Any] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(records)
        out.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
        return [parse_envelope(r.value) for r in out]
    finally:
        await consumer.stop()


@pytest.fixture(scope="module")
async def running(settings: ServiceSettings) -> AsyncIterator[Running]:
    activities_settings = ActivitiesSettings(**{**settings.model_dump(), "checkin_secret": CHECKIN_SECRET})
    app = create_app(activities_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), auth=signing(app), base_url="http://activities"
        ) as client,
    ):
        yield Running(app=app, client=client, settings=activities_settings)


def draft(**overrides: Any) -> dict[str, Any]:
    """A valid activity as JSON: starts tomorrow, three hours long, sign-up open now until the start."""
    now = datetime.now(UTC)
    starts = overrides.pop("starts", now + timedelta(days=1))
    data: dict[str, Any] = {
        "title": "社区应急救护培训",
        "description": "为社区居民讲解心肺复苏与常见急症处置",
        "unit_id": "unit-1",
        "line_of_work": "community_school",
        "themes": ["poverty_health", "women_youth"],
        "target_groups": ["社区居民"],
        "place": "裕华区东苑街道社区服务中心",
        "county": "裕华区",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=3)).isoformat(),
        "capacity": 2,
        "skills_wanted": ["急救"],
        "signup_opens_at": (now - timedelta(hours=1)).isoformat(),
        "signup_closes_at": starts.isoformat(),
    }
    data.update(overrides)
    return data
