"""The local copy of volunteers (status, units, name) that sign-ups are checked against, kept from the registry's
events: an event applies only when its version is newer than the copy's."""

from __future__ import annotations

from shared.contracts.events import VolunteerJoinedUnit, VolunteerLeftUnit, VolunteerSnapshot

from .ports import Storage


async def snapshot(storage: Storage, data: VolunteerSnapshot) -> bool:
    change = {"status": data.status, "unit_ids": list(data.unit_ids), "display_name": data.display_name}
    return await storage.apply_volunteer(data.volunteer_id, data.version, change)


async def joined(storage: Storage, data: VolunteerJoinedUnit) -> bool:
    return await storage.apply_volunteer(data.volunteer_id, data.version, {"join": data.unit_id})


async def left(storage: Storage, data: VolunteerLeftUnit) -> bool:
    return await storage.apply_volunteer(data.volunteer_id, data.version, {"leave": data.unit_id})
