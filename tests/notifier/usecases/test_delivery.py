"""Delivery on the in-memory port: an e-mail is retried with backoff, then given up (``failed``) after its last
attempt or at once on a permanent refusal; a failing webhook subscriber is retried, then paused."""

from __future__ import annotations

from datetime import timedelta

from services.notifier.domain.notices import FAILED, PAUSED, PENDING, SENT
from services.notifier.usecases import Notices
from shared import clock
from tests.notifier.usecases.memory import FailingMailer, MemoryStore, RecordingMailer, StubWebhooks
from tests.notifier.usecases.support import settings, worker

NOTE = "evt-1:unit:u1:email"


async def _queued_mail(store: MemoryStore) -> None:
    notices = Notices(store, settings())
    await notices.notify(
        None,
        recipient="unit:u1",
        unit_id="u1",
        address="contact@u1.example.org",
        template="x",
        rendered=("主题", "正文"),
        event_id="evt-1",
    )


async def test_a_delivery_is_retried_then_dead() -> None:
    store = MemoryStore()
    await _queued_mail(store)
    mailer = FailingMailer()
    w = worker(store, settings(email_max_attempts=3), mailer=mailer)
    assert await w.attempt(NOTE) is False
    note = store.notices[NOTE]
    assert (note["outcome"], note["attempts"]) == (PENDING, 1)
    assert store.queue[NOTE]["next_attempt_at"] == note["next_attempt_at"], "queued again for its retry"
    assert await w.attempt(NOTE) is False
    assert store.notices[NOTE]["attempts"] == 2 and NOTE in store.queue
    assert await w.attempt(NOTE) is True  # the last attempt: given up, logged, dequeued
    note = store.notices[NOTE]
    assert (note["outcome"], note["attempts"], mailer.tries) == (FAILED, 3, 3)
    assert "不可达" in note["last_error"]
    assert NOTE not in store.queue
    assert await w.attempt(NOTE) is True and mailer.tries == 3, "a failed notice is never sent again"


async def test_a_permanent_refusal_is_dead_at_once() -> None:
    store = MemoryStore()
    await _queued_mail(store)
    w = worker(store, settings(email_max_attempts=12), mailer=FailingMailer(permanent=True))
    assert await w.attempt(NOTE) is True
    assert (store.notices[NOTE]["outcome"], store.notices[NOTE]["attempts"]) == (FAILED, 1)


async def test_the_worker_sends_what_is_due_once() -> None:
    store = MemoryStore()
    await _queued_mail(store)
    mailer = RecordingMailer()
    w = worker(store, mailer=mailer)
    assert await w.work_once(use_lease=False) == 1
    assert await w.work_once(use_lease=False) == 0
    assert mailer.sent == [("contact@u1.example.org", "主题", "正文")]
    assert store.notices[NOTE]["outcome"] == SENT and not store.queue


async def _subscriber(store: MemoryStore, failing_for: timedelta | None = None) -> None:
    since = clock.now() - failing_for if failing_for is not None else None
    store.subs["sub_1"] = {
        "_id": "sub_1",
        "url": "https://hooks.example.org/in",
        "event_types": ["stvs.unit.registered.v1"],
        "status": "active",
        "secret_enc": "plain:whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==",
        "failing_since": since,
        "contact_email": None,
    }
    note = {
        "_id": "evt-9:subscription:sub_1:webhook",
        "event_id": "evt-9",
        "channel": "webhook",
        "subscription_id": "sub_1",
        "payload": "{}",
        "outcome": PENDING,
        "attempts": 0,
        "created_at": clock.now(),
    }
    await store.log_webhooks(
        [note], [{"_id": note["_id"], "channel": "webhook", "subscription_id": "sub_1", "next_attempt_at": clock.now()}]
    )


async def test_a_failing_subscriber_is_retried_then_paused() -> None:
    store = MemoryStore()
    await _subscriber(store)
    refused = StubWebhooks(error="订阅地址解析到本机地址（127.0.0.1），已拒绝投递")
    w = worker(store, settings(webhook_pause_after_s=3600), webhooks=refused)
    assert await w.attempt("evt-9:subscription:sub_1:webhook") is False
    assert store.subs["sub_1"]["failing_since"] is not None and store.subs["sub_1"]["status"] == "active"
    assert "已拒绝投递" in store.notices["evt-9:subscription:sub_1:webhook"]["last_error"]

    store2 = MemoryStore()
    await _subscriber(store2, failing_for=timedelta(hours=2))
    w2 = worker(store2, settings(webhook_pause_after_s=3600), webhooks=refused)
    assert await w2.attempt("evt-9:subscription:sub_1:webhook") is False
    assert store2.subs["sub_1"]["status"] == PAUSED
    assert store2.notices["evt-9:subscription:sub_1:webhook"]["outcome"] == PAUSED
    assert "evt-9:subscription:sub_1:webhook" in store2.parked, "kept for the subscriber's resumption"
    told = [n for n in store2.notices.values() if n.get("kind") == "subscription_paused"]
    assert len(told) == 1 and told[0]["channel"] == "inbox"
