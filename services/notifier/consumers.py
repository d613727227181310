"""Event handlers of the notifier.

- ``obligations`` (UNITS, ACTIVITIES, REPORTS): keeps each unit's contact and the facts that open and close its
  obligations. The fold keeps the earliest time of every fact, so a duplicate or out-of-order event changes nothing.
- ``delivery`` (DEADLINES, ACTIVITIES, VOLUNTEERS): decides who hears what and logs it (``notifications``), queueing
  e-mail for the delivery worker; volunteers' notices go to their in-platform inbox (events carry no volunteer
  e-mail: privacy). Keeps the activity and volunteer copies the reminders need.
- ``webhooks`` (every stream): fans an event out to the subscribers that asked for its type.

Handlers never send: they only log and queue (one ``_id``-keyed insert each), so a slow SMTP server or subscriber
never holds up a partition. Every write is atomic and conditional (no lock of this process): the consumer group's
members — any number of replicas — may handle events of the same document at once. Notification ids are
``<event id>:<recipient>:<channel>``: a redelivered event finds them and sends nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared import clock
from shared.calendar import SHANGHAI, to_shanghai
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope
from shared.service import Service
from shared.storage import Doc

from . import domain, templates
from .settings import NotifierSettings
from .store import (
    ACTIVITIES,
    DELIVERED,
    DIGESTS,
    EMAIL,
    FAILED,
    INBOX,
    NOTIFICATIONS,
    PENDING,
    SUBSCRIPTIONS,
    UNITS,
    VOLUNTEERS,
    WEBHOOK,
    change,
    log_notification,
    log_webhooks,
    next_seq,
    notification_id,
    obligation_fields,
    unit_obligations,
    upsert,
)

log = logging.getLogger("stvs.notifier.consumers")

PROVINCE = "province"
VOLUNTEER_FALLBACK_NAME = "志愿者"


def unit_recipient(unit_id: str) -> str:
    return f"unit:{unit_id}"


def volunteer_recipient(volunteer_id: str) -> str:
    return f"volunteer:{volunteer_id}"


def subscription_recipient(subscription_id: str) -> str:
    return f"subscription:{subscription_id}"


# ---------------------------------------------------------------- obligations


class Obligations:
    """Applies unit, activity and report events to the units' obligation facts."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.col = db[UNITS]

    async def apply(self, unit_id: str, fact: domain.Fact | None, snapshot: ev.UnitSnapshot | None = None) -> None:
        def decide(existing: Doc | None) -> Doc | None:
            doc = existing or {"_id": unit_id}
            state = unit_obligations(doc)
            if fact is not None:
                state = state.apply(fact)
            fields = obligation_fields(state)
            if snapshot is not None and snapshot.version >= int(doc.get("version", 0)):
                fields.update(
                    name=snapshot.name,
                    status=snapshot.status,
                    kind=snapshot.kind,
                    version=snapshot.version,
                    contact=snapshot.contact.model_dump() if snapshot.contact else None,
                )
            if existing is None or any(doc.get(k) != v for k, v in fields.items()):
                return fields
            return None

        await change(self.col, unit_id, decide)

    async def on_unit(self, env: Envelope[Any]) -> None:
        data: ev.UnitSnapshot = env.data
        # A contact given at registration counts from then; one added later (UnitUpdated) only from the update.
        given = isinstance(data, ev.UnitRegistered) and data.contact is not None
        await self.apply(data.unit_id, domain.UnitRegistered(data.unit_id, data.registered_at, given), data)
        if isinstance(data, ev.UnitUpdated) and data.contact is not None:
            await self.apply(data.unit_id, domain.ContactPersonGiven(data.unit_id, env.time))

    async def on_action_plan(self, env: Envelope[Any]) -> None:
        data: ev.ActionPlanSubmitted = env.data
        await self.apply(data.unit_id, domain.ActionPlanSubmitted(data.unit_id, data.year, data.submitted_at))

    async def on_monthly_report(self, env: Envelope[Any]) -> None:
        data: ev.MonthlyReportSubmitted = env.data
        await self.apply(data.unit_id, domain.MonthlyReportSubmitted(data.unit_id, data.month, data.submitted_at))

    async def on_activity_completed(self, env: Envelope[Any]) -> None:
        data: ev.ActivityCompleted = env.data
        await self.apply(data.unit_id, domain.ActivityCompleted(data.unit_id, data.starts_at))


# ---------------------------------------------------------------- notices (e-mail, inbox)


class Notices:
    """Turns deadline and activity events into logged (and, for e-mail, queued) notifications."""

    def __init__(self, db: AsyncDatabase[Doc], settings: NotifierSettings) -> None:
        self.db = db
        self.settings = settings

    # -- deadlines
    def _action(self, deadline_id: str, fallback: str) -> str:
        try:
            return self.settings.calendar().deadline(deadline_id).action_zh
        except KeyError:
            return fallback

    async def on_deadline_approaching(self, env: Envelope[Any]) -> None:
        data: ev.DeadlineApproaching = env.data
        unit = await self.db[UNITS].find_one({"_id": data.unit_id}) or {}
        contact = unit.get("contact") or {}
        values = {
            "unit_name": unit.get("name") or data.unit_id,
            "deadline_title": data.title,
            "due_at": data.due_at,
            "days_left": data.days_left,
            "action": self._action(data.deadline_id, data.title),
        }
        await self.notify(
            env,
            recipient=unit_recipient(data.unit_id),
            unit_id=data.unit_id,
            address=contact.get("email"),
            template=templates.DEADLINE_APPROACHING,
            values=values,
        )

    async def on_deadline_missed(self, env: Envelope[Any]) -> None:
        """Adds the unit to the deadline's digest for the province office (one mail lists every unit that missed
        it; :meth:`flush_digests` sends it once the scheduler's pass has settled). A unit is listed once per
        deadline, however many of its obligations or redelivered events say so."""
        data: ev.DeadlineMissed = env.data
        unit = await self.db[UNITS].find_one({"_id": data.unit_id}, {"name": 1}) or {}
        entry = {"name": unit.get("name") or data.unit_id, "event_id": env.id, "added_at": clock.now(), "batch": None}
        fields = {f"units.{data.unit_id}": entry, "title": data.title, "due_at": data.due_at}
        # Listed once: the filter refuses a digest that lists the unit already (the upsert's insert then collides).
        await upsert(
            self.db[DIGESTS],
            {"_id": data.deadline_id, f"units.{data.unit_id}": {"$exists": False}},
            {"$set": {**fields, "last_added_at": clock.now()}},
        )

    async def flush_digests(self, now: datetime | None = None) -> int:
        """Send each deadline's pending missed-units digest once no unit was added for the settle time.

        Batch n of a deadline has the notification id ``missed-digest:<deadline>:<n>:province:email``; the units
        it lists are stored with it, so a crash between logging it and marking its units resumes with the same
        units and never sends a second mail."""
        now = now or clock.now()
        settle = timedelta(seconds=self.settings.missed_digest_settle_s)
        col = self.db[DIGESTS]
        sent = 0
        async for doc in col.find({}):
            units: dict[str, Any] = doc.get("units") or {}
            pending = sorted(u for u, v in units.items() if v.get("batch") is None)
            if not pending or doc.get("last_added_at", now) > now - settle:
                continue
            batch = int(doc.get("batches", 0)) + 1
            event_id = f"missed-digest:{doc['_id']}:{batch}"
            address = self.settings.province_office_email
            logged = await self.db[NOTIFICATIONS].find_one(
                {"_id": notification_id(event_id, PROVINCE, EMAIL if address else INBOX)}, {"unit_ids": 1}
            )
            listed = list(logged["unit_ids"]) if logged is not None else pending
            await self.notify(
                None,
                recipient=PROVINCE,
                unit_id=None,
                address=address,
                template=templates.DEADLINE_MISSED,
                values={
                    "deadline_title": doc.get("title", doc["_id"]),
                    "due_at": doc["due_at"],
                    "units": [units[u]["name"] for u in listed if u in units],
                },
                event_id=event_id,
                event_type=ev.DeadlineMissed.event_type,
                unit_ids=listed,
                deadline_id=doc["_id"],
            )
            # Conditional on the batch count read: a replica that flushed the same batch meanwhile marked them.
            marks: dict[str, Any] = {f"units.{u}.batch": batch for u in listed}
            flushed = {"_id": doc["_id"], "batches": doc.get("batches")}
            await col.update_one(flushed, {"$set": {**marks, "batches": batch}})
            sent += 1
        return sent

    # -- activities (copies for volunteers' notices)
    async def on_activity_published(self, env: Envelope[Any]) -> None:
        data: ev.ActivityPublished = env.data
        fields = {
            "unit_id": data.unit_id,
            "title": data.title,
            "starts_at": data.starts_at,
            "county": data.county,
        }
        # One write, so a reader never sees the copy without its status. A copy of the publication delivered again
        # after the completion or the cancellation (a redelivery, a replay) must not bring the activity back: the
        # status only moves forward, so a finished copy matches nothing, its insert collides, and only the fields
        # are set.
        try:
            await self.db[ACTIVITIES].update_one(
                {"_id": data.activity_id, "status": {"$nin": ["completed", "cancelled"]}},
                {"$set": {**fields, "status": "published"}},
                upsert=True,
            )
        except DuplicateKeyError:
            await self._update_activity(data.activity_id, {"$set": fields})

    async def on_signed_up(self, env: Envelope[Any]) -> None:
        data: ev.VolunteerSignedUp = env.data
        await self._update_activity(data.activity_id, {"$set": {f"signups.{data.volunteer_id}": data.status}})

    async def on_signup_confirmed(self, env: Envelope[Any]) -> None:
        data: ev.SignUpConfirmed = env.data
        await self._update_activity(data.activity_id, {"$set": {f"signups.{data.volunteer_id}": "confirmed"}})

    async def on_signup_cancelled(self, env: Envelope[Any]) -> None:
        data: ev.SignUpCancelled = env.data
        await self._update_activity(data.activity_id, {"$set": {f"signups.{data.volunteer_id}": "cancelled"}})

    async def on_activity_completed(self, env: Envelope[Any]) -> None:
        data: ev.ActivityCompleted = env.data
        await self._update_activity(data.activity_id, {"$set": {"status": "completed"}})

    async def on_activity_cancelled(self, env: Envelope[Any]) -> None:
        data: ev.ActivityCancelled = env.data
        await self._update_activity(data.activity_id, {"$set": {"status": "cancelled"}})
        unit = await self.db[UNITS].find_one({"_id": data.unit_id}, {"name": 1}) or {}
        names = await self.volunteer_names(data.signed_up_volunteer_ids)
        for volunteer_id in data.signed_up_volunteer_ids:
            await self.notify(
                env,
                recipient=volunteer_recipient(volunteer_id),
                unit_id=data.unit_id,
                address=None,
                template=templates.ACTIVITY_CANCELLED,
                values={
                    "volunteer_name": names.get(volunteer_id, VOLUNTEER_FALLBACK_NAME),
                    "activity_title": data.title,
                    "starts_at": data.starts_at,
                    "unit_name": unit.get("name") or data.unit_id,
                    "reason": data.reason,
                },
                activity_id=data.activity_id,
            )

    async def _update_activity(self, activity_id: str, update: Mapping[str, Any]) -> None:
        col = self.db[ACTIVITIES]
        for _ in range(3):  # two upserts of a new document at once: one inserts, the other's insert collides
            try:
                await col.update_one({"_id": activity_id}, dict(update), upsert=True)
                return
            except DuplicateKeyError:
                continue

    # -- volunteers
    async def on_volunteer(self, env: Envelope[Any]) -> None:
        data: ev.VolunteerSnapshot = env.data
        fields = {"display_name": data.display_name, "version": data.version}
        # Newest version wins: an older (or redelivered) snapshot matches nothing and its insert collides.
        newer_or_none = {"$or": [{"version": {"$lte": data.version}}, {"version": {"$exists": False}}]}
        await upsert(self.db[VOLUNTEERS], {"_id": data.volunteer_id, **newer_or_none}, {"$set": fields})

    async def volunteer_names(self, volunteer_ids: list[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        async for doc in self.db[VOLUNTEERS].find({"_id": {"$in": list(volunteer_ids)}}, {"display_name": 1}):
            if doc.get("display_name"):
                names[str(doc["_id"])] = str(doc["display_name"])
        return names

    # -- one notification
    async def notify(
        self,
        env: Envelope[Any] | None,
        *,
        recipient: str,
        unit_id: str | None,
        address: str | None,
        template: str,
        values: Mapping[str, Any] | None = None,
        rendered: tuple[str, str] | None = None,
        event_id: str | None = None,
        event_type: str | None = None,
        **extra: Any,
    ) -> bool:
        """Render and log one notification: e-mail (queued) when there is an address, else an inbox notice.

        ``rendered`` (subject, body) replaces the template for notices that have none in ``templates``.

        A rendering error (a missing value) is logged as a failed notification with the reason: visible, no crash.
        """
        event_id = event_id or (env.id if env is not None else "")
        channel = EMAIL if address else INBOX
        doc: Doc = {
            "_id": notification_id(event_id, recipient, channel),
            "event_id": event_id,
            "event_type": event_type or (env.type if env is not None else None),
            "kind": template,
            "recipient": recipient,
            "address": address,
            "unit_id": unit_id,
            "channel": channel,
            **extra,
        }
        try:
            subject, body = rendered or templates.render(template, **(values or {}))
        except Exception as exc:
            log.error("notification %s not rendered: %s", doc["_id"], exc)
            doc.update(subject=None, body=None, outcome=FAILED, last_error=f"模板渲染失败：{exc}")
            return await log_notification(self.db, doc, queue=False)
        doc.update(subject=subject, body=body)
        if channel == EMAIL:
            doc.update(outcome=PENDING, next_attempt_at=clock.now())
            return await log_notification(self.db, doc, queue=True)
        doc.update(outcome=DELIVERED, sent_at=clock.now())
        return await log_notification(self.db, doc, queue=False)


# ---------------------------------------------------------------- webhooks fan-out


class SubscriptionCache:
    """The subscribers of an event type: read for every event by default (an indexed query on ``event_types``), so
    a subscription created, paused or deleted through any replica counts at once on every replica. With
    ``ttl_s`` > 0 the whole list is kept that long in this process instead (a replica then learns of another's
    change only when it re-reads)."""

    def __init__(self, db: AsyncDatabase[Doc], ttl_s: float) -> None:
        self.col = db[SUBSCRIPTIONS]
        self.ttl_s = ttl_s
        self._docs: list[Doc] = []
        self._at = float("-inf")

    def invalidate(self) -> None:
        self._at = float("-inf")

    async def all(self) -> list[Doc]:
        if time.monotonic() - self._at >= self.ttl_s:
            self._docs = [d async for d in self.col.find({})]
            self._at = time.monotonic()
        return self._docs

    async def wanting(self, event_type: str) -> list[Doc]:
        if self.ttl_s <= 0:
            return [d async for d in self.col.find({"event_types": event_type})]
        return [d for d in await self.all() if event_type in d.get("event_types", ())]


class FanOut:
    def __init__(self, db: AsyncDatabase[Doc], subscriptions: SubscriptionCache) -> None:
        self.db = db
        self.subscriptions = subscriptions

    async def on_event(self, env: Envelope[Any]) -> None:
        """Log and queue one delivery per subscriber that wants this type: two writes for all of them.

        A paused subscriber's delivery is queued too: the worker sets it aside for the subscriber's resumption."""
        subs = await self.subscriptions.wanting(env.type)
        if not subs:
            return
        payload = env.dump_json()
        unit_id = _unit_of(env)
        now = clock.now()
        docs: list[Doc] = []
        entries: list[Doc] = []
        for sub in subs:
            recipient = subscription_recipient(str(sub["_id"]))
            note_id = notification_id(env.id, recipient, WEBHOOK)
            docs.append(
                {
                    "_id": note_id,
                    "event_id": env.id,
                    "event_type": env.type,
                    "kind": "webhook",
                    "recipient": recipient,
                    "subscription_id": sub["_id"],
                    "address": sub.get("url"),
                    "unit_id": unit_id,
                    "channel": WEBHOOK,
                    "payload": payload,
                    "outcome": PENDING,
                    "next_attempt_at": now,
                }
            )
            entries.append(
                {
                    "_id": note_id,
                    "channel": WEBHOOK,
                    "subscription_id": sub["_id"],
                    "seq": next_seq(),
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
        await log_webhooks(self.db, docs, entries)


def _unit_of(env: Envelope[Any]) -> str | None:
    unit_id = getattr(env.data, "unit_id", None)
    return unit_id if isinstance(unit_id, str) else None


# ---------------------------------------------------------------- wiring


def register(service: Service, settings: NotifierSettings, subscriptions: SubscriptionCache) -> None:
    obligations = Obligations(service.db)
    c = service.consumer("obligations", [ev.UNITS, ev.ACTIVITIES, ev.REPORTS])
    c.on(ev.UnitRegistered, ev.UnitUpdated)(obligations.on_unit)
    c.on(ev.ActionPlanSubmitted)(obligations.on_action_plan)
    c.on(ev.MonthlyReportSubmitted)(obligations.on_monthly_report)
    c.on(ev.ActivityCompleted)(obligations.on_activity_completed)

    notices = Notices(service.db, settings)
    d = service.consumer("delivery", [ev.DEADLINES, ev.ACTIVITIES, ev.VOLUNTEERS])
    d.on(ev.DeadlineApproaching)(notices.on_deadline_approaching)
    d.on(ev.DeadlineMissed)(notices.on_deadline_missed)
    d.on(ev.ActivityPublished)(notices.on_activity_published)
    d.on(ev.VolunteerSignedUp)(notices.on_signed_up)
    d.on(ev.SignUpConfirmed)(notices.on_signup_confirmed)
    d.on(ev.SignUpCancelled)(notices.on_signup_cancelled)
    d.on(ev.ActivityCompleted)(notices.on_activity_completed)
    d.on(ev.ActivityCancelled)(notices.on_activity_cancelled)
    d.on(ev.VolunteerRegistered, ev.VolunteerUpdated)(notices.on_volunteer)

    fan_out = FanOut(service.db, subscriptions)
    w = service.consumer("webhooks", list(ev.STREAMS))
    w.on(*ev.EVENT_TYPES.values())(fan_out.on_event)


def day_before(starts_at: datetime, hour: int) -> datetime:
    """When a volunteer hears about tomorrow's activity: ``hour``:00 Shanghai the day before it starts."""
    day = to_shanghai(starts_at).date() - timedelta(days=1)
    return datetime.combine(day, datetime.min.time().replace(hour=hour), tzinfo=SHANGHAI)
