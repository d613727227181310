"""Composition root of the notifier: settings → adapters (MongoDB, SMTP, webhook HTTP, secrets) → use cases →
routers and consumers, and the background loops (scheduler, delivery worker)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from shared.lease import Lease
from shared.service import Service
from shared.settings import decode_key

from . import api, consumers
from .adapters import mongo
from .adapters.crypto import SecretCipher, encrypt_plain_secrets
from .adapters.mongo_delivery import MongoDelivery
from .adapters.mongo_notices import MongoNotices, SubscriptionCache
from .adapters.mongo_reminders import MongoReminders
from .adapters.smtp import SmtpMailer
from .adapters.webhook_http import WebhookClient
from .api.deps import RouteUseCases
from .api.errors import install as install_errors
from .settings import NotifierSettings
from .usecases import (
    Copies,
    DeliveryWorker,
    FanOut,
    Inbox,
    Notices,
    Obligations,
    Reviews,
    Scheduler,
    Subscriptions,
)

log = logging.getLogger("stvs.notifier")


class Notifier:
    """One notifier process. ``holder`` names its leases (tests run two replicas in one process)."""

    def __init__(self, settings: NotifierSettings | None = None, *, holder: str | None = None) -> None:
        self.settings = s = settings or NotifierSettings()
        self.service = Service("notifier", s, indexes=mongo.indexes(), outbox_collections=[mongo.SLOT_BATCHES])
        db = self.service.db
        self.cipher = SecretCipher(decode_key(s.webhook_secret_key.get_secret_value()))
        self.store = MongoNotices(db, SubscriptionCache(db, s.subscription_cache_s))
        self.webhook_client = WebhookClient(s)

        self.notices = Notices(self.store, s)
        self.copies = Copies(self.store)
        handlers = consumers.Handlers(
            Obligations(self.store),
            self.notices,
            self.copies,
            FanOut(self.store, mongo.next_seq),
            Reviews(self.notices),
        )
        self.handlers = handlers
        consumers.register(self.service, handlers)

        scheduler_lease = Lease(db, "notifier-scheduler", ttl_s=max(30.0, s.scheduler_interval_s * 3), holder=holder)
        recover_after_s = max(300.0, scheduler_lease.ttl.total_seconds() * 4)
        reminders = MongoReminders(self.service.outbox, scheduler_lease.holder, recover_after_s)
        self.scheduler = Scheduler(reminders, s, self.notices, scheduler_lease)
        delivery_lease = Lease(db, "notifier-delivery", ttl_s=max(30.0, s.delivery_poll_interval_s * 5), holder=holder)
        self.delivery = DeliveryWorker(
            MongoDelivery(db),
            s,
            self.notices,
            lease=delivery_lease,
            mailer=SmtpMailer(s),
            webhooks=self.webhook_client,
            secrets=self.cipher,
            subscriptions_changed=self.store.subscriptions_changed,
        )
        self.service.background.append(self.encrypt_plain_secrets)
        if s.scheduler_enabled:
            self.service.background.append(self.scheduler.loop)
        if s.delivery_enabled:
            self.service.background.append(self.delivery.loop)

        self.app = self.service.create_app(
            *api.ROUTERS, title="科技志愿服务 通知服务", description="截止提醒、志愿者通知、Webhook 订阅与通知记录"
        )
        install_errors(self.app)
        self.app.state.usecases = RouteUseCases(
            subscriptions=Subscriptions(self.store, self.cipher, production=s.production), inbox=Inbox(self.store, s)
        )
        self.app.state.notifier = self

    async def encrypt_plain_secrets(self) -> None:
        """At start: encrypt subscribers' secrets stored in plain text before encryption (they work meanwhile)."""
        try:
            await encrypt_plain_secrets(self.service.db, mongo.SUBSCRIPTIONS, self.cipher)
        except Exception:
            log.warning("plain webhook secrets not encrypted yet; tried again at the next start", exc_info=True)


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    return Notifier(settings).app
