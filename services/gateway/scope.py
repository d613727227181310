"""The gateway's copy of the unit tree (and of volunteers' memberships), and who may reach what.

Kept from the registry's events, newest version wins, so a scope check reads one document by ``_id`` and makes
no call to another service. A unit admin reaches its own unit and every unit below it; nothing beside or above.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

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
from shared.identity import Identity
from shared.service import Service
from shared.storage import Doc, doc_locks, utcnow

UNITS_COL = "units"
VOLUNTEERS_COL = "volunteers"


def covers(identity: Identity, unit_id: str, unit: Doc | None) -> bool:
    """Pure rule: may ``identity`` reach unit ``unit_id`` (whose copy is ``unit``, None when unknown)?"""
    if identity.role == "province_admin":
        return True
    if identity.role != "unit_admin" or not identity.unit_id:
        return False
    if unit_id == identity.unit_id:
        return True
    return unit is not None and identity.unit_id in (unit.get("ancestors") or [])


class UnitTree:
    """Read side of the copy (scope checks)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.units = db[UNITS_COL]
        self.volunteers = db[VOLUNTEERS_COL]

    async def unit(self, unit_id: str) -> Doc | None:
        return await self.units.find_one({"_id": unit_id})

    async def in_scope(self, identity: Identity, unit_id: str) -> bool:
        if identity.role == "province_admin":
            return True
        if identity.role != "unit_admin" or not identity.unit_id:
            return False
        if unit_id == identity.unit_id:
            return True
        return covers(identity, unit_id, await self.unit(unit_id))

    async def all_in_scope(self, identity: Identity, unit_ids: Iterable[str]) -> bool:
        for unit_id in unit_ids:
            if not await self.in_scope(identity, unit_id):
                return False
        return True

    async def volunteer_in_scope(self, identity: Identity, volunteer_id: str) -> bool:
        """A volunteer is in scope of a unit admin when one of its units is."""
        if identity.role == "province_admin":
            return True
        if identity.role == "volunteer":
            return identity.volunteer_id == volunteer_id
        if identity.role != "unit_admin":
            return False
        doc = await self.volunteers.find_one({"_id": volunteer_id})
        for unit_id in (doc or {}).get("unit_ids", []):
            if await self.in_scope(identity, unit_id):
                return True
        return False


async def _apply_versioned(collection: Any, doc_id: str, version: int, change: Any) -> bool:
    """Apply ``change(current) -> new fields`` when ``version`` is newer than the copy's."""
    async with doc_locks.hold(collection, doc_id):
        current = await collection.find_one({"_id": doc_id})
        if current is not None and int(current.get("version", 0)) >= version:
            return False
        fields = change(current or {})
        await collection.replace_one(
            {"_id": doc_id}, {"_id": doc_id, **fields, "version": version, "updated_at": utcnow()}, upsert=True
        )
        return True


def attach_consumers(service: Service) -> None:
    """Consumers ``units`` (UNITS stream) and ``volunteers`` (VOLUNTEERS stream) keeping the copies."""
    units = service.consumer("units", [UNITS])
    volunteers = service.consumer("volunteers", [VOLUNTEERS])
    db = service.db

    @units.on(UnitRegistered, UnitUpdated)
    async def on_unit(env: Envelope[Any]) -> None:
        d = env.data
        await _apply_versioned(
            db[UNITS_COL],
            d.unit_id,
            d.version,
            lambda _: {"parent_id": d.parent_id, "ancestors": list(d.ancestors), "status": d.status, "name": d.name},
        )

    @volunteers.on(VolunteerRegistered, VolunteerUpdated)
    async def on_volunteer(env: Envelope[Any]) -> None:
        d = env.data
        await _apply_versioned(
            db[VOLUNTEERS_COL], d.volunteer_id, d.version, lambda _: {"unit_ids": list(d.unit_ids), "status": d.status}
        )

    @volunteers.on(VolunteerJoinedUnit, VolunteerLeftUnit)
    async def on_membership(env: Envelope[Any]) -> None:
        d = env.data
        joined = isinstance(d, VolunteerJoinedUnit)

        def change(current: Doc) -> Doc:
            unit_ids = [u for u in current.get("unit_ids", []) if u != d.unit_id]
            if joined:
                unit_ids.append(d.unit_id)
            return {"unit_ids": unit_ids, "status": current.get("status", "active")}

        await _apply_versioned(db[VOLUNTEERS_COL], d.volunteer_id, d.version, change)
