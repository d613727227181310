"""The delivery worker: sends what the handlers queued, with retries, and records every attempt.

It works the small ``deliveries`` queue (``next_attempt_at``) under a lease, so one replica sends at a time and a
consumer is never held up by a slow SMTP server or subscriber. Before every send it re-reads the notification:
only a ``pending`` one is sent, so a duplicate queue entry never produces a second send.

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
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from shared.calendar import SHANGHAI
from shared.lease import Lease
from shared.service import Service
from shared.storage import Doc, doc_locks, utcnow

from . import webhooks
from .consumers import Notices, SubscriptionCache, subscription_recipient
from .settings import NotifierSettings
from .store import (
    DELIVERIES,
    EMAIL,
    FAILED,
    NOTIFICATIONS,
    PAUSED,
    PENDING,
    SENT,
    SUBSCRIPTIONS,
    WEBHOOK,
    stop_requested,
)

log = logging.getLogger("stvs.notifier.delivery")

BATCH = 500
PAUSED_NOTICE = "subscription_paused"


def paused_notice(url: str, since: datetime, error: str) -> tuple[str, str]:
    """(subject, body) telling a subscriber's contact that its webhook subscription was paused."""
    local = since.astimezone(SHANGHAI)
    subject = "【科技志愿服务】Webhook 订阅已暂停"
    body = (
        "您好：\n\n"
        f"您在科技志愿服务信息平台登记的 Webhook 订阅（{url}）自 {local:%Y年%m月%d日 %H:%M}（北京时间）起持续投递失败，"
        f"已被暂停。最近一次错误：{error}。\n\n"
        "暂停期间的事件已记录在通知日志中。请修复接收端后重新登记订阅。\n\n"
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
    ) -> None:
        self.service = service
        self.db = service.db
        self.settings = settings
        self.notices = notices
        self.subscriptions = subscriptions
        self.mailer = Mailer(settings)
        self.rng = rng or random.Random()
        self.lease = Lease(
            service.db, "notifier-delivery", ttl_s=max(30.0, settings.delivery_poll_interval_s * 5), holder=holder
        )
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.settings.webhook_timeout_s, follow_redirects=False)
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
        """Attempt every queued delivery that is due; returns how many were attempted."""
        if use_lease and not await self.lease.acquire():
            return 0
        await self.notices.flush_digests()
        now = utcnow()
        due = [d async for d in self.db[DELIVERIES].find({})]
        due = sorted((d for d in due if d["next_attempt_at"] <= now), key=lambda d: d["next_attempt_at"])[:BATCH]
        if not due:
            return 0
        gate = asyncio.Semaphore(self.settings.delivery_concurrency)

        async def one(entry: Doc) -> None:
            async with gate:
                try:
                    await self.attempt(str(entry["_id"]))
                except Exception:
                    if stop_requested():
                        raise
                    log.warning("delivery %s failed unexpectedly; retried next pass", entry["_id"], exc_info=True)

        await asyncio.gather(*(one(d) for d in due))
        return len(due)

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

    async def attempt(self, notification_id: str) -> None:
        notes = self.db[NOTIFICATIONS]
        async with doc_locks.hold(notes, notification_id):
            note = await notes.find_one({"_id": notification_id})
        if note is None or note.get("outcome") != PENDING:
            await self.db[DELIVERIES].delete_one({"_id": notification_id})
            return
        if note["channel"] == EMAIL:
            await self._email(note)
        elif note["channel"] == WEBHOOK:
            await self._webhook(note)
        else:
            await self._finish(note, FAILED, error=f"未知的通知渠道 {note['channel']}")

    async def _email(self, note: Doc) -> None:
        try:
            await self.mailer.send(str(note["address"]), str(note["subject"]), str(note["body"]))
        except SendError as exc:
            attempts = int(note.get("attempts", 0)) + 1
            if exc.permanent or attempts >= self.settings.email_max_attempts:
                await self._finish(note, FAILED, error=str(exc))
            else:
                await self._retry(note, str(exc))
            return
        await self._finish(note, SENT)

    async def _webhook(self, note: Doc) -> None:
        sub = await self.db[SUBSCRIPTIONS].find_one({"_id": note["subscription_id"]})
        if sub is None or sub.get("status") != "active":
            reason = "订阅已删除，未投递" if sub is None else "订阅已暂停，未投递"
            await self._finish(note, PAUSED, error=reason)
            return
        body = str(note["payload"]).encode()
        headers = webhooks.signed_headers(sub["secret"], str(note["event_id"]), int(time.time()), body)
        headers["content-type"] = "application/json"
        error: str | None = None
        try:
            response = await self.http.post(str(sub["url"]), content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                error = f"订阅方返回 HTTP {response.status_code}"
        except httpx.TimeoutException:
            error = f"订阅方在 {self.settings.webhook_timeout_s:g} 秒内未响应"
        except httpx.HTTPError as exc:
            error = f"无法连接订阅方：{type(exc).__name__}"
        now = utcnow()
        if error is None:
            await self._finish(note, SENT)
            if sub.get("failing_since") is not None:
                await self._update_subscription(sub["_id"], {"$set": {"failing_since": None, "last_error": None}})
            return
        failing_since: datetime = sub.get("failing_since") or now
        if sub.get("failing_since") is None:
            await self._update_subscription(sub["_id"], {"$set": {"failing_since": now, "last_error": error}})
        if now - failing_since >= timedelta(seconds=self.settings.webhook_pause_after_s):
            await self._pause(sub, now, error)
            await self._finish(note, PAUSED, error=f"{error}；订阅已暂停", attempted=True)
            return
        await self._retry(note, error)

    async def _pause(self, sub: Doc, now: datetime, error: str) -> None:
        col = self.db[SUBSCRIPTIONS]
        async with doc_locks.hold(col, sub["_id"]):
            current = await col.find_one({"_id": sub["_id"]}, {"status": 1})
            if current is None or current.get("status") != "active":
                return
            await col.update_one(
                {"_id": sub["_id"]}, {"$set": {"status": PAUSED, "paused_at": now, "last_error": error}}
            )
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
        col = self.db[SUBSCRIPTIONS]
        async with doc_locks.hold(col, sub_id):
            await col.update_one({"_id": sub_id}, update)

    async def _retry(self, note: Doc, error: str) -> None:
        attempts = int(note.get("attempts", 0)) + 1
        at = utcnow() + timedelta(seconds=self.backoff(attempts))
        notes = self.db[NOTIFICATIONS]
        async with doc_locks.hold(notes, note["_id"]):
            await notes.update_one(
                {"_id": note["_id"]},
                {"$set": {"attempts": attempts, "last_error": error, "next_attempt_at": at, "updated_at": utcnow()}},
            )
        await self.db[DELIVERIES].update_one({"_id": note["_id"]}, {"$set": {"next_attempt_at": at}})
        log.info("delivery %s failed (attempt %d): %s; next at %s", note["_id"], attempts, error, at)

    async def _finish(
        self, note: Doc, outcome: str, *, error: str | None = None, attempted: bool | None = None
    ) -> None:
        if attempted is None:
            attempted = outcome in (SENT, FAILED)
        attempts = int(note.get("attempts", 0)) + (1 if attempted else 0)
        fields: Doc = {"outcome": outcome, "attempts": attempts, "next_attempt_at": None, "updated_at": utcnow()}
        if outcome == SENT:
            fields["sent_at"] = utcnow()
        if error is not None:
            fields["last_error"] = error
        notes = self.db[NOTIFICATIONS]
        async with doc_locks.hold(notes, note["_id"]):
            await notes.update_one({"_id": note["_id"]}, {"$set": fields})
        await self.db[DELIVERIES].delete_one({"_id": note["_id"]})
