"""The campaign calendar (Beijing time) and a unit's obligations towards it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from shared.access import access

from .deps import Anyone, InboxDep
from .schemas import DeadlineOut, ObligationOut, UnitObligationsOut

router = APIRouter(tags=["通知"])

Year = Annotated[int | None, Query(ge=2000, le=2100)]


@router.get(
    "/deadlines",
    openapi_extra=access("unit_admin", "system"),
    response_model=list[DeadlineOut],
    summary="年度截止日历（北京时间）",
)
async def deadlines(identity: Anyone, inbox: InboxDep, year: Year = None) -> list[DeadlineOut]:
    calendar, found = inbox.deadlines(year)
    return [
        DeadlineOut(
            id=d.id,
            kind=d.kind.value,
            title=d.title_zh,
            action=d.action_zh,
            due_at=d.due_at,
            period=d.period,
            obligations=[k.value for k in d.checks],
            reminders_at=inbox.reminders_at(calendar, d),
        )
        for d in found
    ]


@router.get(
    "/obligations/{unit_id}",
    openapi_extra=access("unit_admin", "system", units=["path:unit_id"]),
    response_model=UnitObligationsOut,
    summary="单位的报送义务",
)
async def obligations(unit_id: str, identity: Anyone, inbox: InboxDep, year: Year = None) -> UnitObligationsOut:
    standing = await inbox.obligations(identity, unit_id, year)
    items = [
        ObligationOut(
            deadline_id=o.deadline.id,
            title=o.deadline.title_zh,
            kind=o.kind.value,
            due_at=o.deadline.due_at,
            open=o.is_open,
            closed_at=o.closed_at,
            late=standing.late(o),
        )
        for o in standing.obligations
    ]
    return UnitObligationsOut(unit_id=unit_id, name=standing.name, year=standing.calendar.year, obligations=items)
