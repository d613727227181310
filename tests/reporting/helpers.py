"""Builders of events and a small harness running the reporting app in-process against the real infrastructure."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from services.reporting.app import create_app
from services.reporting.settings import ReportingSettings
from shared.calendar import (
    SHANGHAI,
)
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    ActivityCompleted,
    ContactRef,
    Event,
    Participation,
    PublicityPublished,
    ServiceHoursCorrected,
    UnitRegistered,
    UnitUpdated,
    VolunteerJoinedUnit,
    VolunteerLeftUnit,
    VolunteerRegistered,
    VolunteerUpdated,
)
from shared.identity import Identity, acting_as
from shared.settings import ServiceSettings
from tests.fixtures import signing

PROVINCE_ADMIN = Identity(subject="admin-1", role="province_admin", display_name="省科协管理员")


def at(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=SHANGHAI)


def unit_event(
    unit_id: str,
    kind: str,
    ancestors: Sequence[str],
    *,
    version: int = 1,
    name: str | None = None,
    city: str | None = None,
    leaders: dict[str, int] | None = None,
    contact: bool = True,
    registered_at: datetime | None = None,
    time: datetime | None = None,
    status: str = "active",
) -> Envelope[Any]:
    cls = UnitRegistered if version == 1 else UnitUpdated
    data = cls(
        unit_id=unit_id,
        name=name or f"{unit_id}科技志愿者支队",
        kind=kind,
        parent_id=ancestors[-1] if ancestors else None,
        ancestors=list(ancestors),
        city=city,
        status=status,
        registered_at=registered_at or at(2026, 4, 10),
        leader_counts=leaders or {},
        contact=ContactRef(name="联系人") if contact else None,
        version=version,
    )
    return Envelope.new(data, source="/stvs/registry", subject=unit_id, time=time or at(2026, 4, 10))


def volunteer_registered(vid: str, units: Sequence[str], *, name: str | None = None) -> Envelope[Any]:
    data = VolunteerRegistered(
        volunteer_id=vid,
        platform_number=f"HB2026{vid[-6:].rjust(6, '0')}",
        display_name=name or f"志愿者{vid}",
        status="active",
        unit_ids=list(units),
        registered_at=at(2026, 4, 12),
        version=1,
    )
    return Envelope.new(data, source="/stvs/registry", subject=vid)


def volunteer_inactive(vid: str, units: Sequence[str], version: int) -> Envelope[Any]:
    data = VolunteerUpdated(
        volunteer_id=vid,
        platform_number=f"HB2026{vid[-6:].rjust(6, '0')}",
        display_name=f"志愿者{vid}",
        status="inactive",
        unit_ids=list(units),
        registered_at=at(2026, 4, 12),
        version=version,
        changed=["status"],
    )
    return Envelope.new(data, source="/stvs/registry", subject=vid)


def joined(vid: str, unit: str, version: int, when: datetime | None = None) -> Envelope[Any]:
    data = VolunteerJoinedUnit(volunteer_id=vid, unit_id=unit, joined_at=when or at(2026, 5, 3), version=version)
    return Envelope.new(data, source="/stvs/registry", subject=vid)


def left(vid: str, unit: str, version: int) -> Envelope[Any]:
    data = VolunteerLeftUnit(volunteer_id=vid, unit_id=unit, left_at=at(2026, 6, 1), version=version)
    return Envelope.new(data, source="/stvs/registry", subject=vid)


def completed(
    activity_id: str,
    unit_id: str,
    starts_at: datetime,
    participants: Sequence[tuple[str, float]],
    *,
    themes: Sequence[str] = ("women_youth",),
    line: str = "community_school",
    served: int | None = None,
) -> Envelope[Any]:
    people = [Participation(volunteer_id=v, display_name=f"参与者{v}", hours=h) for v, h in participants]
    data = ActivityCompleted(
        activity_id=activity_id,
        unit_id=unit_id,
        title="科普进校园",
        line_of_work=line,
        themes=list(themes),
        starts_at=starts_at,
        ends_at=starts_at.replace(hour=starts_at.hour + 2),
        completed_at=starts_at.replace(hour=starts_at.hour + 3),
        people_served=served,
        participants=people,
        total_hours=sum(h for _, h in participants),
    )
    return Envelope.new(data, source="/stvs/activities", subject=activity_id)


def publicity(activity_id: str, unit_id: str, starts_at: datetime, served: int, *, previous: int = 0) -> Envelope[Any]:
    """The unit's publicity after the activity (again, with ``previous``, when it corrects the figure)."""
    data = PublicityPublished(
        activity_id=activity_id,
        unit_id=unit_id,
        summary="为社区居民讲解科普知识",
        people_served=served,
        published_at=starts_at.replace(day=starts_at.day + 1),
        starts_at=starts_at,
        previous_people_served=previous,
    )
    return Envelope.new(data, source="/stvs/activities", subject=activity_id)


def corrected(
    activity_id: str, unit_id: str, starts_at: datetime, volunteer_id: str, previous: float, hours: float
) -> Envelope[Any]:
    data = ServiceHoursCorrected(
        activity_id=activity_id,
        unit_id=unit_id,
        volunteer_id=volunteer_id,
        starts_at=starts_at,
        previous_hours=previous,
        hours=hours,
        reason="补录签到时间",
        corrected_at=starts_at.replace(day=starts_at.day + 1),
    )
    return Envelope.new(data, source="/stvs/activities", subject=activity_id)


async def publish(settings: ServiceSettings, envelopes: Sequence[Envelope[Any]]) -> None:
    """Put envelopes straight onto their topics (keyed by subject, as the outbox relay does)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for env in envelopes:
            data: Event = env.data
            await producer.send_and_wait(settings.topic(data.stream), env.to_json(), key=env.subject.encode())
    finally:
        await producer.stop()


def headers(settings: ServiceSettings, identity: Identity = PROVINCE_ADMIN) -> dict[str, str]:
    return acting_as(identity)


async def get_json(client: httpx.AsyncClient, url: str, settings: ServiceSettings, **params: Any) -> Any:
    response = await client.get(url, params=params, headers=headers(settings))
    assert response.status_code == 200, response.text
    return response.json()


def utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


async def when(coro: Any, check: Any) -> Any:
    value = await coro
    return value if value is not None and check(value) else None


class Harness:
    """The running app, its client and database, with a few readers that tolerate a projection still behind."""

    def __init__(self, app: Any, client: httpx.AsyncClient, settings: ReportingSettings) -> None:
        self.app = app
        self.client = client
        self.settings = settings
        self.db = app.state.service.db

    async def stats(self, unit: str, year: int = 2026) -> Any:
        """The unit's statistics, or None while its registration has not reached the projection."""
        response = await self.client.get(f"/stats/units/{unit}", params={"year": year}, headers=headers(self.settings))
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    async def volunteer(self, vid: str) -> Any:
        response = await self.client.get(f"/stats/volunteers/{vid}", headers=headers(self.settings))
        return response.json() if response.status_code == 200 else None

    async def compliance(self, unit: str, when: datetime, **params: Any) -> dict[str, dict[str, Any]]:
        body = await get_json(
            self.client, "/compliance", self.settings, unit_id=unit, year=2026, at=when.isoformat(), **params
        )
        return {row["unit_id"]: {r["rule"]: r for r in row["rules"]} | {"_row": row} for row in body["units"]}


@contextlib.asynccontextmanager
async def running(settings: ServiceSettings) -> AsyncIterator[Harness]:
    """The reporting app started in-process on the module's namespace (campaign year 2026)."""
    rsettings = ReportingSettings(**{**settings.model_dump(), "campaign_year": 2026})
    app = create_app(rsettings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, auth=signing(app), base_url="http://reporting") as client:
            yield Harness(app, client, rsettings)
