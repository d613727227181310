"""Storage of the activities service, shaped for FerretDB v1: every hot read and write addresses one ``_id``.

FerretDB reads and rewrites a whole document on every access (measured: ~16 µs per nested entry, so an activity
document holding 300 sign-ups costs ~35 ms to read), so sign-ups are not kept inside the activity:

- ``activities``: details, life-cycle state, the sign-up counters (``counts``) and ``next_seq`` — small and
  constant in size. It is the commit point: every sign-up decision is read, decided and written here under the
  activity's lock, with its events and the sign-up changes themselves staged as ``pending.<volunteer id>`` in the
  same write. The changes are then applied to ``signups`` (and the ``pending`` keys removed by the next such
  write); a crash in between leaves them in the activity, and the next operation on it applies them first
  (:meth:`Store.load_settled`).
  So capacity is never oversold, no event is lost, and no sign-up is lost. A burst of sign-ups is decided and
  committed in batches (``api.decide_signups``, group commit): one such write for the whole batch, then one
  ``insert_many`` of the new sign-up documents.
- ``signups``: one document per (activity, volunteer), ``_id = "<activity id>|<volunteer id>"``: status, order
  of arrival, and attendance (check-in/out, corrections) with the attendance events staged on it.
- ``volunteers``: the local copy built from the registry's events; ``demands``: the demand library.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pymongo.errors import BulkWriteError

from shared.contracts.envelope import Envelope
from shared.messaging.outbox import OUTBOX, OUTBOX_N
from shared.service import Service
from shared.storage import Doc, Indexes, doc_locks

from .domain import Activity, Attendance, Correction, Demand, SignUp, SignUpStatus

ACTIVITIES = "activities"
SIGNUPS = "signups"
VOLUNTEERS = "volunteers"
DEMANDS = "demands"
SOURCE = "/stvs/activities"

# Heavy or internal parts left out of listings.
LISTING_EXCLUDE = {"pending": 0, OUTBOX: 0, OUTBOX_N: 0}
PENDING = "pending"


def indexes() -> Indexes:
    found = Indexes()
    found.add(ACTIVITIES, "unit_id")
    found.add(ACTIVITIES, "starts_at")
    found.add(DEMANDS, "unit_id")
    found.add(SIGNUPS, "activity_id")
    return found


def bson(value: Any) -> Any:
    """Domain values → what MongoDB stores (enums as values, sets as sorted lists, Decimals and URLs as text)."""
    if isinstance(value, BaseModel):
        return bson(value.model_dump())
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(bson(v) for v in value)
    if isinstance(value, list | tuple):
        return [bson(v) for v in value]
    if isinstance(value, dict):
        return {str(k): bson(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool | datetime):
        return value
    return str(value)


def activity_fields(activity: Activity) -> Doc:
    """The stored fields of an activity's details and state (without id, sign-ups, attendance)."""
    out: Doc = bson(activity.model_dump(exclude={"id"}))
    return out


def to_activity(doc: Mapping[str, Any]) -> Activity:
    data = {k: doc[k] for k in Activity.model_fields if k != "id" and k in doc}
    return Activity.model_validate({**data, "id": doc["_id"]})


def signup_id(activity_id: str, volunteer_id: str) -> str:
    return f"{activity_id}|{volunteer_id}"


def to_signup(doc: Mapping[str, Any]) -> SignUp:
    return SignUp(
        activity_id=doc["activity_id"],
        volunteer_id=doc["volunteer_id"],
        sequence=doc["sequence"],
        status=doc["status"],
        signed_up_at=doc["signed_up_at"],
    )


def confirmed_count(doc: Mapping[str, Any]) -> int:
    return int((doc.get("counts") or {}).get(SignUpStatus.CONFIRMED.value, 0))


def attendance_of(signup: Mapping[str, Any] | None, activity_id: str, volunteer_id: str) -> Attendance:
    raw = ((signup or {}).get("attendance")) or {}
    return Attendance(
        activity_id=activity_id,
        volunteer_id=volunteer_id,
        check_in=raw.get("check_in"),
        check_out=raw.get("check_out"),
        corrections=tuple(Correction.model_validate(c) for c in raw.get("corrections", ())),
    )


def attendance_doc(attendance: Attendance) -> Doc:
    out: Doc = bson(attendance.model_dump(exclude={"activity_id", "volunteer_id"}))
    return out


def to_demand(doc: Mapping[str, Any]) -> Demand:
    data = {k: doc[k] for k in Demand.model_fields if k != "id" and k in doc}
    return Demand.model_validate({**data, "id": doc["_id"]})


class Store:
    """The service's documents: activities, the local copy of volunteers, demands."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.db = service.db
        # Per activity: volunteers whose pending change is applied to their sign-up but still in the activity
        # document (dropped by the activity's next commit). Only this process's knowledge; see ``commit``.
        self._applied: dict[str, set[str]] = {}

    @contextlib.asynccontextmanager
    async def locked(self, collection: str, doc_id: str) -> AsyncIterator[None]:
        """Serialize the read-decide-write of one aggregate.

        This is a lock of its own (``<collection>:decide``), not the document's write lock: every write below
        still takes the document's lock (``Outbox.update_one``), only for the write itself. So the outbox relay,
        which only removes published ``_outbox`` keys, can clear the document between two decisions instead of
        queueing behind a burst of them (the events would pile up in the document and make every access slower).
        """
        async with doc_locks.hold(self.db[f"{collection}:decide"], doc_id):
            yield

    async def get(self, collection: str, doc_id: str, projection: Mapping[str, Any] | None = None) -> Doc | None:
        return await self.db[collection].find_one({"_id": doc_id}, projection)

    async def insert(self, collection: str, doc: Doc, events: Sequence[Envelope[Any]]) -> None:
        await self.service.outbox.insert_one(collection, doc, events)

    async def write_locked(
        self, collection: str, doc_id: str, update: Mapping[str, Any], events: Sequence[Envelope[Any]]
    ) -> None:
        """State change plus events in one document write; the caller holds the aggregate's :meth:`locked`."""
        await self.service.outbox.update_one(collection, {"_id": doc_id}, update, events)

    async def load_settled(self, activity_id: str) -> Doc | None:
        """The activity with any sign-up changes a crash left pending applied first; hold the activity's lock."""
        doc = await self.get(ACTIVITIES, activity_id)
        await self.settle_left(activity_id, doc)
        return doc

    async def settle_left(self, activity_id: str, doc: Doc | None) -> bool:
        """Apply the sign-up changes a crash left pending in this activity document, and drop the pending part from
        ``doc``; True when there were any. The caller holds the activity's lock."""
        if doc is None or not doc.get(PENDING):
            return False
        pending: dict[str, Any] = doc.pop(PENDING)
        left = {v: fields for v, fields in pending.items() if v not in self._applied.get(activity_id, ())}
        if not left:
            return False
        await self._settle(activity_id, left)
        return True

    async def commit(
        self,
        activity_id: str,
        update: Mapping[str, Any],
        events: Sequence[Envelope[Any]],
        changes: Mapping[str, Mapping[str, Any]],
        new: Collection[str] = (),
    ) -> None:
        """Commit sign-up decisions: counters, events and the sign-up changes in ONE write of the activity, then
        apply the changes to the sign-up documents. ``new`` names the volunteers without a sign-up document yet
        (inserted together, one round trip). The caller holds the activity's lock.

        The pending part of changes already applied is dropped by the next such write (not by a write of its own):
        it stays harmless meanwhile — :meth:`settle_left` skips what this process knows to be applied, and after a
        restart applies it again, which changes nothing (each volunteer's entry is their latest change).
        """
        merged: dict[str, Any] = {k: dict(v) for k, v in update.items()}
        sets = merged.setdefault("$set", {})
        for volunteer_id, fields in changes.items():
            sets[f"{PENDING}.{volunteer_id}"] = dict(fields)
        applied = self._applied.setdefault(activity_id, set())
        applied.difference_update(changes)  # re-staged: not applied until this commit's changes are
        dropped = set(applied)
        if dropped:
            unset = merged.setdefault("$unset", {})
            unset.update({f"{PENDING}.{volunteer_id}": "" for volunteer_id in dropped})
        await self.write_locked(ACTIVITIES, activity_id, merged, events)
        applied.difference_update(dropped)
        await self._settle(activity_id, changes, new)

    async def _settle(
        self, activity_id: str, changes: Mapping[str, Mapping[str, Any]], new: Collection[str] = ()
    ) -> None:
        """Apply committed sign-up changes to their documents (idempotent); the next commit drops them from the
        activity's pending part."""
        fresh = [v for v in changes if v in new]
        if fresh:
            docs = [{"_id": signup_id(activity_id, v), **changes[v]} for v in fresh]
            try:
                await self.db[SIGNUPS].insert_many(docs, ordered=True)
            except BulkWriteError:  # a document is there after all (cannot happen under the lock): upsert them all
                fresh = []
        outbox = self.service.outbox

        async def upsert(volunteer_id: str) -> None:
            sid = signup_id(activity_id, volunteer_id)
            await outbox.update_one(SIGNUPS, {"_id": sid}, {"$set": dict(changes[volunteer_id])}, [], upsert=True)

        await asyncio.gather(*(upsert(v) for v in changes if v not in fresh))
        self._applied.setdefault(activity_id, set()).update(changes)

    async def write_signup(
        self, activity_id: str, volunteer_id: str, update: Mapping[str, Any], events: Sequence[Envelope[Any]]
    ) -> None:
        """Attendance change plus its events in one write of the sign-up document; the caller holds the
        activity's :meth:`locked` (every writer of a sign-up document does)."""
        await self.write_locked(SIGNUPS, signup_id(activity_id, volunteer_id), update, events)

    async def roster(self, activity_id: str) -> list[Doc]:
        """Every sign-up of an activity in order of arrival (a scan: for listings and rare decisions only)."""
        cursor = self.db[SIGNUPS].find({"activity_id": activity_id}, {OUTBOX: 0, OUTBOX_N: 0}).sort("sequence", 1)
        return [doc async for doc in cursor]

    async def find(
        self,
        collection: str,
        filter_: Mapping[str, Any],
        *,
        sort: str,
        offset: int,
        limit: int,
        projection: Mapping[str, Any] | None = None,
    ) -> tuple[int, list[Doc]]:
        col = self.db[collection]
        total = await col.count_documents(dict(filter_))
        cursor = col.find(dict(filter_), projection).sort([(sort, 1), ("_id", 1)]).skip(offset).limit(limit)
        return total, [doc async for doc in cursor]

    # -- local copy of volunteers (built from the registry's events)
    async def apply_volunteer(self, volunteer_id: str, version: int, change: Mapping[str, Any]) -> bool:
        """Apply a volunteer event only when its version is newer than the copy's; True when applied.

        ``change`` holds the fields to set, or ``join``/``leave`` naming a unit.
        """
        col = self.db[VOLUNTEERS]
        async with doc_locks.hold(col, volunteer_id):  # the only writer of the copy: the document lock will do
            doc = await col.find_one({"_id": volunteer_id})
            if doc is not None and int(doc.get("version", 0)) >= version:
                return False
            new: Doc = dict(doc or {"_id": volunteer_id, "unit_ids": []})
            units: list[str] = list(new.get("unit_ids") or [])
            if "join" in change and change["join"] not in units:
                units.append(change["join"])
            if "leave" in change:
                units = [u for u in units if u != change["leave"]]
            new.update({k: v for k, v in change.items() if k not in {"join", "leave"}})
            if "unit_ids" not in change:
                new["unit_ids"] = units
            new["version"] = version
            await col.replace_one({"_id": volunteer_id}, new, upsert=True)
            return True
