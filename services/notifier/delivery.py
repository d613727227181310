"""The delivery worker: sends what the handlers queued, with retries, and records every attempt.

It works the small ``deliveries`` queue (``next_attempt_at``), so a consumer is never held up by a slow SMTP server
or subscriber. Every replica's worker sends: before a send it CLAIMS the queue entry with one ``find_one_and_update``
(``claimed_by``/``claimed_until``: refused while another worker holds an unexpired claim), then reads the
notification: only a ``pending`` one is sent, and its outcome is written conditionally on it still being pending. So
two replicas never send the same e-mail or webhook twice; a worker that dies mid-send leaves a claim that expires.
Webhooks of one subscriber go out in the order they were logged, so the per-subscriber lanes (and the missed-deadline
digests, the parked deliveries) are worked by the replica holding the delivery lease; e-mails by every replica.

- E-mail (aiosmtplib): retried with exponential backoff and full jitter; a permanent refusal (5xx) or the last
  attempt marks it ``failed`` (logged, listed, never silently dropped).
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
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
from pymongo import ASCENDING

from shared import clock
from shared.calendar import SHANGHAI
from shared.lease import Lease
from shared.service import Service
from shared.settings import decode_key
from shared.storage import Doc, utcnow

from . import webhooks
from .consumers import Notices, SubscriptionCache, subscription_recipient
from .crypto import SecretCipher
from .egress import Resolver, checked_client, refusal
from .settings import NotifierSettings
from .store import (
    CLAIM_FIELDS,
    DELIVERIES,
    EMAIL,
    FAILED,
    NOTIFICATIONS,
    PARKED,
    PAUSED,
    PENDING,
    SENT,
    SUBSCRIPTIONS,
    WEBHOOK,
    entry_order,
    park,
    stop_requested,
    unpark,
)

log = logging.getLogger("stvs.notifier.delivery")

BATCH = 500  # e-mails per pass
LANE_BATCH = 200  # webhook deliveries per subscriber per pass
PREFETCH = 10  # notifications of one subscriber read at once
MISSING: Doc = {}  # a notification looked for and not found
PARKED_CHECK_S = 30.0
PARKED_REASON = "订阅已暂停，恢复后补发"
PAUSED_NOTICE = "subscription_paused"


def paused_notice(url: str, since: datetime, error: str) -> tuple[str, str]:
    """(subject, body) telling a subscriber's contact that its webhook subscription was paused."""
    local = since.astimezone(SHANGHAI)
    subject = "【科技志愿服务】Webhook 订阅已暂停"
    body = (
        "您好：\n\n"
        f"您在科技志愿服务信息平台登记的 Webhook 订阅（{url}）自 {local:%Y年%m月%d日 %H:%M}（北京时间）起持续投递失败，"
        f"已被暂停。最近一次错误：{error}。\n\n"
        "暂停期间的事件已记录在通知日志中，不会丢失。请修复接收端后恢复订阅，暂停期间的事件将按原顺序补发。\n\n"
        "河北省科技志愿者总队工作办公室\n（本邮件由系统自动发送，请勿直接回复）\n"
    )
    return subject, body


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer:
    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings

    async def send(self, to: str, subject: str, body: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.smtp_sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body, charset="utf-8")
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                use_tls=False,
                timeout=s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise SendError(f"收件人被拒绝：{exc}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SendError(f"邮件服务器拒绝（{exc.code}）：{exc.message}", permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendError(f"邮件服务器不可达：{type(exc).__name__} {exc}") from exc


class DeliveryWorker:
    def __init__(
        self,
        service: Service,
        settings: NotifierSettings,
        notices: Notices,
        subscriptions: SubscriptionCache,
        *,
        holder: str | None = None,
        rng: random.Random | None = None,
        cipher: SecretCipher | None = None,
    ) -> None:
        self.service = service
        self.db = service.db
        self.settings = settings
        self.notices = notices
        self.subscriptions = subscriptions
        self.cipher = cipher or SecretCipher(decode_key(settings.webhook_secret_key.get_secret_value()))
        self.mailer = Mailer(settings)
        self.rng = rng or random.Random()
        self.lease = Lease(
            service.db, "notifier-delivery", ttl_s=max(30.0, settings.delivery_poll_interval_s * 5), holder=holder
        )
        self._http: httpx.AsyncClient | None = None
        self.resolver: Resolver | None = None  # how subscriber names are resolved (None: the system's; tests set one)
        self._parked_checked = float("-inf")
        self._done: list[Any] | None = None  # queue entries finished in this pass, deleted together at its end
        self.claimer = f"{self.lease.holder}:{uuid.uuid4().hex[:8]}"  # names this worker's claims of queue entries
        # A claim outlives any one send (timeouts included); one left by a worker that died expires after it.
        self.claim_ttl = timedelta(seconds=max(60.0, 3 * max(settings.smtp_timeout_s, settings.webhook_timeout_s)))

    @property
    def http(self) -> httpx.AsyncClient:
        """One pooled client for every webhook (keep-alive connections to each subscriber)."""
        if self._http is None:
            limits = httpx.Limits(
                max_connections=self.settings.delivery_concurrency * 2,
                max_keepalive_connections=self.settings.delivery_concurrency * 2,
            )
            if self.settings.production:  # every address the name resolves to is checked, redirects not followed
                allowed = self.settings.allowed_networks()
                self._http = checked_client(self.settings.webhook_timeout_s, limits, allowed, self.resolver)
            else:
                self._http = httpx.AsyncClient(
                    timeout=self.settings.webhook_timeout_s, follow_redirects=False, limits=limits
                )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def backoff(self, attempts: int) -> float:
        return webhooks.backoff_delay(
            max(0, attempts - 1), self.rng, self.settings.delivery_backoff_base_s, self.settings.delivery_backoff_cap_s
        )

    # -- the queue
    async def work_once(self, *, use_lease: bool = True) -> int:
        """Attempt every queued delivery that is due; returns how many were attempted.

        E-mails: claimed one at a time (``find_one_and_update`` by id) by up to ``delivery_concurrency`` senders of
        this worker, beside those of every other replica. Webhooks go out per subscriber one at a time in the order
        they were logged (subscribers in parallel), by the replica holding the lease (``use_lease=False``: whatever
        the lease says — each entry is still claimed before it is sent); after a failure the subscriber's other
        deliveries wait for its retry, so the order holds. A paused subscriber's deliveries are set aside
        (``parked``) until it is resumed.
        """
        now = clock.now()
        # A pass ends well inside the lease and the claims: what is left waits for the next pass.
        ends_at = time.monotonic() + min(self.lease.ttl.total_seconds(), self.claim_ttl.total_seconds()) / 3
        lanes: dict[Any, list[Doc]] = {}
        if not use_lease or await self.lease.acquire():
            await self.notices.flush_digests()
            await self._check_parked()
            query = {"channel": WEBHOOK, "next_attempt_at": {"$lte": now}}
            async for entry in self.db[DELIVERIES].find(query).sort([("next_attempt_at", ASCENDING)]):
                if entry.get("subscription_id") is not None:
                    lanes.setdefault(entry["subscription_id"], []).append(entry)
        subs: dict[Any, Doc] = {}
        if lanes:
            subs = {d["_id"]: d async for d in self.db[SUBSCRIPTIONS].find({"_id": {"$in": list(lanes)}})}
        gate = asyncio.Semaphore(self.settings.delivery_concurrency)
        attempted = 0

        async def guarded(entry: Doc, sub: Doc | None, note: Doc | None = None) -> bool:
            nonlocal attempted
            async with gate:
                attempted += 1
                try:
                    return await self.attempt(str(entry["_id"]), sub, note)
                except Exception:
                    if stop_requested():
                        raise
                    # its claim stays until it expires: retried then (by any replica), not at once in a loop
                    log.warning("delivery %s failed unexpectedly; retried later", entry["_id"], exc_info=True)
                    return False

        async def sender(candidates: list[Any]) -> None:
            while candidates and time.monotonic() < ends_at:
                entry_id = candidates.pop()
                if await self._claim(entry_id, now):  # another worker may have taken it since it was read
                    await guarded({"_id": entry_id}, None)

        async def lane(sub_id: Any, entries: list[Doc]) -> None:
            entries.sort(key=entry_order)
            sub = subs.get(sub_id)
            if sub is not None and sub.get("status") != "active":
                await self._park(sub_id, entries)
                return
            retry_at = sub.get("retry_at") if sub is not None else None
            if retry_at is not None and retry_at > now:
                return  # the subscriber is failing: its deliveries wait for its retry, in order
            todo = entries[:LANE_BATCH]
            for start in range(0, len(todo), PREFETCH):
                chunk = todo[start : start + PREFETCH]
                # Claim the next few entries, then read their notifications at once and send them one by one.
                # An entry another worker holds stops the lane: what follows it must not overtake it.
                won = await asyncio.gather(*(self._claim(e["_id"], now) for e in chunk))
                held = next((i for i, ok in enumerate(won) if not ok), len(chunk))
                later = zip(chunk[held:], won[held:], strict=True)
                await asyncio.gather(*(self._unclaim(e["_id"]) for e, ok in later if ok))
                ids = [e["_id"] for e in chunk[:held]]
                notes = {d["_id"]: d async for d in self.db[NOTIFICATIONS].find({"_id": {"$in": ids}})}
                for n, entry in enumerate(chunk[:held]):
                    if time.monotonic() > ends_at or not await guarded(entry, sub, notes.get(entry["_id"], MISSING)):
                        await asyncio.gather(*(self._unclaim(e["_id"]) for e in chunk[n + 1 : held]))
                        return
                if held < len(chunk):
                    return

        self._done = []
        try:
            # an idle queue costs one indexed read and no write
            candidates = await self._mail_candidates(now)
            senders = [sender(candidates) for _ in range(min(len(candidates), self.settings.delivery_concurrency))]
            await asyncio.gather(*senders, *(lane(k, v) for k, v in lanes.items()))
        finally:
            # One delete for the pass. A crash before it leaves entries whose notification is no longer pending:
            # the worker that claims one next re-reads it before sending, so none is sent twice.
            done, self._done = self._done, None
            if done:
                await self.db[DELIVERIES].delete_many({"_id": {"$in": done}})
        return attempted

    def _claimable(self) -> Doc:
        """Filter part: no claim, or an expired one (wall clock: claims are bookkeeping, not programme time)."""
        return {"$or": [{"claimed_until": None}, {"claimed_until": {"$lte": utcnow()}}]}

    def _claim_set(self) -> Doc:
        return {"$set": {"claimed_by": self.claimer, "claimed_until": utcnow() + self.claim_ttl}}

    async def _mail_candidates(self, now: datetime) -> list[Any]:
        """The ids of due e-mails no worker holds (oldest first, at most ``BATCH``), to be claimed one by one.

        Every replica reads the same list: each starts claiming at its own random place in it, so they do not all
        race for the same entry (a claim another worker won is skipped, not waited for)."""
        query = {"channel": EMAIL, "next_attempt_at": {"$lte": now}, **self._claimable()}
        cursor = self.db[DELIVERIES].find(query, {"_id": 1}).sort([("next_attempt_at", ASCENDING)]).limit(BATCH)
        ids = [d["_id"] async for d in cursor]
        ids.reverse()  # popped from the end: oldest first
        if len(ids) > 1:
            turn = self.rng.randrange(len(ids))
            ids = ids[turn:] + ids[:turn]
        return ids

    async def _claim(self, entry_id: Any, now: datetime) -> bool:
        """Claim one queue entry if it is due and no other worker holds it."""
        found = await self.db[DELIVERIES].find_one_and_update(
            {"_id": entry_id, "next_attempt_at": {"$lte": now}, **self._claimable()}, self._claim_set(), {"_id": 1}
        )
        return found is not None

    async def _unclaim(self, entry_id: Any) -> None:
        with contextlib.suppress(Exception):
            await self.db[DELIVERIES].update_one(
                {"_id": entry_id, "claimed_by": self.claimer}, {"$unset": dict.fromkeys(CLAIM_FIELDS, "")}
            )

    async def _dequeue(self, notification_id: Any) -> None:
        if self._done is not None:
            self._done.append(notification_id)
        else:
            await self.db[DELIVERIES].delete_one({"_id": notification_id})

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
            await self.close()
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def _note(self, notification_id: Any) -> Doc | None:
        return await self.db[NOTIFICATIONS].find_one({"_id": notification_id})

    async def attempt(self, notification_id: str, sub: Doc | None = None, note: Doc | None = None) -> bool:
        """Send one queued notification if it is still pending (``note``: as just read, else it is read);
        False when it failed and waits for a retry."""
        if note is None:
            note = await self._note(notification_id)
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
            attempts = int(note.get("attempts", 0)) + 1
            if exc.permanent or attempts >= self.settings.email_max_attempts:
                await self._finish(note, FAILED, error=str(exc))
                return True
            await self._retry(note, str(exc))
            return False
        await self._finish(note, SENT)
        return True

    async def _webhook(self, note: Doc, sub: Doc | None) -> bool:
        if sub is None or sub.get("_id") != note["subscription_id"]:
            sub = await self.db[SUBSCRIPTIONS].find_one({"_id": note["subscription_id"]})
        if sub is None:
            await self._finish(note, PAUSED, error="订阅已删除，未投递")
            return True
        if sub.get("status") != "active":
            await self._park(sub["_id"], [_entry_of(note)])
            return True
        try:
            secret = self.cipher.reveal(sub)
        except ValueError:
            log.error(
                "webhook subscription %s: its secret does not decrypt (check STVS_WEBHOOK_SECRET_KEY)", sub["_id"]
            )
            await self._retry(note, "订阅签名密钥无法解密，待管理员检查配置")
            return False
        body = str(note["payload"]).encode()
        headers = webhooks.signed_headers(secret, str(note["event_id"]), int(time.time()), body)
        headers["content-type"] = "application/json"
        error: str | None = None
        try:
            response = await self.http.post(str(sub["url"]), content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                error = f"订阅方返回 HTTP {response.status_code}"
        except httpx.TimeoutException:
            error = f"订阅方在 {self.settings.webhook_timeout_s:g} 秒内未响应"
        except httpx.HTTPError as exc:
            error = refusal(exc) or f"无法连接订阅方：{type(exc).__name__}"
        now = clock.now()
        if error is None:
            await self._finish(note, SENT)
            if sub.get("failing_since") is not None or sub.get("retry_at") is not None:
                cleared = {"failing_since": None, "retry_at": None, "last_error": None}
                await self._update_subscription(sub["_id"], {"$set": cleared})
                sub.update(cleared)
            return True
        failing_since: datetime = sub.get("failing_since") or now
        if now - failing_since >= timedelta(seconds=self.settings.webhook_pause_after_s):
            await self._count_attempt(note, f"{error}；订阅已暂停，恢复后补发")
            await self._pause(sub, now, error)
            await self._park(sub["_id"], [_entry_of(note)])
            return False
        at = await self._retry(note, error)
        fields = {"failing_since": failing_since, "last_error": error, "retry_at": at}
        await self._update_subscription(sub["_id"], {"$set": fields})
        sub.update(fields)
        return False

    async def _park(self, sub_id: Any, entries: list[Doc]) -> None:
        """Set a paused subscriber's deliveries aside; if it was resumed meanwhile, queue them again at once (the
        resumption reads the parked ones after marking it active, this re-reads it after parking: one of the two
        sees them)."""
        if not await park(self.db, entries, PARKED_REASON):
            return
        current = await self.db[SUBSCRIPTIONS].find_one({"_id": sub_id}, {"status": 1})
        if current is not None and current.get("status") == "active":
            await unpark(self.db, sub_id)

    async def _check_parked(self) -> None:
        """Now and then: queue again parked deliveries of a subscriber that is active (a resumption that crashed
        half-way, or one another replica's stale cache parked after); drop those of a deleted subscriber."""
        if time.monotonic() - self._parked_checked < PARKED_CHECK_S:
            return
        self._parked_checked = time.monotonic()
        owners = {d.get("subscription_id") async for d in self.db[PARKED].find({}, {"subscription_id": 1})}
        for sub_id in owners:
            sub = await self.db[SUBSCRIPTIONS].find_one({"_id": sub_id}, {"status": 1})
            if sub is None:
                gone = [d async for d in self.db[PARKED].find({"subscription_id": sub_id})]
                for entry in gone:
                    note = await self.db[NOTIFICATIONS].find_one({"_id": entry["_id"]}, {"attempts": 1})
                    if note is not None:
                        await self._finish(note, PAUSED, error="订阅已删除，未投递")
                await self.db[PARKED].delete_many({"_id": {"$in": [d["_id"] for d in gone]}})
            elif sub.get("status") == "active":
                await unpark(self.db, sub_id)

    async def _pause(self, sub: Doc, now: datetime, error: str) -> None:
        fields = {"status": PAUSED, "paused_at": now, "last_error": error, "retry_at": None}
        # Only an active subscription is paused (and its contact told): one resumed or deleted meanwhile stays.
        result = await self.db[SUBSCRIPTIONS].update_one({"_id": sub["_id"], "status": "active"}, {"$set": fields})
        if not result.modified_count:
            return
        sub.update(fields)
        self.subscriptions.invalidate()
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

    async def _update_subscription(self, sub_id: Any, update: Doc) -> None:
        await self.db[SUBSCRIPTIONS].update_one({"_id": sub_id}, update)

    async def _count_attempt(self, note: Doc, error: str) -> None:
        attempts = int(note.get("attempts", 0)) + 1
        note["attempts"] = attempts
        await self.db[NOTIFICATIONS].update_one(
            {"_id": note["_id"], "outcome": PENDING},
            {"$set": {"attempts": attempts, "last_error": error, "updated_at": clock.now()}},
        )

    async def _retry(self, note: Doc, error: str) -> datetime:
        attempts = int(note.get("attempts", 0)) + 1
        at = clock.now() + timedelta(seconds=self.backoff(attempts))
        await self.db[NOTIFICATIONS].update_one(
            {"_id": note["_id"], "outcome": PENDING},
            {"$set": {"attempts": attempts, "last_error": error, "next_attempt_at": at, "updated_at": clock.now()}},
        )
        # Due again later, and free for any worker then (the claim is given up).
        await self.db[DELIVERIES].update_one(
            {"_id": note["_id"]}, {"$set": {"next_attempt_at": at}, "$unset": dict.fromkeys(CLAIM_FIELDS, "")}
        )
        log.info("delivery %s failed (attempt %d): %s; next at %s", note["_id"], attempts, error, at)
        return at

    async def _finish(
        self, note: Doc, outcome: str, *, error: str | None = None, attempted: bool | None = None
    ) -> None:
        if attempted is None:
            attempted = outcome in (SENT, FAILED)
        attempts = int(note.get("attempts", 0)) + (1 if attempted else 0)
        fields: Doc = {"outcome": outcome, "attempts": attempts, "next_attempt_at": None, "updated_at": clock.now()}
        if outcome == SENT:
            fields["sent_at"] = clock.now()
        if error is not None:
            fields["last_error"] = error
        # Never over a final outcome (sent, failed) another worker wrote meanwhile.
        await self.db[NOTIFICATIONS].update_one(
            {"_id": note["_id"], "outcome": {"$in": [PENDING, PAUSED]}}, {"$set": fields}
        )
        await self._dequeue(note["_id"])


def _entry_of(note: Doc) -> Doc:
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
