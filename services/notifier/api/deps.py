"""What the notifier's routes depend on: who may call (roles), and the use cases the composition root put on the
app (``app.state.usecases``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.notifier.usecases import Inbox, Subscriptions
from shared.identity import Identity, require_roles


@dataclass(frozen=True)
class RouteUseCases:
    subscriptions: Subscriptions
    inbox: Inbox


def _usecases(request: Request) -> RouteUseCases:
    found: RouteUseCases = request.app.state.usecases
    return found


def _subscriptions(request: Request) -> Subscriptions:
    return _usecases(request).subscriptions


def _inbox(request: Request) -> Inbox:
    return _usecases(request).inbox


Managers = Annotated[Identity, require_roles("province_admin", "system")]
Anyone = Annotated[Identity, require_roles("province_admin", "unit_admin", "volunteer", "system")]
SubscriptionsDep = Annotated[Subscriptions, Depends(_subscriptions)]
InboxDep = Annotated[Inbox, Depends(_inbox)]
