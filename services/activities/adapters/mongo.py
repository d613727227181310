"""The storage port of the activities' use cases on MongoDB (:class:`Store`): documents, indexes, the local copies.

- ``activities``: details, life-cycle state, the sign-up counters (``counts``), ``next_seq`` (order of arrival),
  ``version`` (bumped by every change of the details or the state, :mod:`shared.aggregates`) and ``roster_v`` (bumped
  by every change of a sign-up). It stays small: sign-ups live in their own documents (:mod:`.claims`).
- ``signups``: one document per (activity, volunteer), ``_id = "<activity id>|<volunteer id>"``: status, order of
  arrival, attendance.
- ``volunteers``: the local copy of volunteers (status, units, name) from the registry's events; ``scope_units``: the
  unit tree the scope rule needs (:func:`shared.scope.attach_unit_paths`).
- ``demands``: the enterprise innovation-demand library.
- ``activity_terms``: ``{_id: activity id, terms}``, the keyword terms each activity is found by
  (:func:`..domain.search_terms`), rewritten with its details (after the activity on a revision: a process that
  dies in between leaves the old terms until the next revision).

The documents are the records of :mod:`..usecases.records` as they are; every state change writes its events in the
same document's outbox (one atomic write).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.activities.domain import SignUpStatus
from services.activities.usecases.ports import ActivityQuery, DecideDemand, DemandQuery, Premise, Record
from shared.aggregates import Aggregates, Write, versioned
from shared.contracts.envelope import Envelope
from shared.identity import Identity
from shared.lease import Lease
from shared.scope import Reach
from shared.service import Service
from shared.storage import Doc, Indexes, utcnow
from shared.unit_paths import SCOPE_UNITS, reach

from .claims import ACTIVITIES, CLAIM_TTL, SIGNUPS, ClaimedSignUps, signup_id
from .expressions import (
    CLAIM,
    DECISION,
    LISTING_EXCLUDE,
    PLACE_LEFT,
    activities_filter,
    demands_filter,
    premise_filter,
)

VOLUNTEERS = "volunteers"
ACTIVITY_TERMS = "activity_terms"
MIGRATIONS = "migrations"  # one-off passes over the data done once (their names)
DEMANDS = "demands"
RUNNING = ["published", "ongoing"]
ACTIVE_SIGNUPS = frozenset(s.value for s in SignUpStatus if s.is_active)
__all__ = ["ACTIVITIES", "ACTIVITY_TERMS", "DEMANDS", "SIGNUPS", "VOLUNTEERS", "Store", "indexes", "signup_id"]


def indexes() -> Indexes:
    found = Indexes()
    found.add(ACTIVITIES, "unit_id")
    found.add(ACTIVITIES, "starts_at")
    found.add(ACTIVITIES, "status")
    # Finding activities (``activities_filter``): a skill and a theme (multikey), a line of work, the ones not yet
    # over (``ends_at``); a unit, a subtree, a city's units or a volunteer's by ``unit_id``; a start window by
    # ``starts_at``. The two orders, start and newest published, each with ``_id`` after it: a listing with no
    # condition walks the index in its order instead of sorting the collection.
    found.add(ACTIVITIES, "skills_wanted")
    found.add(ACTIVITIES, "themes")
    found.add(ACTIVITIES, "line_of_work")
    found.add(ACTIVITIES, "ends_at")
    found.add(ACTIVITIES, "starts_at", "_id")
    found.add(ACTIVITIES, "published_at", "_id")
    # A keyword's terms (multikey): kept beside the activities, not in them, because a sign-up rewrites the
    # activity and its hundreds of terms would weigh on every such write (measured: three times the cost).
    found.add(ACTIVITY_TERMS, "terms")
    found.add(DEMANDS, "unit_id")
    found.add(SCOPE_UNITS, "ancestors")
    found.add(SCOPE_UNITS, "city")  # a city's units, for a search by city
    found.add(SIGNUPS, "activity_id", "sequence")
    found.add(SIGNUPS, "activity_id", "status", "sequence")
    found.add(SIGNUPS, "claim.at", partial={CLAIM: {"$exists": True}}, name="claims")
    return found


class Store(ClaimedSignUps):
    """The service's documents: activities, sign-ups (claim → commit → apply), the local copies, demands."""

    def __init__(self, service: Service, *, claim_ttl: timedelta = CLAIM_TTL) -> None:
        super().__init__(service.db, service.outbox, claim_ttl=claim_ttl)
        self.service = service
        self.repair_lease = Lease(self.db, "activities-repair", ttl_s=60)

    async def find(
        self,
        collection: str,
        filter_: Mapping[str, Any],
        *,
        sort: tuple[str, int],
        offset: int,
        limit: int,
        projection: Mapping[str, Any] | None = None,
    ) -> tuple[int, list[Doc]]:
        col = self.db[collection]
        total = await col.count_documents(dict(filter_))
        cursor = col.find(dict(filter_), projection).sort([sort, ("_id", sort[1])]).skip(offset).limit(limit)
        return total, [doc async for doc in cursor]

    # -- activities
    async def activity(self, activity_id: str, *, pending: bool = True) -> Record | None:
        return await self.get(ACTIVITIES, activity_id, DECISION if pending else LISTING_EXCLUDE)

    async def insert_activity(self, record: Record) -> None:
        await self.outbox.insert_one(ACTIVITIES, record, [])

    async def save_activity(
        self, activity_id: str, changes: Mapping[str, Any], events: Sequence[Envelope[Any]], premise: Premise
    ) -> bool:
        """Write the changed fields and their events only while the premise holds (the version read...)."""
        update = versioned({"$set": dict(changes)})
        written = await self.outbox.update_one(ACTIVITIES, premise_filter(activity_id, premise), update, events)
        return bool(written.matched_count)

    async def find_activities(self, query: ActivityQuery, offset: int, limit: int) -> tuple[int, list[Record]]:
        filter_ = activities_filter(query)
        return await self.find(
            ACTIVITIES, filter_, sort=query.sort, offset=offset, limit=limit, projection=LISTING_EXCLUDE
        )

    async def save_terms(self, activity_id: str, terms: Sequence[str], *, only_new: bool = False) -> None:
        """The activity's terms (``only_new``: unless it has some already — a revision wrote newer ones)."""
        update = {"$setOnInsert" if only_new else "$set": {"terms": list(terms)}}
        await self.db[ACTIVITY_TERMS].update_one({"_id": activity_id}, update, upsert=True)

    async def activities_after(self, after: str | None, limit: int) -> list[Record]:
        """Activities' texts in ``_id`` order after ``after`` (the ``_id`` index, a page at a time)."""
        filter_ = {} if after is None else {"_id": {"$gt": after}}
        fields = {"title": 1, "description": 1, "place": 1}
        return [d async for d in self.db[ACTIVITIES].find(filter_, fields).sort("_id", 1).limit(limit)]

    async def migrated(self, name: str) -> bool:
        return await self.db[MIGRATIONS].find_one({"_id": name}) is not None

    async def mark_migrated(self, name: str) -> None:
        await self.db[MIGRATIONS].update_one({"_id": name}, {"$set": {"at": utcnow()}}, upsert=True)

    async def with_terms(self, terms: Sequence[str]) -> frozenset[str]:
        """The activities that have every one of these terms (index ``terms``: the first one bounds the read)."""
        cursor = self.db[ACTIVITY_TERMS].find({"terms": {"$all": list(terms)}}, {"_id": 1})
        return frozenset({str(d["_id"]) async for d in cursor})

    async def units_below(self, unit_id: str) -> frozenset[str]:
        """The unit and every unit below it, from the copy of the unit tree (one indexed query)."""
        cursor = self.db[SCOPE_UNITS].find({"$or": [{"_id": unit_id}, {"ancestors": unit_id}]}, {"_id": 1})
        return frozenset({unit_id} | {str(d["_id"]) async for d in cursor})

    async def city_units(self, city: str) -> frozenset[str]:
        cursor = self.db[SCOPE_UNITS].find({"city": city}, {"_id": 1})
        return frozenset({str(d["_id"]) async for d in cursor})

    async def signed_up(self, volunteer_id: str, activity_ids: Sequence[str]) -> frozenset[str]:
        """Which of these activities the volunteer holds an active sign-up to (point reads by ``_id``)."""
        ids = [signup_id(a, volunteer_id) for a in activity_ids]
        cursor = self.db[SIGNUPS].find({"_id": {"$in": ids}}, {"activity_id": 1, "status": 1})
        return frozenset({str(d["activity_id"]) async for d in cursor if d.get("status") in ACTIVE_SIGNUPS})

    # -- demands
    async def demand(self, demand_id: str) -> Record | None:
        return await self.get(DEMANDS, demand_id)

    async def insert_demand(self, record: Record, events: Sequence[Envelope[Any]]) -> None:
        await self.outbox.insert_one(DEMANDS, record, events)

    async def change_demand(self, demand_id: str, decide: DecideDemand) -> None:
        def write(doc: Doc | None) -> Write[None]:
            changes, events = decide(doc)
            return Write({"$set": dict(changes)}, list(events))

        await Aggregates(self.outbox, DEMANDS).change(demand_id, write)

    async def find_demands(self, query: DemandQuery, offset: int, limit: int) -> tuple[int, list[Record]]:
        projection = {"_outbox": 0, "_outbox_n": 0}
        return await self.find(
            DEMANDS, demands_filter(query), sort=("recorded_at", 1), offset=offset, limit=limit, projection=projection
        )

    # -- the local copies
    async def reach(self, identity: Identity) -> Reach:
        """The caller's reach: a unit admin's subtree from the copy (one indexed query), everything for the province."""
        return await reach(identity, self.db[SCOPE_UNITS], system_reads=True)

    async def unit_ancestors(self, unit_id: str) -> list[str]:
        unit = await self.db[SCOPE_UNITS].find_one({"_id": unit_id}, {"ancestors": 1})
        return list((unit or {}).get("ancestors") or [])

    async def volunteers(self, volunteer_ids: Sequence[str]) -> dict[str, Record]:
        cursor = self.db[VOLUNTEERS].find({"_id": {"$in": list(volunteer_ids)}})
        return {doc["_id"]: doc async for doc in cursor}

    async def apply_volunteer(self, volunteer_id: str, version: int, change: Mapping[str, Any]) -> bool:
        """Apply a volunteer event only when its version is newer than the copy's (one conditional upsert); True when
        applied. ``change`` holds the fields to set, or ``join``/``leave`` naming a unit."""
        sets: dict[str, Any] = {k: v for k, v in change.items() if k not in {"join", "leave"}}
        sets["version"] = version
        update: dict[str, Any] = {"$set": sets}
        if "join" in change:
            update["$addToSet"] = {"unit_ids": change["join"]}
        if "leave" in change:
            update["$pull"] = {"unit_ids": change["leave"]}
        try:
            await self.db[VOLUNTEERS].update_one(
                {"_id": volunteer_id, "version": {"$lt": version}}, update, upsert=True
            )
        except DuplicateKeyError:  # the copy is at this version or newer already
            return False
        return True

    # -- the repair sweep
    async def repair_turn(self) -> bool:
        """This replica's turn to sweep (a lease: one replica at a time)."""
        return await self.repair_lease.acquire()

    async def activities_owing_places(self) -> list[str]:
        owed = self.db[ACTIVITIES].find(
            {"status": {"$in": RUNNING}, "counts.waitlisted": {"$gt": 0}, "$expr": PLACE_LEFT}, {"_id": 1}
        )
        return [d["_id"] async for d in owed]
