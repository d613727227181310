"""Every subscriber of the gateway: the registry's unit and volunteer events keep the gateway's copy of the unit tree
and of volunteers' memberships (``adapters/mongo_tree.py``), which its scope checks read. Newest version wins: an
older or redelivered event changes nothing."""

from __future__ import annotations

from typing import Any

from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    UNITS,
    VOLUNTEERS,
    UnitRegistered,
    UnitUpdated,
    VolunteerJoinedUnit,
    VolunteerLeftUnit,
    VolunteerRegistered,
    VolunteerUpdated,
)
from shared.service import Service

from .adapters.mongo_tree import MongoUnitTree


def register(service: Service, tree: MongoUnitTree) -> None:
    """Consumers ``units`` (UNITS stream) and ``volunteers`` (VOLUNTEERS stream) keeping the copies."""
    units = service.consumer("units", [UNITS])
    volunteers = service.consumer("volunteers", [VOLUNTEERS])

    @units.on(UnitRegistered, UnitUpdated)
    async def on_unit(env: Envelope[Any]) -> None:
        d = env.data
        fields = {"parent_id": d.parent_id, "ancestors": list(d.ancestors), "status": d.status, "name": d.name}
        await tree.unit_changed(d.unit_id, d.version, fields)

    @volunteers.on(VolunteerRegistered, VolunteerUpdated)
    async def on_volunteer(env: Envelope[Any]) -> None:
        d = env.data
        await tree.volunteer_changed(d.volunteer_id, d.version, {"unit_ids": list(d.unit_ids), "status": d.status})

    @volunteers.on(VolunteerJoinedUnit, VolunteerLeftUnit)
    async def on_membership(env: Envelope[Any]) -> None:
        d = env.data
        await tree.membership_changed(d.volunteer_id, d.version, d.unit_id, joined=isinstance(d, VolunteerJoinedUnit))
