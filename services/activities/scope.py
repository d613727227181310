"""The activities service's side of the shared scope rule (:mod:`shared.scope`).

An activity or a demand belongs to its organising unit; an admin of that unit or of any unit above it manages it.
The unit tree comes from the service's event-fed copy (``scope_units``, kept by
:func:`shared.scope.attach_unit_paths`), the volunteers' units from its copy of volunteers. An admin acting for a
volunteer (sign-up, check-in/out, a correction of hours) must have the volunteer in scope; a volunteer from
elsewhere who signs up to an activity by themself shows in its roster with a masked name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from shared.identity import Identity
from shared.problems import Problem
from shared.scope import SCOPE_UNITS, Reach, reach

from .store import VOLUNTEERS, Store


async def reach_of(store: Store, identity: Identity) -> Reach:
    """The caller's reach: a unit admin's subtree from the copy (one indexed query), everything for the province."""
    return await reach(identity, store.db[SCOPE_UNITS], system_reads=True)


def is_admin_of(reach: Reach, unit_id: str) -> bool:
    return reach.admin and reach.unit(unit_id)


def require_admin_of(reach: Reach, unit_id: str, *, read: bool = False) -> None:
    """The caller manages the unit; otherwise 404 for a read (nothing is revealed), 403 for a write."""
    if is_admin_of(reach, unit_id):
        return
    if read:
        raise Problem(404, "activity_not_found", "未找到该活动")
    raise Problem(403, "not_unit_admin", "只有组织单位及其上级单位的管理员或省级管理员可以执行此操作")


def can_see(reach: Reach, doc: Mapping[str, Any]) -> bool:
    """Published activities are public; a draft only to the admins of its unit (and above)."""
    return doc["status"] != "draft" or is_admin_of(reach, doc["unit_id"])


async def acting_reach(store: Store, identity: Identity, volunteer_id: str, by: Literal["volunteer", "admin"]) -> Reach:
    """The caller's reach; an admin acting for a volunteer must have the volunteer in it (403 otherwise — the
    volunteer signs up or checks in by themself). A volunteer the service's copy does not know yet passes here: the
    sign-up itself refuses an unknown volunteer (422 ``volunteer_unknown``, try again), and nothing is revealed."""
    found = await reach_of(store, identity)
    if by == "admin" and found.units is not None:
        volunteer = await store.get(VOLUNTEERS, volunteer_id, {"unit_ids": 1, "status": 1})
        known = volunteer is not None and "status" in volunteer
        if known and not found.volunteer(volunteer_id, (volunteer or {}).get("unit_ids") or []):
            raise Problem(
                403, "volunteer_out_of_scope", "该志愿者不在本账号的管理范围内：只能为本队伍及下级队伍的志愿者代为操作"
            )
    return found


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 张科普 → 张*普, 欧阳娜娜 → 欧**娜."""
    if not name:
        return name
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


async def masked_outside(store: Store, reach: Reach, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sign-up views with the names of volunteers outside the caller's reach masked."""
    out = list(items)
    if reach.units is None:
        return out
    ids = [i["volunteer_id"] for i in out]
    units = {
        d["_id"]: d.get("unit_ids") or []
        async for d in store.db[VOLUNTEERS].find({"_id": {"$in": ids}}, {"unit_ids": 1})
    }
    for item in out:
        if not reach.volunteer(item["volunteer_id"], units.get(item["volunteer_id"], [])):
            item["display_name"] = mask_name(item.get("display_name"))
    return out


async def demand_units(store: Store, reach: Reach) -> frozenset[str] | None:
    """Whose demands the caller sees (None: all — the province and a system key). A demand is for the units that
    can serve it: an admin sees those of its own unit and every unit below it, and those recorded by the units
    above it (a city's demands reach its county teams, the province corps' reach everyone); nobody else any."""
    if reach.units is None:
        return None
    own = reach.identity.unit_id
    if not reach.admin or not own:
        return frozenset()
    unit = await store.db[SCOPE_UNITS].find_one({"_id": own}, {"ancestors": 1})
    return reach.units | frozenset((unit or {}).get("ancestors") or [])


def drafts_filter(reach: Reach, unit_id: str | None, status: Any) -> dict[str, Any] | None:
    """The part of an activity listing's filter that hides drafts from whoever may not see them (None: the listing
    is empty). ``status`` is the asked-for status (None: any)."""
    if reach.admin and reach.units is None:
        return {}
    mine = sorted(reach.units or ()) if reach.admin else []
    asked_draft = status is not None and getattr(status, "value", status) == "draft"
    if asked_draft:
        if not mine or (unit_id is not None and unit_id not in mine):
            return None
        return {"unit_id": unit_id} if unit_id is not None else {"unit_id": {"$in": mine}}
    if status is not None or reach.identity.role == "volunteer":
        return {}  # a status other than draft was asked for (a volunteer's listing is published ones only)
    if unit_id is not None and unit_id in mine:
        return {}
    if mine and unit_id is None:
        return {"$or": [{"unit_id": {"$in": mine}}, {"status": {"$ne": "draft"}}]}
    return {"status": {"$ne": "draft"}}
