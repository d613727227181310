"""The activities service's side of the shared scope rule (:mod:`shared.scope`).

An activity or a demand belongs to its organising unit; an admin of that unit or of any unit above it manages it.
The unit tree comes from the service's event-fed copy, the volunteers' units from its copy of volunteers (both
through the storage port). An admin acting for a volunteer (sign-up, check-in/out, a correction of hours) must have
the volunteer in scope; a volunteer from elsewhere who signs up to an activity by themself shows in its roster with
a masked name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from services.activities.domain import (
    ActivityNotFound,
    ForbiddenRole,
    NotUnitAdmin,
    NotYourself,
    NoVolunteer,
    VolunteerOutOfScope,
    VolunteerRequired,
)
from shared.identity import Identity
from shared.scope import Reach

from .ports import Record, Storage

Acting = Literal["volunteer", "admin"]


def is_admin_of(reach: Reach, unit_id: str) -> bool:
    return reach.admin and reach.unit(unit_id)


def require_admin_of(reach: Reach, unit_id: str, *, read: bool = False) -> None:
    """The caller manages the unit; otherwise 404 for a read (nothing is revealed), 403 for a write."""
    if is_admin_of(reach, unit_id):
        return
    if read:
        raise ActivityNotFound()
    raise NotUnitAdmin()


def can_see(reach: Reach, doc: Mapping[str, Any]) -> bool:
    """Published activities are public; a draft only to the admins of its unit (and above)."""
    return doc["status"] != "draft" or is_admin_of(reach, doc["unit_id"])


def acting_volunteer(identity: Identity, volunteer_id: str | None) -> tuple[str, Acting]:
    """Whose sign-up it is and who acts: the volunteer for themself, or an administrator for a volunteer."""
    if identity.role == "volunteer":
        if not identity.volunteer_id:
            raise NoVolunteer()
        if volunteer_id not in (None, identity.volunteer_id):
            raise NotYourself()
        return identity.volunteer_id, "volunteer"
    if identity.role not in ("province_admin", "unit_admin"):
        raise ForbiddenRole()
    if not volunteer_id:
        raise VolunteerRequired()
    return volunteer_id, "admin"


async def acting_reach(storage: Storage, identity: Identity, volunteer_id: str, by: Acting) -> Reach:
    """The caller's reach; an admin acting for a volunteer must have the volunteer in it (403 otherwise — the
    volunteer signs up or checks in by themself). A volunteer the service's copy does not know yet passes here: the
    sign-up itself refuses an unknown volunteer (422 ``volunteer_unknown``, try again), and nothing is revealed."""
    found = await storage.reach(identity)
    if by == "admin" and found.units is not None:
        volunteer = (await storage.volunteers([volunteer_id])).get(volunteer_id)
        known = volunteer is not None and "status" in volunteer
        if known and not found.volunteer(volunteer_id, (volunteer or {}).get("unit_ids") or []):
            raise VolunteerOutOfScope()
    return found


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 张科普 → 张*普, 欧阳娜娜 → 欧**娜."""
    if not name:
        return name
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


async def masked_outside(storage: Storage, reach: Reach, items: Iterable[Record]) -> list[Record]:
    """Sign-up records with the names of volunteers outside the caller's reach masked."""
    out = [dict(i) for i in items]
    if reach.units is None:
        return out
    copies = await storage.volunteers([i["volunteer_id"] for i in out])
    for item in out:
        units = (copies.get(item["volunteer_id"]) or {}).get("unit_ids") or []
        if not reach.volunteer(item["volunteer_id"], units):
            item["display_name"] = mask_name(item.get("display_name"))
    return out


async def demand_units(storage: Storage, reach: Reach) -> frozenset[str] | None:
    """Whose demands the caller sees (None: all — the province and a system key). A demand is for the units that
    can serve it: an admin sees those of its own unit and every unit below it, and those recorded by the units
    above it (a city's demands reach its county teams, the province corps' reach everyone); nobody else any."""
    if reach.units is None:
        return None
    own = reach.identity.unit_id
    if not reach.admin or not own:
        return frozenset()
    return reach.units | frozenset(await storage.unit_ancestors(own))


def drafts_visible(reach: Reach, unit_id: str | None, status: str | None) -> frozenset[str] | Literal["none"] | None:
    """Whose drafts an activity listing shows: None for every unit's, the units whose drafts the caller manages, or
    "none" when the listing asked for drafts the caller may not see (the listing is empty)."""
    if reach.admin and reach.units is None:
        return None
    mine = frozenset(reach.units or ()) if reach.admin else frozenset()
    if status == "draft" and (not mine or (unit_id is not None and unit_id not in mine)):
        return "none"
    if status is not None and status != "draft":
        return None  # another status than draft was asked for
    if reach.identity.role == "volunteer":
        return None  # a volunteer's listing is of published ones only
    return mine
