"""The notification log: who heard what, through which channel, how many attempts, the outcome."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from services.notifier.usecases.ports import NotificationFilter
from shared.access import access
from shared.storage import MAX_PAGE_OFFSET

from .deps import Anyone, InboxDep
from .schemas import NotificationPage

router = APIRouter(tags=["通知"])


@router.get(
    "/notifications",
    openapi_extra=access("unit_admin", "volunteer:self", units=["query:unit"], me=["query:recipient=volunteer:"]),
    response_model=NotificationPage,
    summary="通知记录（谁、什么、渠道、次数、结果）",
)
async def list_notifications(
    identity: Anyone,
    inbox: InboxDep,
    unit: str | None = None,
    channel: Literal["email", "webhook", "inbox"] | None = None,
    outcome: Literal["pending", "sent", "delivered", "failed", "paused"] | None = None,
    recipient: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET)] = 0,
) -> NotificationPage:
    where = NotificationFilter(unit=unit, channel=channel, outcome=outcome, recipient=recipient)
    page = await inbox.notifications(identity, where, limit, offset)
    return NotificationPage.model_validate(
        {"items": page.items, "total": page.total, "limit": page.limit, "offset": page.offset}
    )
