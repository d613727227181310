"""What the notifier's use cases need from the outside world, as protocols: the storage port (implemented on MongoDB
in ``adapters/mongo*.py``, in memory in the use-case tests), the mail and webhook senders, a lease.

Notices and subscriptions cross the port as plain values (``Doc``: the stored fields, ``_id`` included); units,
deadlines and slots as domain objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from services.notifier.domain import DueNotification, UnitObligations, UnitSlot
from services.notifier.domain.reviews import ReportReview
from shared.contracts.envelope import Envelope
from shared.identity import Identity
from shared.scope import Reach

Doc = dict[str, Any]
SECRET_FIELD = "secret_enc"  # noqa: S105 (a stored field: only the ciphertext of a subscriber's secret)


@dataclass(frozen=True)
class UnitCopy:
    """What the notifier keeps of a unit: the registry's snapshot (newest version) and its obligation facts."""

    obligations: UnitObligations
    name: str | None = None
    status: str | None = None
    kind: str | None = None
    version: int | None = None  # None: no snapshot of the registry's seen yet
    contact: Mapping[str, Any] | None = None

    @property
    def unit_id(self) -> str:
        return self.obligations.unit_id


@dataclass(frozen=True)
class ActivityCopy:
    """An activity as volunteers' reminders need it."""

    activity_id: str
    unit_id: str | None
    title: str
    starts_at: datetime
    county: str | None
    signups: Mapping[str, str] = field(default_factory=dict)
    reminded: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Digest:
    """A deadline's missed-units digest for the province office: the units not yet sent in a batch."""

    deadline_id: str
    title: str
    due_at: datetime
    units: Mapping[str, Mapping[str, Any]]  # unit id -> {"name", "batch", …}
    batches: int | None
    last_added_at: datetime | None


@dataclass(frozen=True)
class NotificationFilter:
    unit_ids: Sequence[str] | None = None  # any of these units (a unit admin's subtree)
    unit: str | None = None
    channel: str | None = None
    outcome: str | None = None
    recipient: str | None = None


class SlotTaken(Exception):
    """A claim's slot was claimed meanwhile (by another replica): nothing of the chunk was written."""


class Lease(Protocol):
    holder: str
    ttl: timedelta

    async def acquire(self) -> bool: ...

    async def release(self) -> None: ...


class Units(Protocol):
    async def change_unit(self, unit_id: str, decide: Callable[[UnitCopy | None], UnitCopy | None]) -> bool:
        """Read the unit, let ``decide`` return its new copy (None: nothing to write), write it if still unchanged
        (else decide again on the fresh copy). True when something was written."""
        ...

    async def unit(self, unit_id: str) -> UnitCopy | None: ...


class NoticeStore(Units, Protocol):
    async def log_notice(self, doc: Doc, *, queue: bool) -> bool:
        """Log a notice once (and queue it when ``queue``); False when it was logged before."""
        ...

    async def log_webhooks(self, docs: list[Doc], entries: list[Doc]) -> int: ...

    async def subscribers(self, event_type: str) -> list[Doc]: ...

    def subscriptions_changed(self) -> None: ...

    async def add_to_digest(self, deadline_id: str, unit_id: str, entry: Doc, title: str, due_at: datetime) -> None: ...

    async def digests(self) -> list[Digest]: ...

    async def logged_units(self, note_id: str) -> list[str] | None: ...

    async def mark_digest(self, digest: Digest, listed: list[str], batch: int) -> None: ...

    async def publish_activity(self, activity_id: str, fields: Doc) -> None: ...

    async def update_activity(self, activity_id: str, fields: Doc) -> None: ...

    async def save_volunteer(self, volunteer_id: str, display_name: str, version: int) -> None: ...

    async def volunteer_names(self, volunteer_ids: Sequence[str]) -> dict[str, str]: ...

    async def change_review(self, review_id: str, decide: Callable[[ReportReview | None], ReportReview | None]) -> bool:
        """Like :meth:`Units.change_unit`, for a report's review state (``domain.reviews``)."""
        ...

    async def open_reviews(self) -> list[ReportReview]:
        """The reports returned and not yet amended or accepted."""
        ...


class ReminderStore(Protocol):
    def units(self, skip: Callable[[str], bool]) -> AsyncIterator[UnitObligations]:
        """Every unit not rejected, but those ``skip`` names (not even read into the domain)."""
        ...

    async def claimed(self, due: Sequence[DueNotification]) -> set[str]:
        """The slot ids claimed for these due (deadline, slot) pairs."""
        ...

    async def claimed_ids(self, slot_ids: Sequence[str]) -> set[str]: ...

    async def claim(self, slots: Sequence[UnitSlot], events: Sequence[Envelope[Any]], now: datetime) -> int:
        """Claim the slots and stage their events, atomically; raises :class:`SlotTaken` when one was taken."""
        ...

    async def recover(self) -> int:
        """Stage the events of a claim interrupted by a crash; returns how many."""
        ...

    async def activities_starting(self, now: datetime) -> list[ActivityCopy]: ...

    async def mark_reminded(self, activity_id: str, volunteer_ids: Sequence[str], now: datetime) -> None: ...


class DeliveryStore(Protocol):
    async def webhook_lanes(self, now: datetime) -> dict[Any, list[Doc]]:
        """The due webhook deliveries, per subscriber."""
        ...

    async def subscriptions(self, ids: Sequence[Any]) -> dict[Any, Doc]: ...

    async def subscription(self, sub_id: Any) -> Doc | None: ...

    async def mail_candidates(self, now: datetime, limit: int) -> list[Any]: ...

    async def claim_entry(self, entry_id: Any, now: datetime, claimer: str, until: datetime) -> bool:
        """Claim a due queue entry no other worker holds (until ``until``)."""
        ...

    async def unclaim_entry(self, entry_id: Any, claimer: str) -> None: ...

    async def notification(self, note_id: Any) -> Doc | None: ...

    async def notices_by_id(self, ids: Sequence[Any]) -> dict[Any, Doc]: ...

    async def dequeue(self, ids: Sequence[Any]) -> None: ...

    async def finish(self, note_id: Any, fields: Doc) -> None:
        """Write a notice's outcome, unless another worker wrote a final one meanwhile."""
        ...

    async def count_attempt(self, note_id: Any, attempts: int, error: str) -> None: ...

    async def retry(self, note_id: Any, attempts: int, error: str, at: datetime) -> None:
        """Record a failed try and queue the notice again for ``at`` (its claim given up)."""
        ...

    async def update_subscription(self, sub_id: Any, fields: Doc) -> None: ...

    async def pause_subscription(self, sub_id: Any, fields: Doc) -> bool:
        """Pause an active subscription; False when it is not active (resumed or deleted meanwhile)."""
        ...

    async def park(self, entries: list[Doc], reason: str) -> int: ...

    async def unpark(self, sub_id: Any) -> int: ...

    async def parked_owners(self) -> set[Any]: ...

    async def drop_parked(self, sub_id: Any, reason: str) -> None:
        """Drop the parked deliveries of a deleted subscriber, logged ``paused`` with ``reason``."""
        ...


class SubscriptionStore(Protocol):
    async def add_subscription(self, doc: Doc) -> None: ...

    async def list_subscriptions(self) -> list[Doc]: ...

    async def delete_subscription(self, sub_id: str) -> bool: ...

    async def resume_subscription(self, sub_id: str) -> Doc | None: ...

    async def unpark(self, sub_id: Any) -> int: ...

    def subscriptions_changed(self) -> None: ...


class InboxStore(Units, Protocol):
    async def reach(self, identity: Identity, *, system_reads: bool = False) -> Reach: ...

    async def notifications(self, where: NotificationFilter, limit: int, offset: int) -> tuple[list[Doc], int]: ...


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None:
        """Send one mail; raises ``domain.notices.SendError``."""
        ...


class WebhookSender(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> str | None:
        """POST one signed delivery; the reason it failed (Chinese), or None when the subscriber took it."""
        ...

    async def close(self) -> None: ...


class SecretKeeper(Protocol):
    def encrypt(self, secret: str, subscription_id: str) -> str: ...

    def reveal(self, subscription: Mapping[str, Any]) -> str:
        """The signing secret of a stored subscription; ValueError when it does not decrypt."""
        ...
