"""The deadline scheduler: claims every due reminder slot exactly once and publishes its event.

Every interval, under a lease (one replica scans at a time), the calendar's due slots are evaluated against every
unit (:func:`domain.slots_for_unit`). A slot is claimed by INSERTING a document whose ``_id`` is the slot key and
which carries the slot's events in its outbox: the claim and the event are one write. A second replica (after a
lease hand-over) or a restart gets ``DuplicateKeyError`` and skips, so each (deadline, unit, slot) is published once.
Catch-up after downtime falls out of the domain: only the latest due slot of each deadline is due.

The same pass reminds volunteers the day before their activity (an inbox notice; idempotent by id).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from shared.contracts import events as ev
from shared.contracts.envelope import Envelope
from shared.lease import Lease
from shared.service import Service
from shared.storage import doc_locks, utcnow

from . import domain, templates
from .consumers import Notices, day_before, volunteer_recipient
from .settings import NotifierSettings
from .store import ACTIVITIES, SLOTS, SOURCE, UNITS, slot_id, stop_requested, unit_obligations

log = logging.getLogger("stvs.notifier.scheduler")

REMINDED_STATUSES = ("confirmed", "pending_approval")  # waitlisted volunteers are not asked to come
LOCATION_FALLBACK = "详见平台活动页面"


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
        self._claimed: set[str] = set()  # slots this process knows are claimed (spares a failing insert per run)

    async def run_once(self, now: datetime | None = None, *, use_lease: bool = True) -> int:
        """Evaluate the calendar at ``now``; returns how many slots this call claimed (0 without the lease)."""
        now = now or utcnow()
        if use_lease and not await self.lease.acquire():
            return 0
        claimed = await self._deadlines(now)
        await self._activity_reminders(now)
        return claimed

    async def _deadlines(self, now: datetime) -> int:
        due = self.calendar.due_notifications(now)
        if not due:
            return 0
        claimed = 0
        async for doc in self.service.db[UNITS].find({}):
            if doc.get("status") == "rejected":
                continue
            unit = _unit_obligations(doc)
            if unit is None:
                continue
            for slot in domain.slots_for_unit(unit, self.calendar, due, now):
                key = slot_id(slot.key)
                if key in self._claimed:
                    continue
                claim = {
                    "_id": key,
                    "deadline_id": slot.key.deadline_id,
                    "unit_id": slot.key.unit_id,
                    "slot": slot.key.slot,
                    "obligations": [k.value for k in slot.obligations],
                    "evaluated_at": now,
                    "claimed_at": utcnow(),
                    "claimed_by": self.lease.holder,
                }
                try:
                    await self.service.outbox.insert_one(SLOTS, claim, slot_events(slot, now))
                    claimed += 1
                except DuplicateKeyError:
                    pass
                self._claimed.add(key)
        if claimed:
            log.info("scheduler claimed %d reminder slots", claimed)
        return claimed

    async def _activity_reminders(self, now: datetime) -> int:
        """Inbox reminders to signed-up volunteers from ``reminder_hour`` the day before until the activity starts."""
        col = self.service.db[ACTIVITIES]
        sent = 0
        async for doc in col.find({"status": "published"}):
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
            async with doc_locks.hold(col, doc["_id"]):
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


def _unit_obligations(doc: dict[str, Any]) -> domain.UnitObligations | None:
    try:
        return unit_obligations(doc)
    except (ValueError, TypeError, KeyError):
        log.warning("unit %s has unreadable obligation facts; skipped", doc.get("_id"))
        return None
