"""Webhook subscriptions: register, list, delete, resume (province admins and system keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from services.notifier.usecases import NewSubscription
from services.notifier.usecases.ports import Doc
from shared.access import PROVINCE_ONLY, access

from .deps import Managers, SubscriptionsDep
from .schemas import SubscriptionCreated, SubscriptionIn, SubscriptionOut

router = APIRouter(tags=["通知"])

_PUBLIC = ("url", "event_types", "status", "contact_email", "description", "created_at")
_FAILURE = ("failing_since", "paused_at", "last_error")


def subscription_out(doc: Doc) -> dict[str, Any]:
    return {"id": doc["_id"], **{k: doc.get(k) for k in _PUBLIC}, **{k: doc.get(k) for k in _FAILURE}}


@router.post(
    "/subscriptions",
    openapi_extra=PROVINCE_ONLY,
    status_code=201,
    response_model=SubscriptionCreated,
    summary="登记 Webhook 订阅",
)
async def create_subscription(
    body: SubscriptionIn, identity: Managers, subscriptions: SubscriptionsDep
) -> SubscriptionCreated:
    new = NewSubscription(body.url, body.event_types, body.contact_email, body.description)
    doc, secret = await subscriptions.create(new, created_by=identity.subject)
    return SubscriptionCreated.model_validate({**subscription_out(doc), "secret": secret})


@router.get(
    "/subscriptions", openapi_extra=access("system"), response_model=list[SubscriptionOut], summary="列出 Webhook 订阅"
)
async def list_subscriptions(identity: Managers, subscriptions: SubscriptionsDep) -> list[SubscriptionOut]:
    return [SubscriptionOut.model_validate(subscription_out(d)) for d in await subscriptions.list()]


@router.delete(
    "/subscriptions/{subscription_id}", openapi_extra=PROVINCE_ONLY, status_code=204, summary="删除 Webhook 订阅"
)
async def delete_subscription(subscription_id: str, identity: Managers, subscriptions: SubscriptionsDep) -> Response:
    await subscriptions.delete(subscription_id)
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/resume",
    openapi_extra=PROVINCE_ONLY,
    response_model=SubscriptionOut,
    summary="恢复已暂停的订阅",
)
async def resume_subscription(
    subscription_id: str, identity: Managers, subscriptions: SubscriptionsDep
) -> SubscriptionOut:
    return SubscriptionOut.model_validate(subscription_out(await subscriptions.resume(subscription_id)))
