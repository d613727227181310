"""The local copies built from the registry's events through Kafka (volunteers; the unit tree with its cities):
redeliveries change nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.activities.adapters.mongo import VOLUNTEERS
from services.activities.settings import DEV_CHECKIN_SECRET, ActivitiesSettings
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    UNITS,
    Event,
    UnitRegistered,
    UnitUpdated,
    VolunteerJoinedUnit,
    VolunteerLeftUnit,
    VolunteerRegistered,
    VolunteerUpdated,
)
from shared.contracts.events import (
    VOLUNTEERS as VOLUNTEER_STREAM,
)
from tests.activities.conftest import Running, draft
from tests.fixtures import eventually

NOW = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def registered(volunteer_id: str, version: int, units: list[str], cls: Any = VolunteerRegistered, **kw: Any) -> Any:
    data = cls(
        volunteer_id=volunteer_id,
        platform_number="HB2026000123",
        display_name=kw.pop("display_name", "张三"),
        status=kw.pop("status", "active"),
        unit_ids=units,
        registered_at=NOW,
        version=version,
        **kw,
    )
    return Envelope.new(data, source="/stvs/registry", subject=volunteer_id)


def joined(volunteer_id: str, unit: str, version: int) -> Envelope[Any]:
    data = VolunteerJoinedUnit(volunteer_id=volunteer_id, unit_id=unit, joined_at=NOW, version=version)
    return Envelope.new(data, source="/stvs/registry", subject=volunteer_id)


def left(volunteer_id: str, unit: str, version: int) -> Envelope[Any]:
    data = VolunteerLeftUnit(volunteer_id=volunteer_id, unit_id=unit, left_at=NOW, version=version)
    return Envelope.new(data, source="/stvs/registry", subject=volunteer_id)


async def send(running: Running, *envelopes: Envelope[Event]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=running.settings.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(
                running.settings.topic(VOLUNTEER_STREAM), env.to_json(), key=env.subject.encode()
            )
    finally:
        await producer.stop()


async def copy_of(running: Running, volunteer_id: str) -> dict[str, Any] | None:
    return await running.store.get(VOLUNTEERS, volunteer_id, {"_id": 0, "status": 1, "unit_ids": 1, "version": 1})


async def test_duplicate_and_stale_volunteer_events_change_nothing(running: Running) -> None:
    first = registered("vol-dup", 1, ["u1"])
    join_u2 = joined("vol-dup", "u2", 2)
    leave_u1 = left("vol-dup", "u1", 3)
    await send(running, first, first, join_u2, leave_u1, leave_u1, join_u2)
    expected = {"status": "active", "unit_ids": ["u2"], "version": 3}
    await eventually(lambda: _equals(running, "vol-dup", expected))

    # The same envelopes again (redelivery) and a stale snapshot with a new id: still nothing changes.
    stale = registered("vol-dup", 2, ["u1", "u2"], cls=VolunteerUpdated)
    marker = joined("vol-dup", "u9", 4)  # same key → same partition → handled after the ones before it
    await send(running, first, join_u2, leave_u1, stale, marker)
    await eventually(lambda: _equals(running, "vol-dup", {**expected, "unit_ids": ["u2", "u9"], "version": 4}))


async def _equals(running: Running, volunteer_id: str, expected: dict[str, Any]) -> bool:
    return await copy_of(running, volunteer_id) == expected


async def test_sign_up_uses_the_copy_built_from_events(running: Running) -> None:
    created = await running.client.post("/activities", json=draft(), headers=running.admin())
    activity_id = created.json()["id"]
    assert (await running.client.post(f"/activities/{activity_id}/publish", headers=running.admin())).status_code == 200

    await send(running, registered("vol-flow", 1, ["unit-1"]))
    await eventually(lambda: copy_of(running, "vol-flow"))
    signed = await running.client.post(f"/activities/{activity_id}/signups", headers=running.volunteer("vol-flow"))
    assert signed.status_code == 201, signed.text
    assert signed.json()["status"] == "confirmed"

    # Deactivated in the registry → the next sign-up (of a second activity) is refused from the copy.
    await send(running, registered("vol-flow", 2, ["unit-1"], cls=VolunteerUpdated, status="inactive"))
    await eventually(lambda: _equals(running, "vol-flow", {"status": "inactive", "unit_ids": ["unit-1"], "version": 2}))
    other = (await running.client.post("/activities", json=draft(), headers=running.admin())).json()["id"]
    await running.client.post(f"/activities/{other}/publish", headers=running.admin())
    refused = await running.client.post(f"/activities/{other}/signups", headers=running.volunteer("vol-flow"))
    assert refused.status_code == 422
    assert refused.json()["code"] == "volunteer_inactive"


def test_checkin_secret_dev_default_refused_in_production() -> None:
    with pytest.raises(ValueError, match="STVS_CHECKIN_SECRET"):
        ActivitiesSettings(production=True, internal_token="Zq7-uR2x_Lm9VbT4kW8nJ3cY5pH1sG6d").check_production()
    ActivitiesSettings(
        production=True,
        internal_token="Zq7-uR2x_Lm9VbT4kW8nJ3cY5pH1sG6d",
        checkin_secret="Pw3_kE8vN1-tX6qB9mF2aL5yC7rJ4hD0",
    ).check_production()
    assert ActivitiesSettings().checkin_secret.get_secret_value() == DEV_CHECKIN_SECRET


async def test_the_unit_copy_keeps_each_units_city_for_a_search_by_city(running: Running) -> None:
    def unit(unit_id: str, version: int, city: str | None, cls: Any = UnitRegistered) -> Envelope[Any]:
        data = cls(
            unit_id=unit_id,
            name="正定县科技志愿者队",
            kind="county_team",
            parent_id="c-sjz",
            ancestors=["c-corps", "c-sjz"],
            city=city,
            status="active",
            registered_at=NOW,
            version=version,
        )
        return Envelope.new(data, source="/stvs/registry", subject=unit_id)

    producer = AIOKafkaProducer(bootstrap_servers=running.settings.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for env in (unit("c-county", 1, None), unit("c-county", 2, "shijiazhuang", UnitUpdated)):
            await producer.send_and_wait(running.settings.topic(UNITS), env.to_json(), key=env.subject.encode())
    finally:
        await producer.stop()

    async def in_city() -> bool:
        return "c-county" in await running.store.city_units("shijiazhuang")

    await eventually(in_city)
    assert await running.store.units_below("c-sjz") >= {"c-sjz", "c-county"}
