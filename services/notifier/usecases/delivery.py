"""Delivery: send what was queued, with retries, and record every attempt.

The worker works the queue of the storage port, so a consumer is never held up by a slow SMTP server or subscriber.
Every replica's worker sends: before a send it CLAIMS the queue entry (refused while another worker holds an
unexpired claim), then reads the notice: only a ``pending`` one is sent, and its outcome is written conditionally on
it still being pending. So two replicas never send the same e-mail or webhook twice; a worker that dies mid-send
leaves a claim that expires. Webhooks of one subscriber go out in the order they were logged, so the per-subscriber
lanes (and the missed-deadline digests, the parked deliveries) are worked by the replica holding the delivery lease;
e-mails by every replica.

- E-mail: retried with exponential backoff and full jitter; a permanent refusal (5xx) or the last attempt marks it
  ``failed`` (logged, listed, never silently dropped).
- Webhooks (Standard Webhooks signatures, ``webhook-id`` = event id, stable across retries): retried with backoff;
  a subscriber failing for ``webhook_pause_after_s`` is paused, its queued deliveries are marked ``paused`` and its
  contact is told (e-mail, or an inbox notice when it left none).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.notifier.domain import webhooks
from services.notifier.domain.notices import (
    EMAIL,
    FAILED,
    PARKED_REASON,
    PAUSED,
    PAUSED_NOTICE,
    PENDING,
    SENT,
    SUBSCRIPTION_GONE,
    WEBHOOK,
    Failing,
    SendError,
    gives_up,
    paused_notice,
    subscription_recipient,
)
from services.notifier.settings import NotifierSettings
from shared import clock
from shared.storage import utcnow

from .notices import Notices
from .ports import DeliveryStore, Doc, Lease, Mailer, SecretKeeper, WebhookSender
from .running import stop_requested

log = logging.getLogger("stvs.notifier.delivery")

BATCH = 500  # e-mails per pass
LANE_BATCH = 200  # webhook deliveries per subscriber per pass
PREFETCH = 10  # notifications of one subscriber read at once
MISSING: Doc = {}  # a notification looked for and not found
PARKED_CHECK_S = 30.0


def entry_order(entry: Doc) -> tuple[int, str]:
    """The order queue entries were logged in (``seq``; ``created_at`` for entries older than it)."""
    seq = entry.get("seq")
    if not isinstance(seq, int):
        created = entry.get("created_at")
        seq = int(created.timestamp() * 1e9) if isinstance(created, datetime) else 0
    return seq, str(entry["_id"])


def entry_of(note: Doc) -> Doc:
    """The queue entry of a notification (to park it)."""
    created = note.get("created_at") or clock.now()
    return {
        "_id": note["_id"],
        "channel": note.get("channel"),
        "subscription_id": note.get("subscription_id"),
        "seq": int(created.timestamp() * 1e9),
        "next_attempt_at": created,
        "created_at": created,
    }


@dataclass
class Pass:
    """One pass of the worker: when it ends, what it attempted, the entries it finished (deleted at its end)."""

    now: datetime
    ends_at: float
    gate: asyncio.Semaphore
    subs: dict[Any, Doc] = field(default_factory=dict)
    attempted: int = 0


class DeliveryWorker:
    def __init__(
        self,
        store: DeliveryStore,
        settings: NotifierSettings,
        notices: Notices,
        *,
        lease: Lease,
        mailer: Mailer,
        webhooks: WebhookSender,
        secrets: SecretKeeper,
        rng: random.Random | None = None,
        subscriptions_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.notices = notices
        self.lease = lease
        self.mailer = mailer
        self.webhooks = webhooks
        self.secrets = secrets
        self.rng = rng or random.Random()
        self.subscriptions_changed = subscriptions_changed
        self._parked_checked = float("-inf")
        self._done: list[Any] | None = None  # queue entries finished in this pass, deleted together at its end
        self.claimer = f"{lease.holder}:{uuid.uuid4().hex[:8]}"  # names this worker's claims of queue entries
        # A claim outlives any one send (timeouts included); one left by a worker that died expires after it.
        self.claim_ttl = timedelta(seconds=max(60.0, 3 * max(settings.smtp_timeout_s, settings.webhook_timeout_s)))

    def backoff(self, attempts: int) -> float:
        return webhooks.backoff_delay(
            max(0, attempts - 1), self.rng, self.settings.delivery_backoff_base_s, self.settings.delivery_backoff_cap_s
        )

    # -- the queue
    async def work_once(self, *, use_lease: bool = True) -> int:
        """Attempt every queued delivery that is due; returns how many were attempted.

        E-mails: claimed one at a time by up to ``delivery_concurrency`` senders of this worker, beside those of
        every other replica. Webhooks go out per subscriber one at a time in the order they were logged
        (subscribers in parallel), by the replica holding the lease (``use_lease=False``: whatever the lease says —
        each entry is still claimed before it is sent); after a failure the subscriber's other deliveries wait for
        its retry, so the order holds. A paused subscriber's deliveries are set aside until it is resumed.
        """
        now = clock.now()
        # A pass ends well inside the lease and the claims: what is left waits for the next pass.
        ends_at = time.monotonic() + min(self.lease.ttl.total_seconds(), self.claim_ttl.total_seconds()) / 3
        run = Pass(now, ends_at, asyncio.Semaphore(self.settings.delivery_concurrency))
        lanes: dict[Any, list[Doc]] = {}
        if not use_lease or await self.lease.acquire():
            await self.notices.flush_digests()
            await self._check_parked()
            lanes = await self.store.webhook_lanes(now)
        if lanes:
            run.subs = await self.store.subscriptions(list(lanes))
        self._done = []
        try:
            # an idle queue costs one indexed read and no write
            candidates = await self._mail_candidates(now)
            senders = [
                self._sender(run, candidates) for _ in range(min(len(candidates), self.settings.delivery_concurrency))
            ]
            await asyncio.gather(*senders, *(self._lane(run, k, v) for k, v in lanes.items()))
        finally:
            # One delete for the pass. A crash before it leaves entries whose notification is no longer pending:
            # the worker that claims one next re-reads it before sending, so none is sent twice.
            done, self._done = self._done, None
            if done:
                await self.store.dequeue(done)
        return run.attempted

    async def _guarded(self, run: Pass, entry_id: Any, sub: Doc | None, note: Doc | None = None) -> bool:
        async with run.gate:
            run.attempted += 1
            try:
                return await self.attempt(str(entry_id), sub, note)
            except Exception:
                if stop_requested():
                    raise
                # its claim stays until it expires: retried then (by any replica), not at once in a loop
                log.warning("delivery %s failed unexpectedly; retried later", entry_id, exc_info=True)
                return False

    async def _sender(self, run: Pass, candidates: list[Any]) -> None:
        while candidates and time.monotonic() < run.ends_at:
            entry_id = candidates.pop()
            if await self._claim(entry_id, run.now):  # another worker may have taken it since it was read
                await self._guarded(run, entry_id, None)

    async def _lane(self, run: Pass, sub_id: Any, entries: list[Doc]) -> None:
        entries.sort(key=entry_order)
        sub = run.subs.get(sub_id)
        if sub is not None and sub.get("status") != "active":
            await self._park(sub_id, entries)
            return
        retry_at = sub.get("retry_at") if sub is not None else None
        if retry_at is not None and retry_at > run.now:
            return  # the subscriber is failing: its deliveries wait for its retry, in order
        todo = entries[:LANE_BATCH]
        for start in range(0, len(todo), PREFETCH):
            if not await self._lane_chunk(run, sub, todo[start : start + PREFETCH]):
                return

    async def _lane_chunk(self, run: Pass, sub: Doc | None, chunk: list[Doc]) -> bool:
        """Claim the next few entries, then read their notices at once and send them one by one. An entry another
        worker holds stops the lane: what follows it must not overtake it. False when the lane stops."""
        won = await asyncio.gather(*(self._claim(e["_id"], run.now) for e in chunk))
        held = next((i for i, ok in enumerate(won) if not ok), len(chunk))
        later = zip(chunk[held:], won[held:], strict=True)
        await asyncio.gather(*(self.store.unclaim_entry(e["_id"], self.claimer) for e, ok in later if ok))
        notes = await self.store.notices_by_id([e["_id"] for e in chunk[:held]])
        for n, entry in enumerate(chunk[:held]):
            note = notes.get(entry["_id"], MISSING)
            if time.monotonic() > run.ends_at or not await self._guarded(run, entry["_id"], sub, note):
                await asyncio.gather(*(self.store.unclaim_entry(e["_id"], self.claimer) for e in chunk[n + 1 : held]))
                return False
        return held == len(chunk)

    async def _mail_candidates(self, now: datetime) -> list[Any]:
        """The ids of due e-mails no worker holds (oldest first, at most ``BATCH``), to be claimed one by one.

        Every replica reads the same list: each starts claiming at its own random place in it, so they do not all
        race for the same entry (a claim another worker won is skipped, not waited for)."""
        ids = await self.store.mail_candidates(now, BATCH)
        ids.reverse()  # popped from the end: oldest first
        if len(ids) > 1:
            turn = self.rng.randrange(len(ids))
            ids = ids[turn:] + ids[:turn]
        return ids

    async def _claim(self, entry_id: Any, now: datetime) -> bool:
        """Claim one queue entry if it is due and no other worker holds it (wall clock: claims are bookkeeping)."""
        return await self.store.claim_entry(entry_id, now, self.claimer, utcnow() + self.claim_ttl)

    async def _dequeue(self, notification_id: Any) -> None:
        if self._done is not None:
            self._done.append(notification_id)
        else:
            await self.store.dequeue([notification_id])

    async def loop(self) -> None:
        try:
            while True:
                try:
                    await self.work_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if stop_requested():
                        raise asyncio.CancelledError from None
                    log.warning("delivery pass failed; retrying", exc_info=True)
                if stop_requested():
                    raise asyncio.CancelledError
                await asyncio.sleep(self.settings.delivery_poll_interval_s)
        finally:
            await self.webhooks.close()
            with contextlib.suppress(Exception):
                await self.lease.release()

    # -- one notice
    async def attempt(self, notification_id: str, sub: Doc | None = None, note: Doc | None = None) -> bool:
        """Send one queued notice if it is still pending (``note``: as just read, else it is read);
        False when it failed and waits for a retry."""
        if note is None:
            note = await self.store.notification(notification_id)
        elif note is MISSING:
            note = None
        if note is None or note.get("outcome") != PENDING:
            await self._dequeue(notification_id)
            return True
        if note["channel"] == EMAIL:
            return await self._email(note)
        if note["channel"] == WEBHOOK:
            return await self._webhook(note, sub)
        await self._finish(note, FAILED, error=f"未知的通知渠道 {note['channel']}")
        return True

    async def _email(self, note: Doc) -> bool:
        try:
            await self.mailer.send(str(note["address"]), str(note["subject"]), str(note["body"]))
        except SendError as exc:
            if gives_up(exc, int(note.get("attempts", 0)) + 1, self.settings.email_max_attempts):
                await self._finish(note, FAILED, error=str(exc))
                return True
            await self._retry(note, str(exc))
            return False
        await self._finish(note, SENT)
        return True

    async def _webhook(self, note: Doc, sub: Doc | None) -> bool:
        if sub is None or sub.get("_id") != note["subscription_id"]:
            sub = await self.store.subscription(note["subscription_id"])
        if sub is None:
            await self._finish(note, PAUSED, error=SUBSCRIPTION_GONE)
            return True
        if sub.get("status") != "active":
            await self._park(sub["_id"], [entry_of(note)])
            return True
        try:
            secret = self.secrets.reveal(sub)
        except ValueError:
            log.error(
                "webhook subscription %s: its secret does not decrypt (check STVS_WEBHOOK_SECRET_KEY)", sub["_id"]
            )
            await self._retry(note, "订阅签名密钥无法解密，待管理员检查配置")
            return False
        body = str(note["payload"]).encode()
        headers = webhooks.signed_headers(secret, str(note["event_id"]), int(time.time()), body)
        headers["content-type"] = "application/json"
        error = await self.webhooks.post(str(sub["url"]), body, headers)
        if error is None:
            await self._finish(note, SENT)
            if sub.get("failing_since") is not None or sub.get("retry_at") is not None:
                cleared = {"failing_since": None, "retry_at": None, "last_error": None}
                await self.store.update_subscription(sub["_id"], cleared)
                sub.update(cleared)
            return True
        await self._webhook_failed(note, sub, error)
        return False

    async def _webhook_failed(self, note: Doc, sub: Doc, error: str) -> None:
        now = clock.now()
        failing = Failing(sub.get("failing_since") or now, timedelta(seconds=self.settings.webhook_pause_after_s))
        if failing.pauses_at(now):
            attempts = int(note.get("attempts", 0)) + 1
            note["attempts"] = attempts
            await self.store.count_attempt(note["_id"], attempts, f"{error}；订阅已暂停，恢复后补发")
            await self._pause(sub, now, error)
            await self._park(sub["_id"], [entry_of(note)])
            return
        at = await self._retry(note, error)
        fields = {"failing_since": failing.since, "last_error": error, "retry_at": at}
        await self.store.update_subscription(sub["_id"], fields)
        sub.update(fields)

    async def _park(self, sub_id: Any, entries: list[Doc]) -> None:
        """Set a paused subscriber's deliveries aside; if it was resumed meanwhile, queue them again at once (the
        resumption reads the parked ones after marking it active, this re-reads it after parking: one of the two
        sees them)."""
        if not await self.store.park(entries, PARKED_REASON):
            return
        current = await self.store.subscription(sub_id)
        if current is not None and current.get("status") == "active":
            await self.store.unpark(sub_id)

    async def _check_parked(self) -> None:
        """Now and then: queue again parked deliveries of a subscriber that is active (a resumption that crashed
        half-way, or one another replica's stale cache parked after); drop those of a deleted subscriber."""
        if time.monotonic() - self._parked_checked < PARKED_CHECK_S:
            return
        self._parked_checked = time.monotonic()
        for sub_id in await self.store.parked_owners():
            sub = await self.store.subscription(sub_id)
            if sub is None:
                await self.store.drop_parked(sub_id, SUBSCRIPTION_GONE)
            elif sub.get("status") == "active":
                await self.store.unpark(sub_id)

    async def _pause(self, sub: Doc, now: datetime, error: str) -> None:
        fields = {"status": PAUSED, "paused_at": now, "last_error": error, "retry_at": None}
        # Only an active subscription is paused (and its contact told): one resumed or deleted meanwhile stays.
        if not await self.store.pause_subscription(sub["_id"], fields):
            return
        sub.update(fields)
        self.subscriptions_changed()
        log.warning("webhook subscription %s paused after failing since %s", sub["_id"], sub.get("failing_since"))
        await self.notices.notify(
            None,
            recipient=subscription_recipient(str(sub["_id"])),
            unit_id=None,
            address=sub.get("contact_email"),
            template=PAUSED_NOTICE,
            rendered=paused_notice(str(sub["url"]), sub.get("failing_since") or now, error),
            event_id=f"paused:{sub['_id']}:{int(now.timestamp())}",
            event_type="subscription_paused",
        )

    async def _retry(self, note: Doc, error: str) -> datetime:
        attempts = int(note.get("attempts", 0)) + 1
        at = clock.now() + timedelta(seconds=self.backoff(attempts))
        await self.store.retry(note["_id"], attempts, error, at)
        log.info("delivery %s failed (attempt %d): %s; next at %s", note["_id"], attempts, error, at)
        return at

    async def _finish(self, note: Doc, outcome: str, *, error: str | None = None) -> None:
        attempted = outcome in (SENT, FAILED)
        attempts = int(note.get("attempts", 0)) + (1 if attempted else 0)
        fields: Doc = {"outcome": outcome, "attempts": attempts, "next_attempt_at": None, "updated_at": clock.now()}
        if outcome == SENT:
            fields["sent_at"] = clock.now()
        if error is not None:
            fields["last_error"] = error
        await self.store.finish(note["_id"], fields)
        await self._dequeue(note["_id"])
