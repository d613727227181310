"""Storage of the notifier, shaped for FerretDB v1: hot reads and writes address one ``_id``.

Collections:
- ``units``: one document per unit (``_id`` = unit id): name, status, contact and the facts that open and close
  its obligations (folded by :class:`domain.UnitObligations`, so a duplicate event changes nothing).
- ``slots``: one document per claimed reminder slot (``_id`` = slot key); inserted together with its event
  (outbox), so a slot is claimed, and its event published, exactly once.
- ``notifications``: the log of every notification (``_id`` = ``<event id>:<recipient>:<channel>``).
- ``deliveries``: the retry queue (``_id`` = notification id, ``next_attempt_at``); small, holds pending work only.
- ``missed_digests``: per deadline, the units that missed it, batched into one mail to the province office.
- ``subscriptions``: webhook subscribers. ``activities`` / ``volunteers``: the copies volunteer notices need.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.calendar import to_shanghai
from shared.storage import Doc, Indexes, utcnow

from .domain import SlotKey, UnitObligations

UNITS = "units"
SLOTS = "slots"
NOTIFICATIONS = "notifications"
DELIVERIES = "deliveries"
SUBSCRIPTIONS = "subscriptions"
ACTIVITIES = "activities"
VOLUNTEERS = "volunteers"
DIGESTS = "missed_digests"
SOURCE = "/stvs/notifier"

# Channels and outcomes of a notification.
EMAIL = "email"
WEBHOOK = "webhook"
INBOX = "inbox"
PENDING = "pending"  # queued, being retried
SENT = "sent"  # accepted by the SMTP server / the subscriber answered 2xx
DELIVERED = "delivered"  # an in-platform (inbox) notice, listed through the API
FAILED = "failed"  # given up (permanent error, attempts exhausted, bad template)
PAUSED = "paused"  # the subscriber is paused: not sent
OUTCOMES = (PENDING, SENT, DELIVERED, FAILED, PAUSED)
CHANNELS = (EMAIL, WEBHOOK, INBOX)


def indexes() -> Indexes:
    found = Indexes()
    found.add(NOTIFICATIONS, "unit_id")
    found.add(NOTIFICATIONS, "created_at")
    found.add(SLOTS, "deadline_id")
    return found


def slot_id(key: SlotKey) -> str:
    return f"{key.deadline_id}|{key.unit_id}|{key.slot}"


def notification_id(event_id: str, recipient: str, channel: str) -> str:
    return f"{event_id}:{recipient}:{channel}"


def stop_requested() -> bool:
    """True once the current task was asked to stop, even if a library swallowed the CancelledError (the PyMongo
    client can turn a cancellation into a connection error): background loops check it so a stop never hangs."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


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
    now = utcnow()
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
