"""Events become notices: a unit's obligation facts, the deadline notices (e-mail to the unit, the province office's
digest of who missed a deadline), volunteers' inbox notices, and the webhook fan-out.

Nothing here sends: notices are logged (and e-mail and webhooks queued) once, by id, through the storage port; the
delivery worker sends them. Every write is atomic and conditional, so any number of replicas may handle events of
the same unit at once, and a redelivered event changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from services.notifier.domain import Fact, UnitObligations, templates
from services.notifier.domain.notices import (
    DELIVERED,
    EMAIL,
    FAILED,
    PENDING,
    PROVINCE,
    VOLUNTEER_FALLBACK_NAME,
    WEBHOOK,
    channel_for,
    notification_id,
    subscription_recipient,
    unit_recipient,
    volunteer_recipient,
)
from services.notifier.settings import NotifierSettings
from shared import clock
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope

from .ports import Digest, Doc, NoticeStore, UnitCopy, Units

log = logging.getLogger("stvs.notifier.notices")


class Obligations:
    """Folds unit, report and activity facts into the units' copies (the earliest time of each fact wins)."""

    def __init__(self, store: Units) -> None:
        self.store = store

    async def record(self, unit_id: str, fact: Fact | None, snapshot: ev.UnitSnapshot | None = None) -> None:
        def decide(current: UnitCopy | None) -> UnitCopy | None:
            copy = current or UnitCopy(UnitObligations(unit_id), version=None)
            new = replace(copy, obligations=copy.obligations.apply(fact) if fact is not None else copy.obligations)
            if snapshot is not None and snapshot.version >= (copy.version or 0):
                contact = snapshot.contact.model_dump() if snapshot.contact else None
                new = replace(
                    new,
                    name=snapshot.name,
                    status=snapshot.status,
                    kind=snapshot.kind,
                    version=snapshot.version,
                    contact=contact,
                )
            return new if current is None or new != current else None

        await self.store.change_unit(unit_id, decide)


class Notices:
    """Turns deadline and activity events into logged (and, for e-mail, queued) notices."""

    def __init__(self, store: NoticeStore, settings: NotifierSettings) -> None:
        self.store = store
        self.settings = settings

    def action(self, deadline_id: str, fallback: str) -> str:
        try:
            return self.settings.calendar().deadline(deadline_id).action_zh
        except KeyError:
            return fallback

    async def unit_name(self, unit_id: str | None) -> str | None:
        copy = await self.store.unit(unit_id) if unit_id else None
        return copy.name if copy is not None else None

    async def deadline_approaching(self, env: Envelope[Any], data: ev.DeadlineApproaching) -> None:
        """An e-mail to the unit's contact (an inbox notice when it gave no address)."""
        unit = await self.store.unit(data.unit_id)
        contact = (unit.contact if unit is not None else None) or {}
        values = {
            "unit_name": (unit.name if unit is not None else None) or data.unit_id,
            "deadline_title": data.title,
            "due_at": data.due_at,
            "days_left": data.days_left,
            "action": self.action(data.deadline_id, data.title),
            "platform_url": self.settings.public_url,
        }
        await self.notify(
            env,
            recipient=unit_recipient(data.unit_id),
            unit_id=data.unit_id,
            address=contact.get("email"),
            template=templates.DEADLINE_APPROACHING,
            values=values,
        )

    async def deadline_missed(self, env: Envelope[Any], data: ev.DeadlineMissed) -> None:
        """Adds the unit to the deadline's digest for the province office (one mail lists every unit that missed
        it; :meth:`flush_digests` sends it once the scheduler's pass has settled). A unit is listed once per
        deadline, however many of its obligations or redelivered events say so."""
        name = await self.unit_name(data.unit_id) or data.unit_id
        entry = {"name": name, "event_id": env.id, "added_at": clock.now(), "batch": None}
        await self.store.add_to_digest(data.deadline_id, data.unit_id, entry, data.title, data.due_at)

    async def flush_digests(self, now: datetime | None = None) -> int:
        """Send each deadline's pending missed-units digest once no unit was added for the settle time.

        Batch n of a deadline has the notification id ``missed-digest:<deadline>:<n>:province:email``; the units
        it lists are stored with it, so a crash between logging it and marking its units resumes with the same
        units and never sends a second mail."""
        now = now or clock.now()
        settle = timedelta(seconds=self.settings.missed_digest_settle_s)
        sent = 0
        for digest in await self.store.digests():
            pending = sorted(u for u, v in digest.units.items() if v.get("batch") is None)
            if not pending or (digest.last_added_at or now) > now - settle:
                continue
            await self._flush(digest, pending)
            sent += 1
        return sent

    async def _flush(self, digest: Digest, pending: list[str]) -> None:
        batch = int(digest.batches or 0) + 1
        event_id = f"missed-digest:{digest.deadline_id}:{batch}"
        address = self.settings.province_office_email
        logged = await self.store.logged_units(notification_id(event_id, PROVINCE, channel_for(address)))
        listed = logged if logged is not None else pending
        await self.notify(
            None,
            recipient=PROVINCE,
            unit_id=None,
            address=address,
            template=templates.DEADLINE_MISSED,
            values={
                "deadline_title": digest.title,
                "due_at": digest.due_at,
                "units": [digest.units[u]["name"] for u in listed if u in digest.units],
            },
            event_id=event_id,
            event_type=ev.DeadlineMissed.event_type,
            unit_ids=listed,
            deadline_id=digest.deadline_id,
        )
        # Conditional on the batch count read: a replica that flushed the same batch meanwhile marked them.
        await self.store.mark_digest(digest, listed, batch)

    async def activity_cancelled(self, env: Envelope[Any], data: ev.ActivityCancelled) -> None:
        """An inbox notice to every volunteer who had signed up."""
        await self.store.update_activity(data.activity_id, {"status": "cancelled"})
        unit_name = await self.unit_name(data.unit_id) or data.unit_id
        names = await self.store.volunteer_names(data.signed_up_volunteer_ids)
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
                    "unit_name": unit_name,
                    "reason": data.reason,
                },
                activity_id=data.activity_id,
            )

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
        """Render and log one notice: e-mail (queued) when there is an address, else an inbox notice.

        ``rendered`` (subject, body) replaces the template for notices that have none in ``templates``.

        A rendering error (a missing value) is logged as a failed notification with the reason: visible, no crash.
        """
        event_id = event_id or (env.id if env is not None else "")
        channel = channel_for(address)
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
            return await self.store.log_notice(doc, queue=False)
        doc.update(subject=subject, body=body)
        if channel == EMAIL:
            doc.update(outcome=PENDING, next_attempt_at=clock.now())
            return await self.store.log_notice(doc, queue=True)
        doc.update(outcome=DELIVERED, sent_at=clock.now())
        return await self.store.log_notice(doc, queue=False)


class FanOut:
    """Every event to the webhook subscribers that asked for its type."""

    def __init__(self, store: NoticeStore, seq: Callable[[], int]) -> None:
        self.store = store
        self.seq = seq  # () -> int: the order deliveries were logged in

    async def deliver(self, env: Envelope[Any]) -> int:
        """Log and queue one delivery per subscriber that wants this type: two writes for all of them.

        A paused subscriber's delivery is queued too: the worker sets it aside for the subscriber's resumption."""
        subs = await self.store.subscribers(env.type)
        if not subs:
            return 0
        payload = env.dump_json()
        unit_id = getattr(env.data, "unit_id", None)
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
                    "unit_id": unit_id if isinstance(unit_id, str) else None,
                    "channel": WEBHOOK,
                    "payload": payload,
                    "outcome": PENDING,
                    "next_attempt_at": now,
                }
            )
            entry = {"_id": note_id, "channel": WEBHOOK, "subscription_id": sub["_id"], "seq": self.seq()}
            entries.append({**entry, "next_attempt_at": now, "created_at": now})
        return await self.store.log_webhooks(docs, entries)
