"""MongoDB storage of the notifier: documents ↔ domain, indexes, and the atomic writes the ports are made of
(``mongo_notices``, ``mongo_delivery``, ``mongo_reminders``). Shared by every replica: each write is one atomic,
conditional update (or an insert refused by a unique key), never a read-modify-write under a lock of this process.

Collections:
- ``units``: one document per unit (``_id`` = unit id): name, status, contact and the facts that open and close
  its obligations (folded by :class:`domain.UnitObligations`, so a duplicate event changes nothing); written by
  :func:`change` (read, decide, write conditionally on the revision read).
- ``slots``: one document per claimed reminder slot (``_id`` = slot key): the claim; inserting it is what makes
  its event published exactly once. Indexed by (deadline, slot), so a pass reads which of its due slots are claimed
  in one query.
- ``slot_batches``: one per chunk of claims of a scheduler pass: the candidates' events, then the won ones staged
  in its outbox (published by the relay); dropped once published. Small.
- ``notifications``: the log of every notification (``_id`` = ``<event id>:<recipient>:<channel>``).
- ``deliveries``: the retry queue (``_id`` = notification id, ``next_attempt_at``, ``seq``: the order it was
  logged in); small, holds pending work only. A worker claims an entry (``claimed_by``, ``claimed_until``) with
  one ``find_one_and_update`` before it sends, so two replicas never send the same notification.
- ``parked``: queued webhook deliveries of a paused subscriber (``_id`` = notification id); put back into
  ``deliveries`` when it is resumed, so nothing it missed is dropped.
- ``missed_digests``: per deadline, the units that missed it, batched into one mail to the province office.
- ``subscriptions``: webhook subscribers. ``activities`` / ``volunteers``: the copies volunteer notices need.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.notifier.domain import UnitObligations
from services.notifier.domain.notices import PAUSED, PENDING, WEBHOOK
from services.notifier.usecases.ports import UnitCopy
from shared import clock
from shared.calendar import to_shanghai
from shared.storage import Doc, Indexes
from shared.unit_paths import SCOPE_UNITS

UNITS = "units"
SLOTS = "slots"
SLOT_BATCHES = "slot_batches"
PARKED = "parked"
NOTIFICATIONS = "notifications"
DELIVERIES = "deliveries"
SUBSCRIPTIONS = "subscriptions"
ACTIVITIES = "activities"
VOLUNTEERS = "volunteers"
DIGESTS = "missed_digests"
REVIEWS = "report_reviews"  # a returned report's resubmit obligation (domain.reviews)
DUPLICATE_KEY = 11000

CLAIM_FIELDS = ("claimed_by", "claimed_until")  # a delivery worker's claim of a queue entry
REV = "_rev"  # the revision of a document written by :func:`change`
CHANGE_ATTEMPTS = 32


def indexes() -> Indexes:
    found = Indexes()
    found.add(NOTIFICATIONS, "unit_id")
    found.add(NOTIFICATIONS, "created_at")
    found.add(NOTIFICATIONS, "recipient")
    found.add(SLOTS, "deadline_id")
    found.add(SLOTS, "deadline_id", "slot")
    found.add(DELIVERIES, "channel", "next_attempt_at")
    found.add(DELIVERIES, "subscription_id", "next_attempt_at")
    found.add(PARKED, "subscription_id")
    found.add(ACTIVITIES, "status")
    found.add(SUBSCRIPTIONS, "event_types")
    found.add(SCOPE_UNITS, "ancestors")
    found.add(REVIEWS, "returned_at")
    return found


class Contended(RuntimeError):
    """A document changed under every attempt to change it (the consumer retries the event)."""


async def change(col: AsyncCollection[Doc], doc_id: Any, decide: Callable[[Doc | None], Doc | None]) -> bool:
    """Read one document, let ``decide`` return the fields to ``$set`` (None: nothing to write), and write them
    only if the document is still at the revision read (or, when there was none, insert it: a concurrent insert
    is refused by the ``_id``). On a concurrent change the decision is taken again on the fresh document. Returns
    True when something was written. Every replica may run it at once: MongoDB's single-document atomicity is the
    guarantee, no lock of this process."""
    for attempt in range(CHANGE_ATTEMPTS):
        doc = await col.find_one({"_id": doc_id})
        fields = decide(doc)
        if fields is None:
            return False
        if doc is None:
            try:
                await col.insert_one({"_id": doc_id, **fields, REV: 1})
                return True
            except DuplicateKeyError:
                pass
        else:
            result = await col.update_one({"_id": doc_id, REV: doc.get(REV)}, {"$set": fields, "$inc": {REV: 1}})
            if result.matched_count:
                return True
        await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.1)))
    raise Contended(f"{col.name}/{doc_id} changed under {CHANGE_ATTEMPTS} attempts in a row")


async def upsert(col: AsyncCollection[Doc], filter_: Mapping[str, Any], update: Mapping[str, Any]) -> bool:
    """``update_one(..., upsert=True)`` where the filter may refuse an existing document (e.g. a newer version):
    the upsert's insert then collides with the ``_id`` and nothing changes. Returns True when it wrote."""
    try:
        result = await col.update_one(dict(filter_), dict(update), upsert=True)
    except DuplicateKeyError:
        return False
    return bool(result.modified_count or result.upserted_id is not None)


# ---- units <-> domain


def _dt(value: Any) -> datetime | None:
    return to_shanghai(value) if isinstance(value, datetime) else None


def unit_obligations(doc: Mapping[str, Any]) -> UnitObligations:
    """The domain fold of a stored unit."""
    return UnitObligations(
        unit_id=str(doc["_id"]),
        registered_at=_dt(doc.get("registered_at")),
        contact_person_at=_dt(doc.get("contact_person_at")),
        action_plans={int(k): to_shanghai(v) for k, v in (doc.get("action_plans") or {}).items()},
        monthly_reports={str(k): to_shanghai(v) for k, v in (doc.get("monthly_reports") or {}).items()},
        active_quarters={str(k): to_shanghai(v) for k, v in (doc.get("active_quarters") or {}).items()},
    )


def unit_copy(doc: Mapping[str, Any]) -> UnitCopy:
    """The notifier's copy of a stored unit."""
    version = doc.get("version")
    return UnitCopy(
        obligations=unit_obligations(doc),
        name=doc.get("name"),
        status=doc.get("status"),
        kind=doc.get("kind"),
        version=int(version) if version is not None else None,
        contact=doc.get("contact"),
    )


def unit_fields(copy: UnitCopy) -> Doc:
    """What is stored of a unit's copy: its facts, and the registry's snapshot once one was seen."""
    fields = obligation_fields(copy.obligations)
    if copy.version is not None:
        fields.update(name=copy.name, status=copy.status, kind=copy.kind, version=copy.version)
        fields["contact"] = dict(copy.contact) if copy.contact is not None else None
    return fields


def obligation_fields(state: UnitObligations) -> Doc:
    """What is stored of a unit's fold (Mongo keys must be strings)."""
    return {
        "registered_at": state.registered_at,
        "contact_person_at": state.contact_person_at,
        "action_plans": {str(k): v for k, v in state.action_plans.items()},
        "monthly_reports": dict(state.monthly_reports),
        "active_quarters": dict(state.active_quarters),
    }


# ---- notifications


async def log_notification(db: AsyncDatabase[Doc], doc: Doc, *, queue: bool) -> bool:
    """Insert a notification (once: its id is derived from event, recipient and channel) and, when ``queue``, its
    retry-queue entry. Returns False when it was already logged.

    A redelivered event finds its notification: if still pending, the queue entry is ensured (the first try may
    have crashed between the two inserts); if sent, nothing happens. The worker re-checks the outcome before
    every send, so a stray queue entry never sends twice.
    """
    now = clock.now()
    doc = {"attempts": 0, "created_at": now, "updated_at": now, "last_error": None, **doc}
    first = True
    try:
        await db[NOTIFICATIONS].insert_one(doc)
    except DuplicateKeyError:
        first = False
        existing = await db[NOTIFICATIONS].find_one({"_id": doc["_id"]}, {"outcome": 1})
        if existing is None or existing.get("outcome") != PENDING:
            return False
    if queue:
        with contextlib.suppress(DuplicateKeyError):
            await db[DELIVERIES].insert_one(
                {"_id": doc["_id"], "channel": doc["channel"], "next_attempt_at": now, "created_at": now}
            )
    return first


_last_seq = 0


def next_seq() -> int:
    """An ever-growing number (nanoseconds, distinct in this process) giving the order deliveries were logged
    in: per subscriber, they go out in it."""
    global _last_seq
    _last_seq = max(time.time_ns(), _last_seq + 1)
    return _last_seq


async def insert_ignoring_duplicates(db: AsyncDatabase[Doc], collection: str, docs: list[Doc]) -> set[Any]:
    """``insert_many(ordered=False)``; returns the ids that already existed. Any other error is raised."""
    if not docs:
        return set()
    try:
        await db[collection].insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {docs[int(e["index"])]["_id"] for e in errors}
    return set()


async def log_webhooks(db: AsyncDatabase[Doc], docs: list[Doc], entries: list[Doc]) -> int:
    """Log one event's webhook notifications (one insert for all subscribers) and queue them (one more).

    Like :func:`log_notification`: an already logged one (redelivered event) is queued again only while it is
    still pending, and the worker re-checks the outcome before sending. Returns how many were new."""
    now = clock.now()
    docs = [{"attempts": 0, "created_at": now, "updated_at": now, "last_error": None, **doc} for doc in docs]
    existing = await insert_ignoring_duplicates(db, NOTIFICATIONS, docs)
    wanted = [e for e in entries if e["_id"] not in existing]
    for entry in entries:
        if entry["_id"] in existing:
            found = await db[NOTIFICATIONS].find_one({"_id": entry["_id"]}, {"outcome": 1})
            if found is not None and found.get("outcome") == PENDING:
                wanted.append(entry)
    await insert_ignoring_duplicates(db, DELIVERIES, wanted)
    return len(docs) - len(existing)


async def _outcomes(db: AsyncDatabase[Doc], ids: list[Any]) -> dict[Any, Any]:
    found: dict[Any, Any] = dict.fromkeys(ids)
    async for doc in db[NOTIFICATIONS].find({"_id": {"$in": ids}}, {"outcome": 1}):
        found[doc["_id"]] = doc.get("outcome")
    return found


async def _set_outcome(db: AsyncDatabase[Doc], note_id: Any, was: str, fields: Doc) -> None:
    """Move a notification from outcome ``was`` on (one conditional write: one that moved on meanwhile stays)."""
    await db[NOTIFICATIONS].update_one(
        {"_id": note_id, "outcome": was}, {"$set": {**fields, "updated_at": clock.now()}}
    )


async def park(db: AsyncDatabase[Doc], entries: list[Doc], reason: str) -> int:
    """Set queued deliveries of a paused subscriber aside (logged as ``paused``, kept for its resumption).

    Only a still pending notification is parked (a queue entry left behind by a crash after its send is just
    dropped). The parked copy is written first, so a crash in between loses nothing. Returns how many."""
    if not entries:
        return 0
    outcomes = await _outcomes(db, [e["_id"] for e in entries])
    parked = [
        {k: v for k, v in e.items() if k not in CLAIM_FIELDS}
        for e in entries
        if outcomes.get(e["_id"]) in (PENDING, PAUSED)
    ]
    await insert_ignoring_duplicates(db, PARKED, parked)
    for entry in parked:
        if outcomes[entry["_id"]] == PENDING:
            fields = {"outcome": PAUSED, "last_error": reason, "next_attempt_at": None}
            await _set_outcome(db, entry["_id"], PENDING, fields)
    await db[DELIVERIES].delete_many({"_id": {"$in": [e["_id"] for e in entries]}})
    return len(parked)


async def unpark(db: AsyncDatabase[Doc], subscription_id: Any) -> int:
    """Queue again what a resumed subscriber missed, in its original order; returns how many.

    Only a notification still ``paused`` (or ``pending``) is queued again, so one that went out meanwhile is never
    sent twice; the queue entry is written before the parked copy is dropped."""
    entries = sorted([e async for e in db[PARKED].find({"subscription_id": subscription_id})], key=_order)
    if not entries:
        return 0
    now = clock.now()
    outcomes = await _outcomes(db, [e["_id"] for e in entries])
    wanted = [e for e in entries if outcomes.get(e["_id"]) in (PENDING, PAUSED)]
    for entry in wanted:
        if outcomes[entry["_id"]] == PAUSED:
            fields = {"outcome": PENDING, "last_error": None, "next_attempt_at": now}
            await _set_outcome(db, entry["_id"], PAUSED, fields)
    await insert_ignoring_duplicates(db, DELIVERIES, [{**e, "next_attempt_at": now} for e in wanted])
    await db[PARKED].delete_many({"_id": {"$in": [e["_id"] for e in entries]}})
    return len(wanted)


def _order(entry: Mapping[str, Any]) -> tuple[int, str]:
    seq = entry.get("seq")
    if not isinstance(seq, int):
        created = entry.get("created_at")
        seq = int(created.timestamp() * 1e9) if isinstance(created, datetime) else 0
    return seq, str(entry["_id"])


def public_notification(doc: Mapping[str, Any]) -> Doc:
    """A notification as the API lists it."""
    return {
        "id": doc["_id"],
        "event_id": doc.get("event_id"),
        "event_type": doc.get("event_type"),
        "kind": doc.get("kind"),
        "recipient": doc.get("recipient"),
        "address": doc.get("address"),
        "unit_id": doc.get("unit_id"),
        "channel": doc.get("channel"),
        "subject": doc.get("subject"),
        "body": doc.get("body") if doc.get("channel") != WEBHOOK else None,
        "attempts": doc.get("attempts", 0),
        "outcome": doc.get("outcome"),
        "last_error": doc.get("last_error"),
        "created_at": doc.get("created_at"),
        "sent_at": doc.get("sent_at"),
        "next_attempt_at": doc.get("next_attempt_at"),
    }
