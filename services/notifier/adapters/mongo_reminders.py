"""The reminder slots on MongoDB (``usecases.ports.ReminderStore``).

A slot is claimed by INSERTING a document whose ``_id`` is the slot key; its events go in the same MongoDB
transaction, into the outbox of one batch document per chunk of claims (the relay publishes them once it committed,
and clears one document, not one per slot): a crash leaves all of it or none. A claim is refused with a duplicate
key when the slot was claimed before (by this or another replica, before or after a restart). ``slots`` is indexed
by (deadline, slot), so a pass reads which of its due slots are claimed in one query.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.notifier.domain import DueNotification, UnitObligations, UnitSlot
from services.notifier.domain.notices import slot_id
from services.notifier.usecases.ports import ActivityCopy, SlotTaken
from shared import clock
from shared.aggregates import in_transaction
from shared.contracts.envelope import Envelope, parse_envelope
from shared.messaging.outbox import OUTBOX_N, Outbox, Transaction
from shared.storage import Doc

from .mongo import ACTIVITIES, DUPLICATE_KEY, SLOT_BATCHES, SLOTS, UNITS, unit_obligations

log = logging.getLogger("stvs.notifier.scheduler")

CLAIMING = "claiming"  # a batch of the former two-step claim, interrupted: recovered by recover()
STAGED = "staged"
UNIT_FIELDS = dict.fromkeys(
    ("status", "registered_at", "contact_person_at", "action_plans", "monthly_reports", "active_quarters"), 1
)


def _duplicate(exc: BulkWriteError | DuplicateKeyError) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    return any(e.get("code") == DUPLICATE_KEY for e in exc.details.get("writeErrors", []))


def _unit_obligations(doc: Doc) -> UnitObligations | None:
    try:
        return unit_obligations(doc)
    except (ValueError, TypeError, KeyError):
        log.warning("unit %s has unreadable obligation facts; skipped", doc.get("_id"))
        return None


class MongoReminders:
    def __init__(self, outbox: Outbox, holder: str, recover_after_s: float) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.holder = holder
        # A batch still claiming after this long was interrupted (far longer than a pass takes): it is recovered.
        self.recover_after_s = recover_after_s

    async def units(self, skip: Callable[[str], bool]) -> AsyncIterator[UnitObligations]:
        async for doc in self.db[UNITS].find({"status": {"$ne": "rejected"}}, UNIT_FIELDS):
            if skip(str(doc["_id"])):
                continue
            unit = _unit_obligations(doc)
            if unit is not None:
                yield unit

    async def claimed(self, due: Sequence[DueNotification]) -> set[str]:
        keys = {(n.key("").deadline_id, n.key("").slot) for n in due}
        query = {
            "deadline_id": {"$in": sorted({d for d, _ in keys})},
            "slot": {"$in": sorted({s for _, s in keys})},
        }
        return {str(d["_id"]) async for d in self.db[SLOTS].find(query, {"_id": 1})}

    async def claimed_ids(self, slot_ids: Sequence[str]) -> set[str]:
        return {str(d["_id"]) async for d in self.db[SLOTS].find({"_id": {"$in": list(slot_ids)}}, {"_id": 1})}

    async def claim(self, slots: Sequence[UnitSlot], events: Sequence[Envelope[Any]], now: datetime) -> int:
        try:
            work = functools.partial(self._claim_in, slots=slots, events=events, now=now)
            return await in_transaction(self.outbox, work)
        except (BulkWriteError, DuplicateKeyError) as exc:
            if not _duplicate(exc):
                raise
            raise SlotTaken from exc

    async def _claim_in(
        self, tx: Transaction, *, slots: Sequence[UnitSlot], events: Sequence[Envelope[Any]], now: datetime
    ) -> int:
        batch_id = "batch_" + uuid.uuid4().hex
        claimed_at = clock.now()
        claims = [
            {
                "_id": slot_id(slot.key),
                "deadline_id": slot.key.deadline_id,
                "unit_id": slot.key.unit_id,
                "slot": slot.key.slot,
                "obligations": [k.value for k in slot.obligations],
                "evaluated_at": now,
                "claimed_at": claimed_at,
                "claimed_by": self.holder,
                "batch": batch_id,
            }
            for slot in slots
        ]
        await self.db[SLOTS].insert_many(claims, ordered=True, session=tx.session)
        batch = {"_id": batch_id, "status": STAGED, "created_at": claimed_at, "holder": self.holder}
        await self.outbox.insert_one(SLOT_BATCHES, batch, list(events), tx=tx)
        return len(slots)

    async def _stage(self, batch_id: str, events: list[Envelope[Any]]) -> None:
        """Stage the events of a batch left ``claiming`` (the former two-step claim) in its document."""
        if not events:  # every claim refused: nothing to publish, nothing to keep
            await self.db[SLOT_BATCHES].delete_one({"_id": batch_id})
            return
        update = {"$set": {"status": STAGED, "staged_at": clock.now()}, "$unset": {"pending": ""}}
        await self.outbox.update_one(SLOT_BATCHES, {"_id": batch_id}, update, events)

    async def recover(self) -> int:
        """Stage the events of batches left ``claiming`` by a crash of the former two-step claim (older than
        ``recover_after_s``), and drop the batches whose events are all published. Returns how many events were
        recovered."""
        col = self.db[SLOT_BATCHES]
        cutoff = clock.now() - timedelta(seconds=self.recover_after_s)
        recovered = 0
        async for batch in col.find({"status": CLAIMING}):
            if batch.get("created_at", cutoff) > cutoff:
                continue
            events: list[Envelope[Any]] = []
            for item in batch.get("pending") or []:
                claim = await self.db[SLOTS].find_one({"_id": item["slot"]}, {"batch": 1})
                if claim is not None and claim.get("batch") == batch["_id"]:
                    events.extend(parse_envelope(str(raw).encode()) for raw in item["events"])
            await self._stage(batch["_id"], events)
            recovered += len(events)
            log.warning("scheduler recovered %d reminder events of an interrupted pass", len(events))
        await col.delete_many({"status": STAGED, OUTBOX_N: {"$lte": 0}})
        return recovered

    async def activities_starting(self, now: datetime) -> list[ActivityCopy]:
        found: list[ActivityCopy] = []
        async for doc in self.db[ACTIVITIES].find({"status": "published", "starts_at": {"$gt": now}}):
            starts_at = doc.get("starts_at")
            if isinstance(starts_at, datetime):
                found.append(
                    ActivityCopy(
                        activity_id=doc["_id"],
                        unit_id=doc.get("unit_id"),
                        title=doc.get("title", ""),
                        starts_at=starts_at,
                        county=doc.get("county"),
                        signups=doc.get("signups") or {},
                        reminded=doc.get("reminded") or {},
                    )
                )
        return found

    async def mark_reminded(self, activity_id: str, volunteer_ids: Sequence[str], now: datetime) -> None:
        await self.db[ACTIVITIES].update_one(
            {"_id": activity_id}, {"$set": {f"reminded.{v}": now for v in volunteer_ids}}
        )
