"""Webhook subscriptions on the in-memory port: a refused address or an unknown event type is refused before anything
is stored; the secret is shown once and stored only encrypted."""

from __future__ import annotations

import pytest

from services.notifier.domain.errors import SubscriptionNotFound, UnknownEventTypes
from services.notifier.domain.webhooks import SubscriberUrlError
from services.notifier.usecases import NewSubscription, Subscriptions
from tests.notifier.usecases.memory import MemoryStore, PlainSecrets

EVENT = "stvs.unit.registered.v1"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "https://localhost/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://2130706433/",
    ],
)
async def test_a_webhook_to_a_refused_address_is_refused(url: str) -> None:
    store = MemoryStore()
    subscriptions = Subscriptions(store, PlainSecrets(), production=True)
    with pytest.raises(SubscriberUrlError):
        await subscriptions.create(NewSubscription(url, [EVENT]), created_by="admin")
    assert store.subs == {} and store.changes == 0


async def test_outside_production_a_local_receiver_is_accepted() -> None:
    store = MemoryStore()
    doc, secret = await Subscriptions(store, PlainSecrets(), production=False).create(
        NewSubscription("http://127.0.0.1:9/hook", [EVENT, EVENT]), created_by="admin"
    )
    assert secret.startswith("whsec_") and doc["event_types"] == [EVENT]
    assert store.subs[doc["_id"]]["secret_enc"] == "plain:" + secret and "secret" not in store.subs[doc["_id"]]
    assert store.changes == 1, "every replica's subscriber list is told"


async def test_an_unknown_event_type_is_refused() -> None:
    store = MemoryStore()
    with pytest.raises(UnknownEventTypes) as refused:
        await Subscriptions(store, PlainSecrets(), production=False).create(
            NewSubscription("https://hooks.example.org/", ["stvs.nope.v1", EVENT]), created_by="admin"
        )
    assert refused.value.types == ["stvs.nope.v1"] and store.subs == {}


async def test_resuming_an_unknown_subscription_is_not_found() -> None:
    with pytest.raises(SubscriptionNotFound):
        await Subscriptions(MemoryStore(), PlainSecrets(), production=False).resume("sub_nope")
