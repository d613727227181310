"""An in-memory implementation of the notifier's storage port (``services.notifier.usecases.ports``) and stand-ins
for its senders and lease: the use cases run on it without Kafka or a database. A test double of the PORT, not of
MongoDB: each method keeps the port's promise (a slot claimed once, a final outcome never overwritten, …)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from services.notifier.domain import DueNotification, UnitObligations, UnitSlot
from services.notifier.domain.notices import PAUSED, PENDING, SendError, slot_id
from services.notifier.domain.reviews import ReportReview
from services.notifier.usecases.ports import (
    ActivityCopy,
    Digest,
    Doc,
    NotificationFilter,
    SlotTaken,
    UnitCopy,
)
from shared.contracts.envelope import Envelope
from shared.identity import Identity
from shared.scope import Reach


class MemoryLease:
    def __init__(self, holder: str = "test") -> None:
        self.holder = holder
        self.ttl = timedelta(seconds=30)

    async def acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class MemoryStore:
    """Every port of the notifier at once: units, notices, subscriptions, reminder slots, the delivery queue."""

    def __init__(self) -> None:
        self.units_: dict[str, UnitCopy] = {}
        self.notices: dict[str, Doc] = {}
        self.queue: dict[str, Doc] = {}
        self.parked: dict[str, Doc] = {}
        self.subs: dict[str, Doc] = {}
        self.slots: dict[str, Doc] = {}
        self.staged: list[Envelope[Any]] = []
        self.activities: dict[str, Doc] = {}
        self.volunteers: dict[str, Doc] = {}
        self.digests_: dict[str, Doc] = {}
        self.reviews: dict[str, ReportReview] = {}
        self.changes = 0

    # -- units
    async def change_unit(self, unit_id: str, decide: Callable[[UnitCopy | None], UnitCopy | None]) -> bool:
        found = decide(self.units_.get(unit_id))
        if found is None:
            return False
        self.units_[unit_id] = found
        return True

    async def unit(self, unit_id: str) -> UnitCopy | None:
        return self.units_.get(unit_id)

    # -- notices
    async def log_notice(self, doc: Doc, *, queue: bool) -> bool:
        if doc["_id"] in self.notices:
            return False
        self.notices[doc["_id"]] = {"attempts": 0, "last_error": None, **doc}
        if queue:
            self.queue[doc["_id"]] = {
                "_id": doc["_id"],
                "channel": doc["channel"],
                "next_attempt_at": doc.get("next_attempt_at"),
            }
        return True

    async def log_webhooks(self, docs: list[Doc], entries: list[Doc]) -> int:
        new = [d for d in docs if d["_id"] not in self.notices]
        for doc in new:
            self.notices[doc["_id"]] = {"attempts": 0, "last_error": None, **doc}
        for entry in entries:
            self.queue.setdefault(entry["_id"], dict(entry))
        return len(new)

    async def subscribers(self, event_type: str) -> list[Doc]:
        return [s for s in self.subs.values() if event_type in s.get("event_types", ())]

    def subscriptions_changed(self) -> None:
        self.changes += 1

    async def add_to_digest(self, deadline_id: str, unit_id: str, entry: Doc, title: str, due_at: datetime) -> None:
        digest = self.digests_.setdefault(deadline_id, {"units": {}, "title": title, "due_at": due_at})
        digest["units"].setdefault(unit_id, entry)

    async def digests(self) -> list[Digest]:
        return [
            Digest(k, d["title"], d["due_at"], d["units"], d.get("batches"), d.get("last_added_at"))
            for k, d in self.digests_.items()
        ]

    async def logged_units(self, note_id: str) -> list[str] | None:
        note = self.notices.get(note_id)
        return list(note["unit_ids"]) if note is not None else None

    async def mark_digest(self, digest: Digest, listed: list[str], batch: int) -> None:
        stored = self.digests_[digest.deadline_id]
        for unit_id in listed:
            stored["units"][unit_id]["batch"] = batch
        stored["batches"] = batch

    async def publish_activity(self, activity_id: str, fields: Doc) -> None:
        self.activities.setdefault(activity_id, {}).update(fields, status="published")

    async def update_activity(self, activity_id: str, fields: Doc) -> None:
        self.activities.setdefault(activity_id, {}).update(fields)

    async def save_volunteer(self, volunteer_id: str, display_name: str, version: int) -> None:
        self.volunteers[volunteer_id] = {"display_name": display_name, "version": version}

    async def volunteer_names(self, volunteer_ids: Sequence[str]) -> dict[str, str]:
        return {v: self.volunteers[v]["display_name"] for v in volunteer_ids if v in self.volunteers}

    async def change_review(self, review_id: str, decide: Callable[[ReportReview | None], ReportReview | None]) -> bool:
        found = decide(self.reviews.get(review_id))
        if found is None:
            return False
        self.reviews[review_id] = found
        return True

    async def open_reviews(self) -> list[ReportReview]:
        return [r for r in self.reviews.values() if r.is_open]

    # -- subscriptions
    async def add_subscription(self, doc: Doc) -> None:
        self.subs[doc["_id"]] = dict(doc)

    async def list_subscriptions(self) -> list[Doc]:
        return list(self.subs.values())

    async def delete_subscription(self, sub_id: str) -> bool:
        return self.subs.pop(sub_id, None) is not None

    async def resume_subscription(self, sub_id: str) -> Doc | None:
        sub = self.subs.get(sub_id)
        if sub is not None:
            sub.update(status="active", paused_at=None, failing_since=None, retry_at=None, last_error=None)
        return sub

    async def reach(self, identity: Identity, *, system_reads: bool = False) -> Reach:
        return Reach(identity, None)

    async def notifications(self, where: NotificationFilter, limit: int, offset: int) -> tuple[list[Doc], int]:
        found = [n for n in self.notices.values() if where.recipient in (None, n.get("recipient"))]
        return found[offset : offset + limit], len(found)

    # -- reminder slots
    async def units(self, skip: Callable[[str], bool]) -> AsyncIterator[UnitObligations]:
        for unit_id, unit in list(self.units_.items()):
            if unit.status != "rejected" and not skip(unit_id):
                yield unit.obligations

    async def claimed(self, due: Sequence[DueNotification]) -> set[str]:
        pairs = {(n.deadline.id, n.slot) for n in due}
        return {k for k, v in self.slots.items() if (v["deadline_id"], v["slot"]) in pairs}

    async def claimed_ids(self, slot_ids: Sequence[str]) -> set[str]:
        return {i for i in slot_ids if i in self.slots}

    async def claim(self, slots: Sequence[UnitSlot], events: Sequence[Envelope[Any]], now: datetime) -> int:
        ids = [slot_id(s.key) for s in slots]
        await asyncio.sleep(0)  # another claimer may run in between, as another replica would
        if any(i in self.slots for i in ids):
            raise SlotTaken  # all or nothing, like the transaction
        for slot, i in zip(slots, ids, strict=True):
            self.slots[i] = {"deadline_id": slot.key.deadline_id, "unit_id": slot.key.unit_id, "slot": slot.key.slot}
        self.staged.extend(events)
        return len(slots)

    async def recover(self) -> int:
        return 0

    async def activities_starting(self, now: datetime) -> list[ActivityCopy]:
        return [
            ActivityCopy(
                k,
                a.get("unit_id"),
                a.get("title", ""),
                a["starts_at"],
                a.get("county"),
                a.get("signups") or {},
                a.get("reminded") or {},
            )
            for k, a in self.activities.items()
            if a.get("status") == "published" and a["starts_at"] > now
        ]

    async def mark_reminded(self, activity_id: str, volunteer_ids: Sequence[str], now: datetime) -> None:
        self.activities[activity_id].setdefault("reminded", {}).update(dict.fromkeys(volunteer_ids, now))

    # -- the delivery queue
    async def webhook_lanes(self, now: datetime) -> dict[Any, list[Doc]]:
        lanes: dict[Any, list[Doc]] = {}
        for entry in self.queue.values():
            if entry["channel"] == "webhook" and entry["next_attempt_at"] <= now:
                lanes.setdefault(entry["subscription_id"], []).append(dict(entry))
        return lanes

    async def subscriptions(self, ids: Sequence[Any]) -> dict[Any, Doc]:
        return {i: self.subs[i] for i in ids if i in self.subs}

    async def subscription(self, sub_id: Any) -> Doc | None:
        return self.subs.get(sub_id)

    async def mail_candidates(self, now: datetime, limit: int) -> list[Any]:
        due = [e for e in self.queue.values() if e["channel"] == "email" and e["next_attempt_at"] <= now]
        return [e["_id"] for e in sorted(due, key=lambda e: e["next_attempt_at"])][:limit]

    async def claim_entry(self, entry_id: Any, now: datetime, claimer: str, until: datetime) -> bool:
        entry = self.queue.get(entry_id)
        if entry is None or entry["next_attempt_at"] > now or entry.get("claimed_by") is not None:
            return False
        entry["claimed_by"] = claimer
        return True

    async def unclaim_entry(self, entry_id: Any, claimer: str) -> None:
        if entry_id in self.queue and self.queue[entry_id].get("claimed_by") == claimer:
            self.queue[entry_id]["claimed_by"] = None

    async def notification(self, note_id: Any) -> Doc | None:
        note = self.notices.get(note_id)
        return copy.deepcopy(note) if note is not None else None

    async def notices_by_id(self, ids: Sequence[Any]) -> dict[Any, Doc]:
        return {i: copy.deepcopy(self.notices[i]) for i in ids if i in self.notices}

    async def dequeue(self, ids: Sequence[Any]) -> None:
        for i in ids:
            self.queue.pop(i, None)

    async def finish(self, note_id: Any, fields: Doc) -> None:
        note = self.notices.get(note_id)
        if note is not None and note["outcome"] in (PENDING, PAUSED):
            note.update(fields)

    async def count_attempt(self, note_id: Any, attempts: int, error: str) -> None:
        note = self.notices.get(note_id)
        if note is not None and note["outcome"] == PENDING:
            note.update(attempts=attempts, last_error=error)

    async def retry(self, note_id: Any, attempts: int, error: str, at: datetime) -> None:
        await self.count_attempt(note_id, attempts, error)
        if note_id in self.notices:
            self.notices[note_id]["next_attempt_at"] = at
        if note_id in self.queue:
            self.queue[note_id].update(next_attempt_at=at, claimed_by=None)

    async def update_subscription(self, sub_id: Any, fields: Doc) -> None:
        if sub_id in self.subs:
            self.subs[sub_id].update(fields)

    async def pause_subscription(self, sub_id: Any, fields: Doc) -> bool:
        sub = self.subs.get(sub_id)
        if sub is None or sub.get("status") != "active":
            return False
        sub.update(fields)
        return True

    async def park(self, entries: list[Doc], reason: str) -> int:
        for entry in entries:
            self.parked[entry["_id"]] = entry
            await self.finish(entry["_id"], {"outcome": PAUSED, "last_error": reason})
            self.queue.pop(entry["_id"], None)
        return len(entries)

    async def unpark(self, sub_id: Any) -> int:
        back = [e for e in self.parked.values() if e.get("subscription_id") == sub_id]
        for entry in back:
            self.queue[entry["_id"]] = self.parked.pop(entry["_id"])
            self.notices[entry["_id"]]["outcome"] = PENDING
        return len(back)

    async def parked_owners(self) -> set[Any]:
        return {e.get("subscription_id") for e in self.parked.values()}

    async def drop_parked(self, sub_id: Any, reason: str) -> None:
        for key in [k for k, e in self.parked.items() if e.get("subscription_id") == sub_id]:
            del self.parked[key]


class FailingMailer:
    """A mail server that refuses every mail (temporarily, or for good)."""

    def __init__(self, *, permanent: bool = False) -> None:
        self.permanent = permanent
        self.tries = 0

    async def send(self, to: str, subject: str, body: str) -> None:
        self.tries += 1
        raise SendError("邮件服务器不可达：ConnectionRefusedError", permanent=self.permanent)


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


class StubWebhooks:
    """Answers every delivery with ``error`` (None: taken)."""

    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.posted: list[tuple[str, bytes, Mapping[str, str]]] = []

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> str | None:
        self.posted.append((url, body, headers))
        return self.error

    async def close(self) -> None:
        return None


class PlainSecrets:
    def encrypt(self, secret: str, subscription_id: str) -> str:
        return "plain:" + secret

    def reveal(self, subscription: Mapping[str, Any]) -> str:
        return str(subscription["secret_enc"]).removeprefix("plain:")
