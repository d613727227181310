"""Webhook subscriptions: register one (its secret shown once, stored encrypted), list, delete, resume a paused one
(what it missed goes out then, each once, in the order it was logged)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from services.notifier.domain.errors import SubscriptionNotFound, UnknownEventTypes
from services.notifier.domain.webhooks import new_secret, validate_subscriber_url
from shared import clock
from shared.contracts.events import EVENT_TYPES

from .ports import SECRET_FIELD, Doc, SecretKeeper, SubscriptionStore


@dataclass(frozen=True)
class NewSubscription:
    url: str
    event_types: Sequence[str]
    contact_email: str | None = None
    description: str | None = None


class Subscriptions:
    def __init__(self, store: SubscriptionStore, secrets: SecretKeeper, *, production: bool) -> None:
        self.store = store
        self.secrets = secrets
        self.production = production

    async def create(self, new: NewSubscription, created_by: str) -> tuple[Doc, str]:
        """The stored subscription and its signing secret (shown this once). Raises ``UnknownEventTypes``,
        ``SubscriberUrlError``."""
        unknown = sorted({t for t in new.event_types if t not in EVENT_TYPES})
        if unknown:
            raise UnknownEventTypes(unknown)
        url = validate_subscriber_url(new.url, production=self.production)
        sub_id = "sub_" + uuid.uuid4().hex
        secret = new_secret()
        doc: Doc = {
            "_id": sub_id,
            "url": url,
            "event_types": sorted(set(new.event_types)),
            "status": "active",
            "contact_email": new.contact_email,
            "description": new.description,
            SECRET_FIELD: self.secrets.encrypt(secret, sub_id),
            "created_at": clock.now(),
            "created_by": created_by,
            "failing_since": None,
            "paused_at": None,
            "last_error": None,
        }
        await self.store.add_subscription(doc)
        self.store.subscriptions_changed()
        return doc, secret

    async def list(self) -> list[Doc]:
        return await self.store.list_subscriptions()

    async def delete(self, sub_id: str) -> None:
        if not await self.store.delete_subscription(sub_id):
            raise SubscriptionNotFound
        self.store.subscriptions_changed()

    async def resume(self, sub_id: str) -> Doc:
        doc = await self.store.resume_subscription(sub_id)
        if doc is None:
            raise SubscriptionNotFound
        self.store.subscriptions_changed()
        # What it missed while paused goes out now, each once, in the order it was logged.
        await self.store.unpark(sub_id)
        return doc
