"""The activities' use cases on the in-memory storage port, at a time the test sets (no database, no Kafka)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.activities.usecases import activities
from services.activities.usecases.batches import SignUpBatches
from shared import clock
from shared.identity import Identity
from tests.activities.usecases.memory import MemoryStorage

T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
STARTS = T0 + timedelta(days=1)
ADMIN = Identity(subject="admin-unit-1", role="unit_admin", unit_id="unit-1")
PROVINCE = Identity(subject="province", role="province_admin")
SECRET = "use-case-secret"


def volunteer(volunteer_id: str) -> Identity:
    return Identity(subject=f"user-{volunteer_id}", role="volunteer", volunteer_id=volunteer_id)


def at(moment: datetime) -> None:
    """The programme's clock reads ``moment`` now (and runs on at real speed)."""
    clock.use(clock.anchored(moment))


@pytest.fixture(autouse=True)
def programme_time() -> Iterator[None]:
    at(T0)
    yield
    clock.use(clock.Clock())


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def batches(storage: MemoryStorage) -> SignUpBatches:
    return SignUpBatches(storage)


def details(**overrides: Any) -> dict[str, Any]:
    """A valid activity: starts tomorrow, three hours long, sign-up open from an hour ago until the start."""
    data: dict[str, Any] = {
        "title": "社区应急救护培训",
        "description": "为社区居民讲解心肺复苏与常见急症处置",
        "unit_id": "unit-1",
        "line_of_work": "community_school",
        "themes": ["poverty_health"],
        "place": "裕华区东苑街道社区服务中心",
        "county": "裕华区",
        "starts_at": STARTS,
        "ends_at": STARTS + timedelta(hours=3),
        "capacity": 2,
        "signup_opens_at": T0 - timedelta(hours=1),
        "signup_closes_at": STARTS,
    }
    data.update(overrides)
    return data


async def published(storage: MemoryStorage, **overrides: Any) -> str:
    record = await activities.create(storage, details(**overrides), ADMIN)
    await activities.publish(storage, record.activity.id, ADMIN)
    return record.activity.id


async def volunteers(storage: MemoryStorage, *ids: str, unit: str = "unit-1") -> None:
    for v in ids:
        await storage.apply_volunteer(v, 1, {"status": "active", "unit_ids": [unit], "display_name": f"志愿者{v}"})


def kinds(storage: MemoryStorage) -> list[str]:
    """The types of the events announced so far, without the ``stvs.`` prefix and version."""
    return [e.type.removeprefix("stvs.").rsplit(".", 1)[0] for e in storage.events]
