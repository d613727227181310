"""Every subscriber of the activities service: the registry's volunteer events keep the local copy of volunteers
(status, units, name) that sign-ups are checked against. (The unit tree the scope rule needs is kept by
:func:`shared.scope.attach_unit_paths`, attached in ``app``.)"""

from __future__ import annotations

from typing import Any

from shared.contracts.envelope import Envelope
from shared.contracts.events import VOLUNTEERS as VOLUNTEER_STREAM
from shared.contracts.events import (
    VolunteerJoinedUnit,
    VolunteerLeftUnit,
    VolunteerRegistered,
    VolunteerSnapshot,
    VolunteerUpdated,
)
from shared.service import Service

from .usecases import volunteers
from .usecases.ports import Storage


def register_consumers(service: Service, storage: Storage) -> None:
    """The volunteers' stream, typed event in → use case."""
    consumer = service.consumer("volunteers", [VOLUNTEER_STREAM])

    @consumer.on(VolunteerRegistered, VolunteerUpdated)
    async def on_snapshot(env: Envelope[Any]) -> None:
        data: VolunteerSnapshot = env.data
        await volunteers.snapshot(storage, data)

    @consumer.on(VolunteerJoinedUnit)
    async def on_joined(env: Envelope[Any]) -> None:
        data: VolunteerJoinedUnit = env.data
        await volunteers.joined(storage, data)

    @consumer.on(VolunteerLeftUnit)
    async def on_left(env: Envelope[Any]) -> None:
        data: VolunteerLeftUnit = env.data
        await volunteers.left(storage, data)
