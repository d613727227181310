"""Reminders: claim every due reminder slot exactly once and publish its event; remind volunteers the day before.

Every interval, under a lease (one replica scans at a time), the calendar's due slots are evaluated against every
unit (:func:`domain.slots_for_unit`) in memory, from one scan of the units. The claims already made for the due
(deadline, slot) pairs are read first, so a pass tries only the new ones; a chunk of claims and their events is
one atomic write of the storage port, refused as a whole (:class:`SlotTaken`) when another replica claimed one of
its slots meanwhile — those are dropped and the rest claimed again. So each (deadline, unit, slot) is published
once. Catch-up after downtime falls out of the domain: only the latest due slot of each deadline is due.

The same pass reminds volunteers the day before their activity (an inbox notice; idempotent by id), and units whose
returned report is still not submitted again (``reviews``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.notifier import domain
from services.notifier.domain import templates
from services.notifier.domain.notices import slot_id, volunteer_recipient
from services.notifier.settings import NotifierSettings
from shared import clock
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope

from .notices import Notices
from .ports import ActivityCopy, Lease, ReminderStore, SlotTaken
from .reviews import Reviews
from .running import stop_requested

log = logging.getLogger("stvs.notifier.scheduler")

SOURCE = "/stvs/notifier"
REMINDED_STATUSES = ("confirmed", "pending_approval")  # waitlisted volunteers are not asked to come
LOCATION_FALLBACK = "详见平台活动页面"
CLAIM_CHUNK = 1_500  # claims per atomic write (and per batch document: well under 16 MB of events)
CLAIM_ATTEMPTS = 5


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
    def __init__(self, store: ReminderStore, settings: NotifierSettings, notices: Notices, lease: Lease) -> None:
        self.store = store
        self.settings = settings
        self.notices = notices
        self.calendar = settings.calendar()
        self.lease = lease
        self.reviews = Reviews(notices)

    async def run_once(self, now: datetime | None = None, *, use_lease: bool = True) -> int:
        """Evaluate the calendar at ``now``; returns how many slots this call claimed (0 without the lease)."""
        now = now or clock.now()
        if use_lease and not await self.lease.acquire():
            return 0
        await self.store.recover()
        claimed = await self.deadlines(now)
        await self.activity_reminders(now)
        await self.reviews.remind(now)
        return claimed

    async def deadlines(self, now: datetime) -> int:
        """One pass: the due slots not yet claimed, computed in memory from one scan of the units, claimed in
        chunks."""
        due = self.calendar.due_notifications(now)
        if not due:
            return 0
        claimed_before = await self.store.claimed(due)

        def all_claimed(unit_id: str) -> bool:  # every due slot of the unit is claimed: nothing to evaluate
            return all(slot_id(n.key(unit_id)) in claimed_before for n in due)

        wanted: list[domain.UnitSlot] = []
        async for unit in self.store.units(skip=all_claimed):
            for slot in domain.slots_for_unit(unit, self.calendar, due, now):
                if slot_id(slot.key) not in claimed_before:
                    wanted.append(slot)
        claimed = 0
        for start in range(0, len(wanted), CLAIM_CHUNK):
            claimed += await self.claim(wanted[start : start + CLAIM_CHUNK], now)
        if claimed:
            log.info("scheduler claimed %d reminder slots", claimed)
        return claimed

    async def claim(self, slots: Sequence[domain.UnitSlot], now: datetime) -> int:
        """Claim these slots with their events; returns how many this call won. When a slot was taken meanwhile
        (another replica won it), the claims that now exist are read and the others are claimed again."""
        pending = list(slots)
        for _ in range(CLAIM_ATTEMPTS):
            if not pending:
                return 0
            try:
                events = [e for slot in pending for e in slot_events(slot, now)]
                return await self.store.claim(pending, events, now)
            except SlotTaken:
                pass
            taken = await self.store.claimed_ids([slot_id(slot.key) for slot in pending])
            pending = [slot for slot in pending if slot_id(slot.key) not in taken]
        log.warning("scheduler could not claim %d reminder slots; tried again next pass", len(pending))
        return 0

    async def activity_reminders(self, now: datetime) -> int:
        """Inbox reminders to signed-up volunteers from ``reminder_hour`` the day before until the activity starts."""
        sent = 0
        for activity in await self.store.activities_starting(now):
            if not domain.day_before(activity.starts_at, self.settings.reminder_hour) <= now < activity.starts_at:
                continue
            wanted = [v for v, s in activity.signups.items() if s in REMINDED_STATUSES and v not in activity.reminded]
            if wanted:
                sent += await self._remind(activity, wanted)
                await self.store.mark_reminded(activity.activity_id, wanted, now)
        return sent

    async def _remind(self, activity: ActivityCopy, volunteer_ids: list[str]) -> int:
        unit_name = await self.notices.unit_name(activity.unit_id) or activity.unit_id or ""
        names = await self.notices.store.volunteer_names(volunteer_ids)
        for volunteer_id in volunteer_ids:
            await self.notices.notify(
                None,
                recipient=volunteer_recipient(volunteer_id),
                unit_id=activity.unit_id,
                address=None,
                template=templates.ACTIVITY_REMINDER,
                values={
                    "volunteer_name": names.get(volunteer_id, "志愿者"),
                    "activity_title": activity.title,
                    "starts_at": activity.starts_at,
                    "location": activity.county or LOCATION_FALLBACK,
                    "unit_name": unit_name,
                },
                event_id=f"activity-reminder:{activity.activity_id}",
                event_type="activity_reminder",
                activity_id=activity.activity_id,
            )
        return len(volunteer_ids)

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
