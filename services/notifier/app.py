"""Composition root of the notifier: the Service, its consumers, the scheduler and delivery worker, the API."""

from __future__ import annotations

from fastapi import FastAPI

from shared.service import Service

from . import api, store
from .consumers import Notices, SubscriptionCache, register
from .delivery import DeliveryWorker
from .scheduler import Scheduler
from .settings import NotifierSettings


class Notifier:
    """One notifier process. ``holder`` names its leases (tests run two replicas in one process)."""

    def __init__(self, settings: NotifierSettings | None = None, *, holder: str | None = None) -> None:
        self.settings = settings or NotifierSettings()
        self.service = Service("notifier", self.settings, indexes=store.indexes(), outbox_collections=[store.SLOTS])
        self.subscriptions = SubscriptionCache(self.service.db, self.settings.subscription_cache_s)
        register(self.service, self.settings, self.subscriptions)
        self.notices = Notices(self.service.db, self.settings)
        self.scheduler = Scheduler(self.service, self.settings, self.notices, holder=holder)
        self.delivery = DeliveryWorker(self.service, self.settings, self.notices, self.subscriptions, holder=holder)
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


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    return Notifier(settings).app
