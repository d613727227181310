"""Composition root of the notifier: the Service, its consumers, the scheduler and delivery worker, the API."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from shared.service import Service
from shared.settings import decode_key
from shared.unit_paths import attach_unit_paths

from . import api, store
from .consumers import Notices, SubscriptionCache, register
from .crypto import SecretCipher, encrypt_plain_secrets
from .delivery import DeliveryWorker
from .scheduler import Scheduler
from .settings import NotifierSettings

log = logging.getLogger("stvs.notifier")


class Notifier:
    """One notifier process. ``holder`` names its leases (tests run two replicas in one process)."""

    def __init__(self, settings: NotifierSettings | None = None, *, holder: str | None = None) -> None:
        self.settings = settings or NotifierSettings()
        self.service = Service(
            "notifier", self.settings, indexes=store.indexes(), outbox_collections=[store.SLOT_BATCHES]
        )
        self.cipher = SecretCipher(decode_key(self.settings.webhook_secret_key.get_secret_value()))
        self.subscriptions = SubscriptionCache(self.service.db, self.settings.subscription_cache_s)
        register(self.service, self.settings, self.subscriptions)
        attach_unit_paths(self.service)  # the unit tree the scope rule needs (shared.scope)
        self.notices = Notices(self.service.db, self.settings)
        self.scheduler = Scheduler(self.service, self.settings, self.notices, holder=holder)
        self.delivery = DeliveryWorker(
            self.service, self.settings, self.notices, self.subscriptions, holder=holder, cipher=self.cipher
        )
        self.service.background.append(self.encrypt_plain_secrets)
        if self.settings.scheduler_enabled:
            self.service.background.append(self.scheduler.loop)
        if self.settings.delivery_enabled:
            self.service.background.append(self.delivery.loop)
        self.app = self.service.create_app(
            api.router(self),
            title="科技志愿服务 通知服务",
            description="截止提醒、志愿者通知、Webhook 订阅与通知记录",
        )
        self.app.state.notifier = self

    async def encrypt_plain_secrets(self) -> None:
        """At start: encrypt subscribers' secrets stored in plain text before encryption (they work meanwhile)."""
        try:
            await encrypt_plain_secrets(self.service.db, store.SUBSCRIPTIONS, self.cipher)
        except Exception:
            log.warning("plain webhook secrets not encrypted yet; tried again at the next start", exc_info=True)


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    return Notifier(settings).app
