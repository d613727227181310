"""Composition root of the activities service."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    VOLUNTEERS as VOLUNTEER_STREAM,
)
from shared.contracts.events import (
    VolunteerJoinedUnit,
    VolunteerLeftUnit,
    VolunteerRegistered,
    VolunteerSnapshot,
    VolunteerUpdated,
)
from shared.scope import attach_unit_paths
from shared.service import Service

from .api import install_activity_errors, repair_loop, router
from .batches import SignUpBatches
from .settings import ActivitiesSettings
from .store import ACTIVITIES, DEMANDS, SIGNUPS, Store, indexes

REPAIR_INTERVAL_S = 10.0  # claims left by a dead process, places owed to a waitlist


def register_consumers(service: Service, store: Store) -> None:
    """The local copy of volunteers (status, units, name) that sign-ups are checked against."""
    volunteers = service.consumer("volunteers", [VOLUNTEER_STREAM])

    @volunteers.on(VolunteerRegistered, VolunteerUpdated)
    async def on_snapshot(env: Envelope[Any]) -> None:
        data: VolunteerSnapshot = env.data
        await store.apply_volunteer(
            data.volunteer_id,
            data.version,
            {"status": data.status, "unit_ids": list(data.unit_ids), "display_name": data.display_name},
        )

    @volunteers.on(VolunteerJoinedUnit)
    async def on_joined(env: Envelope[Any]) -> None:
        data: VolunteerJoinedUnit = env.data
        await store.apply_volunteer(data.volunteer_id, data.version, {"join": data.unit_id})

    @volunteers.on(VolunteerLeftUnit)
    async def on_left(env: Envelope[Any]) -> None:
        data: VolunteerLeftUnit = env.data
        await store.apply_volunteer(data.volunteer_id, data.version, {"leave": data.unit_id})


def create_app(settings: ActivitiesSettings | None = None) -> FastAPI:
    settings = settings or ActivitiesSettings()
    service = Service("activities", settings, indexes=indexes(), outbox_collections=[ACTIVITIES, SIGNUPS, DEMANDS])
    store = Store(service)
    register_consumers(service, store)
    attach_unit_paths(service)  # the unit tree the scope rule needs (shared.scope)
    service.background.append(lambda: repair_loop(store, REPAIR_INTERVAL_S))
    app = service.create_app(
        router,
        title="科技志愿服务活动",
        description="活动发布、报名、签到签退、服务时长、宣传与企业创新难题需求库",
    )
    install_activity_errors(app)
    app.state.store = store
    app.state.batches = SignUpBatches(store)
    app.state.checkin_secret = settings.checkin_secret.get_secret_value()
    return app
