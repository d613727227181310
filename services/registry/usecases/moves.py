"""Moving a unit to another parent, with everything below it (调整上级组织).

The move itself is one transaction: the unit's new parent, ancestors (and city, 属地) with a ``UnitUpdated`` event
(``changed`` names ``parent_id`` and ``ancestors``), its move history, and a job record in ``unit_moves``. The
propagation then runs in chunks of CHUNK, each write conditional on the version read:

1. every unit below it gets its new ancestors (a ``UnitUpdated`` each, so the copies kept by the gateway, reporting,
   activities and notifier follow: they all read ``ancestors`` from unit events);
2. every volunteer with the unit in its scope gets its memberships' paths and ``scope_units`` taken again from the
   units (no event: the other services derive a volunteer's scope from its ``unit_ids`` and their unit copies).

The job records its state and the last id done after every chunk; a process that dies mid-way leaves it open and
``resume`` (run at every start) carries on from the cursor. Every step recomputes from the current documents, so a
chunk done twice changes nothing the second time. A pass is repeated from the start until it finds nothing left to
change (a unit or membership created under the old path while the pass ran is caught by the next pass).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from services.registry.domain.errors import NotFoundError
from services.registry.domain.moves import (
    check_move,
    checked_reason,
    may_move,
    membership_paths,
    moved_ancestors,
    moved_city,
    new_path,
)
from services.registry.domain.records import derived_membership_fields, strip, unit_event
from services.registry.domain.scope import Scope
from services.registry.usecases.ports import Doc, RegistryStore, UnitDecision
from shared import clock
from shared.aggregates import Write
from shared.contracts.events import UnitUpdated

log = logging.getLogger("stvs.registry.moves")

CHUNK = 200  # units or volunteers per chunk (one cursor record each)
MAX_PASSES = 5  # a pass again from the start while the previous one still changed something
UNITS_STATE, VOLUNTEERS_STATE, DONE = "units", "volunteers", "done"


class Moves:
    def __init__(self, store: RegistryStore, *, chunk: int = CHUNK) -> None:
        self.store = store
        self.chunk = chunk

    async def _unit(self, unit_id: str, what: str = "该队伍") -> Doc:
        doc = await self.store.unit(unit_id)
        if doc is None:
            raise NotFoundError(f"未找到{what}")
        return doc

    async def move(self, unit_id: str, new_parent_id: str, reason: str | None, scope: Scope) -> tuple[Doc, Doc]:
        """Move a unit under ``new_parent_id`` (the level above decides); returns the moved unit and its job."""
        text = checked_reason(reason)
        unit = await self._unit(unit_id)
        parent = await self._unit(new_parent_id, "新的上级组织")
        may_move(scope, unit, parent)
        now = clock.now()
        job: Doc = {}  # the propagation's record, written by the store with the move

        async def decide(doc: Doc | None) -> UnitDecision:
            if doc is None:
                raise NotFoundError("未找到该队伍")
            nonlocal parent  # read again on every attempt: a parent moved meanwhile is checked where it is now
            parent = await self._unit(new_parent_id, "新的上级组织")
            check_move(doc, parent)
            sets: dict[str, Any] = {"parent_id": parent["_id"], "ancestors": new_path(parent)}
            city = moved_city(doc.get("city"), doc.get("city"), parent.get("city"))
            if city != doc.get("city"):
                sets["city"] = city
            entry = {"from_parent_id": doc.get("parent_id"), "to_parent_id": parent["_id"], "reason": text, "at": now}
            sets["moves"] = [*(doc.get("moves") or []), {**entry, "by": scope.identity.subject}]
            new = {**doc, **sets, "version": doc["version"] + 1, "updated_at": now}
            event = unit_event(new, UnitUpdated, changed=sorted(k for k in sets if k != "moves"))
            job.clear()
            job.update(
                {
                    "_id": f"{doc['_id']}:{new['version']}",
                    "unit_id": doc["_id"],
                    "old_city": doc.get("city"),
                    "new_city": sets.get("city", doc.get("city")),
                    "state": UNITS_STATE,
                    "after": None,
                    "pass": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            return Write({"$set": {**sets, "updated_at": now}}, [event], strip(new)), [], []

        moved = await self.store.move_unit(unit_id, decide, job)
        assert moved is not None
        return moved, dict(job)

    async def resume(self, idle_s: float | None = None) -> int:
        """Finish the open moves (a process that died mid-way left its job open); with ``idle_s``, only those that
        recorded no progress for that long (one running elsewhere is left to its process). Returns how many."""
        done = 0
        idle_since = None if idle_s is None else clock.now() - timedelta(seconds=idle_s)
        for job in await self.store.open_moves(idle_since):
            await self.propagate(job)
            done += 1
        return done

    async def propagate(self, job: Doc) -> None:
        """Bring the moved unit's subtree and volunteers to its new place, from the job's state and cursor."""
        job = dict(job)
        if job["state"] == UNITS_STATE:
            await self._passes(job, self._units_chunk)
            job.update(state=VOLUNTEERS_STATE, after=None, **{"pass": 1})
            await self.store.save_move(job["_id"], _progress(job))
        if job["state"] == VOLUNTEERS_STATE:
            await self._passes(job, self._volunteers_chunk)
            job.update(state=DONE, after=None)
            await self.store.save_move(job["_id"], _progress(job))
        log.info("unit move %s propagated", job["_id"])

    async def _passes(self, job: Doc, chunk: Callable[[Doc, str | None], Awaitable[tuple[int, str | None]]]) -> None:
        """Passes over the chunks from the cursor, again from the start while a pass changed something."""
        while True:
            changed = 0
            while True:
                count, last = await chunk(job, job.get("after"))
                changed += count
                if last is None:
                    break
                job["after"] = last
                await self.store.save_move(job["_id"], _progress(job))
            if not changed or job.get("pass", 1) >= MAX_PASSES:
                return
            job.update(after=None, **{"pass": job.get("pass", 1) + 1})
            await self.store.save_move(job["_id"], _progress(job))

    async def _units_chunk(self, job: Doc, after: str | None) -> tuple[int, str | None]:
        """One chunk of the units below the moved one: (how many changed, the last id; None when none was left)."""
        moved = await self._unit(job["unit_id"])
        found = await self.store.units_below(job["unit_id"], after, self.chunk)
        changed = 0
        for doc in found:
            if await self.store.change_unit(doc["_id"], _follow(moved, job)) is not None:
                changed += 1
        return changed, (str(found[-1]["_id"]) if found else None)

    async def _volunteers_chunk(self, job: Doc, after: str | None) -> tuple[int, str | None]:
        found = await self.store.volunteers_below(job["unit_id"], after, self.chunk)
        unit_ids = {uid for v in found for uid in (v.get("memberships") or {})}
        units = {str(u["_id"]): u for u in await self.store.units_by_id(sorted(unit_ids))}
        changed = 0
        for volunteer in found:
            if await self.store.change_volunteer(volunteer["_id"], _repath(units)) is not None:
                changed += 1
        return changed, (str(found[-1]["_id"]) if found else None)


def _progress(job: Mapping[str, Any]) -> Doc:
    return {"state": job["state"], "after": job.get("after"), "pass": job.get("pass", 1), "updated_at": clock.now()}


def _follow(moved: Mapping[str, Any], job: Mapping[str, Any]) -> Callable[[Doc | None], Awaitable[UnitDecision | None]]:
    """The decision bringing one unit below the moved one to its new ancestors (and city): None when it is there."""
    path = list(moved.get("ancestors") or [])
    moved_id = str(moved["_id"])

    async def decide(doc: Doc | None) -> UnitDecision | None:
        if doc is None:
            return None
        sets: dict[str, Any] = {}
        ancestors = moved_ancestors(doc.get("ancestors") or [], moved_id, path)
        if ancestors != list(doc.get("ancestors") or []):
            sets["ancestors"] = ancestors
        city = moved_city(doc.get("city"), job.get("old_city"), job.get("new_city"))
        if city != doc.get("city"):
            sets["city"] = city
        if not sets:
            return None
        now = clock.now()
        new = {**doc, **sets, "version": doc["version"] + 1, "updated_at": now}
        event = unit_event(new, UnitUpdated, changed=sorted(sets))
        return Write({"$set": {**sets, "updated_at": now}}, [event], strip(new)), [], []

    return decide


def _repath(units: Mapping[str, Mapping[str, Any]]) -> Callable[[Doc | None], Write[Doc] | None]:
    """The decision giving one volunteer its memberships' paths from the units' current ancestors: None when they
    are right already (or the volunteer is gone)."""

    def decide(doc: Doc | None) -> Write[Doc] | None:
        if doc is None:
            return None
        memberships = doc.get("memberships") or {}
        repathed = membership_paths(memberships, units)
        derived = derived_membership_fields(repathed)
        if repathed == memberships and derived["scope_units"] == doc.get("scope_units"):
            return None
        return Write({"$set": {"memberships": repathed, "scope_units": derived["scope_units"]}}, (), None)

    return decide


async def resume_forever(moves: Moves, interval_s: float) -> None:
    """At start every open move, then periodically those idle for a whole interval: finish the moves left open (any
    replica; the steps are idempotent, so a move finished twice at once only costs time)."""
    idle_s: float | None = None
    while True:
        try:
            await moves.resume(idle_s)
            idle_s = interval_s
        except Exception:
            log.warning("resuming unit moves failed; trying again", exc_info=True)
        await asyncio.sleep(interval_s)
