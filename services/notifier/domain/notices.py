"""Notices: who hears what, through which channel, and what happens to a notice that could not be sent.

A notice is logged once (its id is ``<event id>:<recipient>:<channel>``); e-mail and webhooks are queued and retried
with backoff until sent or given up, an in-platform (inbox) notice is delivered when it is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.calendar import SHANGHAI

from .deadlines import SlotKey

# Channels and outcomes of a notification.
EMAIL = "email"
WEBHOOK = "webhook"
INBOX = "inbox"
PENDING = "pending"  # queued, being retried
SENT = "sent"  # accepted by the SMTP server / the subscriber answered 2xx
DELIVERED = "delivered"  # an in-platform (inbox) notice, listed through the API
FAILED = "failed"  # given up (permanent error, attempts exhausted, bad template)
PAUSED = "paused"  # the subscriber is paused: not sent
OUTCOMES = (PENDING, SENT, DELIVERED, FAILED, PAUSED)
CHANNELS = (EMAIL, WEBHOOK, INBOX)

PROVINCE = "province"
VOLUNTEER_FALLBACK_NAME = "志愿者"
PAUSED_NOTICE = "subscription_paused"
PARKED_REASON = "订阅已暂停，恢复后补发"
SUBSCRIPTION_GONE = "订阅已删除，未投递"


def unit_recipient(unit_id: str) -> str:
    return f"unit:{unit_id}"


def volunteer_recipient(volunteer_id: str) -> str:
    return f"volunteer:{volunteer_id}"


def subscription_recipient(subscription_id: str) -> str:
    return f"subscription:{subscription_id}"


def notification_id(event_id: str, recipient: str, channel: str) -> str:
    return f"{event_id}:{recipient}:{channel}"


def slot_id(key: SlotKey) -> str:
    return f"{key.deadline_id}|{key.unit_id}|{key.slot}"


def channel_for(address: str | None) -> str:
    """E-mail when there is an address, else the recipient's in-platform inbox."""
    return EMAIL if address else INBOX


class SendError(Exception):
    """A send that did not go through; ``permanent`` when trying again cannot help (a 5xx refusal)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def gives_up(error: SendError, attempts: int, max_attempts: int) -> bool:
    """After its ``attempts``-th failed try, is an e-mail given up (``failed``) rather than retried?"""
    return error.permanent or attempts >= max_attempts


@dataclass(frozen=True)
class Failing:
    """A webhook subscriber's failure streak: since when it fails, and how long until it is paused."""

    since: datetime
    pause_after: timedelta

    def pauses_at(self, now: datetime) -> bool:
        return now - self.since >= self.pause_after


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
