"""HTTP API of the notifier: webhook subscriptions, the notification log, the campaign calendar, obligations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, EmailStr, Field
from pymongo import ReturnDocument

from shared import clock
from shared.contracts.events import EVENT_TYPES
from shared.identity import Identity, require_roles
from shared.problems import Problem, out_of_scope
from shared.storage import MAX_PAGE_OFFSET
from shared.unit_paths import SCOPE_UNITS
from shared.unit_paths import reach as scope_reach

from . import domain
from .crypto import SECRET_FIELD
from .store import (
    CHANNELS,
    NOTIFICATIONS,
    OUTCOMES,
    SUBSCRIPTIONS,
    UNITS,
    public_notification,
    unit_obligations,
    unpark,
)
from .webhooks import SubscriberUrlError, new_secret, validate_subscriber_url

if TYPE_CHECKING:
    from .app import Notifier


MANAGERS = require_roles("province_admin", "system")
ANYONE = require_roles("province_admin", "unit_admin", "volunteer", "system")


# ---------------------------------------------------------------- models


class SubscriptionIn(BaseModel):
    url: str = Field(max_length=2000, description="Where deliveries are POSTed (http/https)")
    event_types: list[str] = Field(
        min_length=1, max_length=200, description="Event types wanted, e.g. stvs.unit.registered.v1"
    )
    contact_email: EmailStr | None = Field(None, description="Told when the subscription is paused")
    description: str | None = Field(None, max_length=200)


class SubscriptionOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    status: Literal["active", "paused"]
    contact_email: str | None = None
    description: str | None = None
    created_at: datetime
    failing_since: datetime | None = None
    paused_at: datetime | None = None
    last_error: str | None = None


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="Signing secret (whsec_…): shown only once")


class NotificationOut(BaseModel):
    id: str
    event_id: str | None
    event_type: str | None
    kind: str | None
    recipient: str | None
    address: str | None
    unit_id: str | None
    channel: str | None
    subject: str | None
    body: str | None
    attempts: int
    outcome: str | None
    last_error: str | None
    created_at: datetime | None
    sent_at: datetime | None
    next_attempt_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    limit: int
    offset: int


class DeadlineOut(BaseModel):
    id: str
    kind: str
    title: str
    action: str
    due_at: datetime
    period: str | None
    obligations: list[str]
    reminders_at: list[datetime]


class ObligationOut(BaseModel):
    deadline_id: str
    title: str
    kind: str
    due_at: datetime
    open: bool
    closed_at: datetime | None
    late: bool


class UnitObligationsOut(BaseModel):
    unit_id: str
    name: str | None
    year: int
    obligations: list[ObligationOut]


def _subscription(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        **{k: doc.get(k) for k in ("url", "event_types", "status", "contact_email", "description", "created_at")},
        **{k: doc.get(k) for k in ("failing_since", "paused_at", "last_error")},
    }


# ---------------------------------------------------------------- routes


def router(notifier: Notifier) -> APIRouter:
    """The notifier's routes, bound to its process parts."""
    r = APIRouter(tags=["通知"])

    @r.post("/subscriptions", status_code=201, response_model=SubscriptionCreated, summary="登记 Webhook 订阅")
    async def create_subscription(body: SubscriptionIn, identity: Identity = MANAGERS) -> dict[str, Any]:
        unknown = sorted({t for t in body.event_types if t not in EVENT_TYPES})
        if unknown:
            raise Problem(
                422,
                "unknown_event_type",
                f"未知的事件类型：{'、'.join(unknown)}",
                errors=[
                    {"field": "event_types", "message": f"未知的事件类型：{t}", "type": "unknown_event_type"}
                    for t in unknown
                ],
            )
        try:
            url = validate_subscriber_url(body.url, production=notifier.settings.production)
        except SubscriberUrlError as exc:
            raise Problem(
                422, "bad_subscriber_url", str(exc), errors=[{"field": "url", "message": str(exc), "type": "url"}]
            ) from exc
        sub_id = "sub_" + uuid.uuid4().hex
        secret = new_secret()
        doc = {
            "_id": sub_id,
            "url": url,
            "event_types": sorted(set(body.event_types)),
            "status": "active",
            "contact_email": body.contact_email,
            "description": body.description,
            SECRET_FIELD: notifier.cipher.encrypt(secret, sub_id),  # only the ciphertext is stored
            "created_at": clock.now(),
            "created_by": identity.subject,
            "failing_since": None,
            "paused_at": None,
            "last_error": None,
        }
        await notifier.service.db[SUBSCRIPTIONS].insert_one(doc)
        notifier.subscriptions.invalidate()
        return {**_subscription(doc), "secret": secret}

    @r.get("/subscriptions", response_model=list[SubscriptionOut], summary="列出 Webhook 订阅")
    async def list_subscriptions(identity: Identity = MANAGERS) -> list[dict[str, Any]]:
        docs = [d async for d in notifier.service.db[SUBSCRIPTIONS].find({}).sort("created_at", 1)]
        return [_subscription(d) for d in docs]

    @r.delete("/subscriptions/{subscription_id}", status_code=204, summary="删除 Webhook 订阅")
    async def delete_subscription(subscription_id: str, identity: Identity = MANAGERS) -> Response:
        result = await notifier.service.db[SUBSCRIPTIONS].delete_one({"_id": subscription_id})
        if not result.deleted_count:
            raise Problem(404, "subscription_not_found", "未找到该订阅")
        notifier.subscriptions.invalidate()
        return Response(status_code=204)

    @r.post("/subscriptions/{subscription_id}/resume", response_model=SubscriptionOut, summary="恢复已暂停的订阅")
    async def resume_subscription(subscription_id: str, identity: Identity = MANAGERS) -> dict[str, Any]:
        fields = {"status": "active", "paused_at": None, "failing_since": None, "retry_at": None, "last_error": None}
        doc = await notifier.service.db[SUBSCRIPTIONS].find_one_and_update(
            {"_id": subscription_id}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            raise Problem(404, "subscription_not_found", "未找到该订阅")
        notifier.subscriptions.invalidate()
        # What it missed while paused goes out now, each once, in the order it was logged.
        await unpark(notifier.service.db, subscription_id)
        return _subscription(doc)

    @r.get("/notifications", response_model=NotificationPage, summary="通知记录（谁、什么、渠道、次数、结果）")
    async def list_notifications(
        identity: Identity = ANYONE,
        unit: str | None = None,
        channel: Literal["email", "webhook", "inbox"] | None = None,
        outcome: Literal["pending", "sent", "delivered", "failed", "paused"] | None = None,
        recipient: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET)] = 0,
    ) -> dict[str, Any]:
        assert channel is None or channel in CHANNELS
        assert outcome is None or outcome in OUTCOMES
        reach = await scope_reach(identity, notifier.service.db[SCOPE_UNITS])
        query: dict[str, Any] = {}
        if identity.role == "system":
            raise Problem(403, "forbidden_role", "系统账号不能读取通知记录（含个人信息）")
        if identity.role == "unit_admin":
            if unit is not None and not reach.unit(unit):
                raise out_of_scope(read=True)
            if unit is None:
                query["unit_id"] = {"$in": sorted(reach.units or ())}  # its unit's and those below it
        elif identity.role == "volunteer":
            own = f"volunteer:{identity.volunteer_id}"
            if recipient is not None and recipient != own:
                raise out_of_scope(read=True)
            recipient = own
        for field, value in (("unit_id", unit), ("channel", channel), ("outcome", outcome), ("recipient", recipient)):
            if value is not None:
                query[field] = value
        col = notifier.service.db[NOTIFICATIONS]
        total = await col.count_documents(query)
        cursor = col.find(query, {"payload": 0}).sort([("created_at", -1), ("_id", 1)]).skip(offset).limit(limit)
        items = [public_notification(d) async for d in cursor]
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @r.get("/deadlines", response_model=list[DeadlineOut], summary="年度截止日历（北京时间）")
    async def deadlines(
        identity: Identity = ANYONE, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
    ) -> list[dict[str, Any]]:
        calendar = notifier.settings.calendar(year)
        return [
            {
                "id": d.id,
                "kind": d.kind.value,
                "title": d.title_zh,
                "action": d.action_zh,
                "due_at": d.due_at,
                "period": d.period,
                "obligations": [k.value for k in d.checks],
                "reminders_at": [domain.reminder_at(d, o, calendar.reminder_hour) for o in calendar.offsets_days],
            }
            for d in calendar.deadlines
        ]

    @r.get("/obligations/{unit_id}", response_model=UnitObligationsOut, summary="单位的报送义务")
    async def obligations(
        unit_id: str,
        identity: Identity = ANYONE,
        year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    ) -> dict[str, Any]:
        reach = await scope_reach(identity, notifier.service.db[SCOPE_UNITS], system_reads=True)
        if identity.role == "volunteer" or not reach.unit(unit_id):
            raise out_of_scope(read=True)  # its unit's and those below it (shared.scope); nothing else, not even 403
        doc = await notifier.service.db[UNITS].find_one({"_id": unit_id})
        if doc is None or doc.get("registered_at") is None:
            raise Problem(404, "unit_not_found", "未找到该单位（尚未收到其注册信息）")
        calendar = notifier.settings.calendar(year)
        items = [
            {
                "deadline_id": o.deadline.id,
                "title": o.deadline.title_zh,
                "kind": o.kind.value,
                "due_at": o.deadline.due_at,
                "open": o.is_open,
                "closed_at": o.closed_at,
                "late": o.closed_at is not None and domain.has_passed(o.deadline.due_at, o.closed_at),
            }
            for o in unit_obligations(doc).obligations(calendar)
        ]
        return {"unit_id": unit_id, "name": doc.get("name"), "year": calendar.year, "obligations": items}

    return r
