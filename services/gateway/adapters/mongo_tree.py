"""The gateway's copy of the unit tree (and of volunteers' memberships) on MongoDB, and who may reach what.

Kept from the registry's events, newest version wins, so a scope check reads one document by ``_id`` and makes
no call to another service. Each event is applied by one atomic write whose filter lets only an older copy be
replaced (an older or redelivered event matches nothing and its upsert collides with the ``_id``): every gateway
replica's consumer may apply events at once, no lock of this process is needed. A unit admin reaches its own unit
and every unit below it; nothing beside or above.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.gateway.domain.scope import covers
from shared.identity import Identity
from shared.storage import Doc, utcnow

UNITS_COL = "units"
VOLUNTEERS_COL = "volunteers"


Lookup = Callable[[str], Awaitable[Doc | None]]


class MongoUnitTree:
    """Read side of the copy (scope checks). ``lookup`` asks the registry for a unit the copy does not know yet
    (registered a moment ago: its event is still on its way), so a caller always reaches what it just created."""

    def __init__(self, db: AsyncDatabase[Doc], lookup: Lookup | None = None) -> None:
        self.units = db[UNITS_COL]
        self.volunteers = db[VOLUNTEERS_COL]
        self.lookup = lookup

    async def unit(self, unit_id: str) -> Doc | None:
        doc = await self.units.find_one({"_id": unit_id})
        if doc is None and self.lookup is not None:
            doc = await self.lookup(unit_id)
            if doc is not None:
                await self.learn(doc)
        return doc

    async def learn(self, unit: Doc) -> None:
        """Put a unit the registry answered with into the copy (an event of the same version changes nothing)."""
        fields = {k: unit.get(k) for k in ("parent_id", "ancestors", "status", "name")}
        await _apply_versioned(self.units, str(unit["_id"]), int(unit.get("version") or 0), {"$set": fields})

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

    async def volunteer_units(self, volunteer_id: str) -> list[str] | None:
        doc = await self.volunteers.find_one({"_id": volunteer_id}, {"unit_ids": 1})
        return None if doc is None else [str(u) for u in doc.get("unit_ids") or []]

    # -- kept from the registry's events (``consumers.py``)
    async def unit_changed(self, unit_id: str, version: int, fields: Doc) -> None:
        await _apply_versioned(self.units, unit_id, version, {"$set": fields})

    async def volunteer_changed(self, volunteer_id: str, version: int, fields: Doc) -> None:
        await _apply_versioned(self.volunteers, volunteer_id, version, {"$set": fields})

    async def membership_changed(self, volunteer_id: str, version: int, unit_id: str, *, joined: bool) -> None:
        membership = {"$addToSet": {"unit_ids": unit_id}} if joined else {"$pull": {"unit_ids": unit_id}}
        await _apply_versioned(
            self.volunteers, volunteer_id, version, {**membership, "$setOnInsert": {"status": "active"}}
        )

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


def _older_than(version: int) -> Doc:
    """Filter part: a copy older than ``version`` (or one stored without a version)."""
    return {"$or": [{"version": {"$lt": version}}, {"version": {"$exists": False}}]}


async def _apply_versioned(collection: Any, doc_id: str, version: int, update: Doc) -> bool:
    """Apply the update operators ``update`` to the copy when ``version`` is newer than the copy's: one write."""
    ops: dict[str, Any] = {k: dict(v) for k, v in update.items()}
    ops.setdefault("$set", {}).update(version=version, updated_at=utcnow())
    try:
        result = await collection.update_one({"_id": doc_id, **_older_than(version)}, ops, upsert=True)
    except DuplicateKeyError:
        return False  # the copy is as new or newer
    return bool(result.modified_count or result.upserted_id is not None)
