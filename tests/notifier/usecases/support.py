"""Use cases wired on the in-memory port: no Kafka, no database."""

from __future__ import annotations

from typing import Any

from services.notifier.domain import UnitObligations, UnitRegistered
from services.notifier.settings import NotifierSettings
from services.notifier.usecases import DeliveryWorker, Notices, Scheduler
from services.notifier.usecases.ports import UnitCopy
from tests.notifier.support import at
from tests.notifier.usecases.memory import MemoryLease, MemoryStore, PlainSecrets, RecordingMailer, StubWebhooks


def settings(**overrides: Any) -> NotifierSettings:
    values: dict[str, Any] = {"campaign_year": 2026, "delivery_backoff_base_s": 0.01, "delivery_backoff_cap_s": 0.02}
    return NotifierSettings(**{**values, **overrides})


def registered_unit(store: MemoryStore, unit_id: str, *, email: str | None = None) -> None:
    """A unit registered on 1 April 2026 without its contact person (附件3): its registration is still open."""
    facts = UnitObligations(unit_id).apply(UnitRegistered(unit_id, at("2026-04-01 10:00")))
    contact = {"email": email} if email else None
    store.units_[unit_id] = UnitCopy(facts, name=f"单位{unit_id}", status="approved", version=1, contact=contact)


def scheduler(store: MemoryStore, config: NotifierSettings | None = None, holder: str = "a") -> Scheduler:
    config = config or settings()
    return Scheduler(store, config, Notices(store, config), MemoryLease(holder))


def worker(store: MemoryStore, config: NotifierSettings | None = None, **senders: Any) -> DeliveryWorker:
    config = config or settings()
    return DeliveryWorker(
        store,
        config,
        Notices(store, config),
        lease=MemoryLease(),
        mailer=senders.get("mailer") or RecordingMailer(),
        webhooks=senders.get("webhooks") or StubWebhooks(),
        secrets=PlainSecrets(),
    )
