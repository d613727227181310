"""The deadline scheduler: claims every due reminder slot exactly once and publishes its event.

Every interval, under a lease (one replica scans at a time), the calendar's due slots are evaluated against every
unit (:func:`domain.slots_for_unit`) in memory, from one scan of the units. A slot is claimed by INSERTING a
document whose ``_id`` is the slot key; its events go in the same MongoDB transaction, into the outbox of one batch
document per chunk of claims: the claims and their events are one atomic change. A claim is refused with a duplicate
key when the slot was claimed before (by this or another replica, before or after a restart), so each (deadline,
unit, slot) is published once. Before claiming, one indexed query (deadline, slot) reads which due slots are already
claimed, so a pass tries only the new ones; nothing is remembered in the process (the unique ``_id`` stays the
claim). Catch-up after downtime falls out of the domain: only the latest due slot of each deadline is due.

The same pass reminds volunteers the day before their activity (an inbox notice; idempotent by id).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared import clock
from shared.aggregates import in_transaction
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope, parse_envelope
from shared.lease import Lease
from shared.messaging.outbox import OUTBOX_N, Transaction
from shared.service import Service

from . import domain, templates
from .consumers import Notices, day_before, volunteer_recipient
from .settings import NotifierSettings
from .store import (
    ACTIVITIES,
    DUPLICATE_KEY,
    SLOT_BATCHES,
    SLOTS,
    SOURCE,
    UNITS,
    slot_id,
    stop_requested,
    unit_obligations,
)

log = logging.getLogger("stvs.notifier.scheduler")

REMINDED_STATUSES = ("confirmed", "pending_approval")  # waitlisted volunteers are not asked to come
LOCATION_FALLBACK = "详见平台活动页面"
CLAIM_CHUNK = 1_500  # claims per transaction (and per batch document: well under 16 MB of events)
CLAIM_ATTEMPTS = 5
CLAIMING = "claiming"  # a batch of the former two-step claim, interrupted: recovered by _recover
STAGED = "staged"
UNIT_FIELDS = dict.fromkeys(
    ("status", "registered_at", "contact_person_at", "action_plans", "monthly_reports", "active_quarters"), 1
)


def slot_events(slot: domain.UnitSlot, now: datetime) -> list[Envelope[Any]]:
    """The events of one claimed slot: one per obligation that makes it concern the unit."""
    deadline = slot.notification.deadline
    out: list[Envelope[Any]] = []
    for kind in slot.obligations:
        data: ev.Event
        if slot.notification.kind is domain.NotificationKind.MISSED:
            data = ev.DeadlineMissed(
                deadline_id=deadline.id,
                obligation=kind.value,
                unit_id=slot.key.unit_id,
                title=deadline.title_zh,
                due_at=deadline.due_at,
            )
        else:
            data = ev.DeadlineApproaching(
                deadline_id=deadline.id,
                obligation=kind.value,
                unit_id=slot.key.unit_id,
                title=deadline.title_zh,
                due_at=deadline.due_at,
                days_left=domain.days_left(deadline.due_at, now),
            )
        out.append(Envelope.new(data, source=SOURCE, subject=slot.key.unit_id))
    return out


class Scheduler:
    def __init__(self, service: Service, settings: NotifierSettings, notices: Notices, *, holder: str | None = None):
        self.service = service
        self.settings = settings
        self.notices = notices
        self.calendar = settings.calendar()
        self.lease = Lease(
            service.db, "notifier-scheduler", ttl_s=max(30.0, settings.scheduler_interval_s * 3), holder=holder
        )
        # A batch still claiming after this long was interrupted (far longer than a pass takes): it is recovered.
        self.recover_after_s = max(300.0, self.lease.ttl.total_seconds() * 4)

    async def run_once(self, now: datetime | None = None, *, use_lease: bool = True) -> int:
        """Evaluate the calendar at ``now``; returns how many slots this call claimed (0 without the lease)."""
        now = now or clock.now()
        if use_lease and not await self.lease.acquire():
            return 0
        await self._recover()
        claimed = await self._deadlines(now)
        await self._activity_reminders(now)
        return claimed

    async def _deadlines(self, now: datetime) -> int:
        """One pass: one scan of the units, due slots computed in memory, claims inserted in chunks.

        The due slots already claimed are read in one indexed query and skipped; every other one is inserted with
        ``insert_many(ordered=False)``: each insert either wins (the claim and its events are one document) or is
        refused with a duplicate key (claimed meanwhile by another replica).
        """
        due = self.calendar.due_notifications(now)
        if not due:
            return 0
        claimed_before = await self._claimed_before(due)
        wanted: list[domain.UnitSlot] = []
        async for doc in self.service.db[UNITS].find({"status": {"$ne": "rejected"}}, UNIT_FIELDS):
            if all(slot_id(n.key(str(doc["_id"]))) in claimed_before for n in due):
                continue  # every due slot of the unit is claimed: nothing to evaluate
            unit = _unit_obligations(doc)
            if unit is None:
                continue
            for slot in domain.slots_for_unit(unit, self.calendar, due, now):
                if slot_id(slot.key) not in claimed_before:
                    wanted.append(slot)
        claimed = 0
        for start in range(0, len(wanted), CLAIM_CHUNK):
            claimed += await self._claim(wanted[start : start + CLAIM_CHUNK], now)
        if claimed:
            log.info("scheduler claimed %d reminder slots", claimed)
        return claimed

    async def _claimed_before(self, due: list[domain.DueNotification]) -> set[str]:
        """The ids of the claims that exist for these due (deadline, slot) pairs: one indexed query."""
        keys = {(n.key("").deadline_id, n.key("").slot) for n in due}
        query = {
            "deadline_id": {"$in": sorted({d for d, _ in keys})},
            "slot": {"$in": sorted({s for _, s in keys})},
        }
        return {str(d["_id"]) async for d in self.service.db[SLOTS].find(query, {"_id": 1})}

    async def _claim(self, slots: list[domain.UnitSlot], now: datetime) -> int:
        """Claim these slots with their events; returns how many this call won.

        One MongoDB transaction inserts the claims (``_id`` = slot key) and one batch document carrying every
        claimed slot's events in its outbox (the relay publishes them once it committed, and clears one document,
        not one per slot): a crash leaves all of it or none. When a claim's ``_id`` is taken — another replica won
        that slot meanwhile — the transaction is aborted, the claims that now exist are read, and the others are
        claimed again.
        """
        pending = list(slots)
        for _ in range(CLAIM_ATTEMPTS):
            if not pending:
                return 0
            try:
                return await in_transaction(
                    self.service.outbox, functools.partial(self._claim_in, slots=pending, now=now)
                )
            except (BulkWriteError, DuplicateKeyError) as exc:
                if not _duplicate(exc):
                    raise
            taken = await self._claimed_ids([slot_id(slot.key) for slot in pending])
            pending = [slot for slot in pending if slot_id(slot.key) not in taken]
        log.warning("scheduler could not claim %d reminder slots; tried again next pass", len(pending))
        return 0

    async def _claim_in(self, tx: Transaction, *, slots: list[domain.UnitSlot], now: datetime) -> int:
        db = self.service.db
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
                "claimed_by": self.lease.holder,
                "batch": batch_id,
            }
            for slot in slots
        ]
        await db[SLOTS].insert_many(claims, ordered=True, session=tx.session)
        events = [e for slot in slots for e in slot_events(slot, now)]
        batch = {"_id": batch_id, "status": STAGED, "created_at": claimed_at, "holder": self.lease.holder}
        await self.service.outbox.insert_one(SLOT_BATCHES, batch, events, tx=tx)
        return len(slots)

    async def _claimed_ids(self, ids: list[str]) -> set[str]:
        return {str(d["_id"]) async for d in self.service.db[SLOTS].find({"_id": {"$in": ids}}, {"_id": 1})}

    async def _stage(self, batch_id: str, events: list[Envelope[Any]]) -> None:
        """Stage the events of a batch left ``claiming`` (the former two-step claim) in its document."""
        if not events:  # every claim refused: nothing to publish, nothing to keep
            await self.service.db[SLOT_BATCHES].delete_one({"_id": batch_id})
            return
        update = {"$set": {"status": STAGED, "staged_at": clock.now()}, "$unset": {"pending": ""}}
        await self.service.outbox.update_one(SLOT_BATCHES, {"_id": batch_id}, update, events)

    async def _recover(self) -> int:
        """Stage the events of batches left ``claiming`` by a crash of the former two-step claim (older than
        ``recover_after_s``), and drop the batches whose events are all published. Returns how many events were
        recovered."""
        col = self.service.db[SLOT_BATCHES]
        cutoff = clock.now() - timedelta(seconds=self.recover_after_s)
        recovered = 0
        async for batch in col.find({"status": CLAIMING}):
            if batch.get("created_at", cutoff) > cutoff:
                continue
            events: list[Envelope[Any]] = []
            for item in batch.get("pending") or []:
                claim = await self.service.db[SLOTS].find_one({"_id": item["slot"]}, {"batch": 1})
                if claim is not None and claim.get("batch") == batch["_id"]:
                    events.extend(parse_envelope(str(raw).encode()) for raw in item["events"])
            await self._stage(batch["_id"], events)
            recovered += len(events)
            log.warning("scheduler recovered %d reminder events of an interrupted pass", len(events))
        await col.delete_many({"status": STAGED, OUTBOX_N: {"$lte": 0}})
        return recovered

    async def _activity_reminders(self, now: datetime) -> int:
        """Inbox reminders to signed-up volunteers from ``reminder_hour`` the day before until the activity starts."""
        col = self.service.db[ACTIVITIES]
        sent = 0
        async for doc in col.find({"status": "published", "starts_at": {"$gt": now}}):
            starts_at = doc.get("starts_at")
            if not isinstance(starts_at, datetime) or not (
                day_before(starts_at, self.settings.reminder_hour) <= now < starts_at
            ):
                continue
            reminded = doc.get("reminded") or {}
            wanted = [v for v, s in (doc.get("signups") or {}).items() if s in REMINDED_STATUSES and v not in reminded]
            if not wanted:
                continue
            unit = await self.service.db[UNITS].find_one({"_id": doc.get("unit_id")}, {"name": 1}) or {}
            names = await self.notices.volunteer_names(wanted)
            for volunteer_id in wanted:
                await self.notices.notify(
                    None,
                    recipient=volunteer_recipient(volunteer_id),
                    unit_id=doc.get("unit_id"),
                    address=None,
                    template=templates.ACTIVITY_REMINDER,
                    values={
                        "volunteer_name": names.get(volunteer_id, "志愿者"),
                        "activity_title": doc.get("title", ""),
                        "starts_at": starts_at,
                        "location": doc.get("county") or LOCATION_FALLBACK,
                        "unit_name": unit.get("name") or doc.get("unit_id") or "",
                    },
                    event_id=f"activity-reminder:{doc['_id']}",
                    event_type="activity_reminder",
                    activity_id=doc["_id"],
                )
                sent += 1
            await col.update_one({"_id": doc["_id"]}, {"$set": {f"reminded.{v}": now for v in wanted}})
        return sent

    async def loop(self) -> None:
        """The background task: evaluate every interval; errors are logged and the next pass retries."""
        try:
            while True:
                try:
                    await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if stop_requested():
                        raise asyncio.CancelledError from None
                    log.warning("scheduler pass failed; retrying next interval", exc_info=True)
                if stop_requested():
                    raise asyncio.CancelledError
                await asyncio.sleep(self.settings.scheduler_interval_s)
        finally:
            try:
                await self.lease.release()
            except Exception:
                log.debug("lease not released", exc_info=True)


def _duplicate(exc: BulkWriteError | DuplicateKeyError) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    return any(e.get("code") == DUPLICATE_KEY for e in exc.details.get("writeErrors", []))


def _unit_obligations(doc: dict[str, Any]) -> domain.UnitObligations | None:
    try:
        return unit_obligations(doc)
    except (ValueError, TypeError, KeyError):
        log.warning("unit %s has unreadable obligation facts; skipped", doc.get("_id"))
        return None
