"""Routes of activities: create, revise, publish, start, complete, cancel, publicity, read, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from services.activities.domain import ActivitySort, ActivityStatus
from services.activities.usecases import activities, search
from shared.access import access
from shared.identity import Identity, IdentityDep
from shared.programme import CITY_LEVEL_AREAS, LineOfWork, Theme
from shared.storage import MAX_PAGE_OFFSET

from .deps import ADMINS, ActivityId, StorageDep
from .schemas import ActivityBody, ActivityOut, ActivityPage, CancelBody, PublicityBody

router = APIRouter(tags=["活动"])


@router.post(
    "/activities",
    openapi_extra=access("unit_admin", units=["body:unit_id"]),
    status_code=201,
    summary="创建活动（草稿）",
    response_model_exclude_unset=True,
)
async def create(storage: StorageDep, body: ActivityBody, identity: Identity = ADMINS) -> ActivityOut:
    return ActivityOut.of(await activities.create(storage, body.given(), identity))


@router.patch(
    "/activities/{activity_id}",
    openapi_extra=access("unit_admin", units=["body:unit_id"]),
    summary="修改活动信息",
    response_model_exclude_unset=True,
)
async def revise(
    storage: StorageDep, activity_id: ActivityId, body: ActivityBody, identity: Identity = ADMINS
) -> ActivityOut:
    return ActivityOut.of(await activities.revise(storage, activity_id, body.given(), identity))


@router.post(
    "/activities/{activity_id}/publish",
    openapi_extra=access("unit_admin"),
    summary="发布活动",
    response_model_exclude_unset=True,
)
async def publish(storage: StorageDep, activity_id: ActivityId, identity: Identity = ADMINS) -> ActivityOut:
    return ActivityOut.of(await activities.publish(storage, activity_id, identity))


@router.post(
    "/activities/{activity_id}/start",
    openapi_extra=access("unit_admin"),
    summary="活动开始（进行中）",
    response_model_exclude_unset=True,
)
async def start(storage: StorageDep, activity_id: ActivityId, identity: Identity = ADMINS) -> ActivityOut:
    return ActivityOut.of(await activities.start(storage, activity_id, identity))


@router.post(
    "/activities/{activity_id}/complete",
    openapi_extra=access("unit_admin"),
    summary="活动结束，汇总服务时长",
    response_model_exclude_unset=True,
)
async def complete(storage: StorageDep, activity_id: ActivityId, identity: Identity = ADMINS) -> ActivityOut:
    return ActivityOut.of(await activities.complete(storage, activity_id, identity))


@router.post(
    "/activities/{activity_id}/cancel",
    openapi_extra=access("unit_admin"),
    summary="取消活动（须填写原因）",
    response_model_exclude_unset=True,
)
async def cancel(
    storage: StorageDep, activity_id: ActivityId, body: CancelBody, identity: Identity = ADMINS
) -> ActivityOut:
    return ActivityOut.of(await activities.cancel(storage, activity_id, body.reason, identity))


@router.post(
    "/activities/{activity_id}/publicity",
    openapi_extra=access("unit_admin"),
    summary="发布活动宣传信息（活动结束后）",
    response_model_exclude_unset=True,
)
async def publicity(
    storage: StorageDep, activity_id: ActivityId, body: PublicityBody, identity: Identity = ADMINS
) -> ActivityOut:
    return ActivityOut.of(await activities.publicise(storage, activity_id, body.given(), identity))


@router.get(
    "/activities/{activity_id}",
    openapi_extra=access("unit_admin", "volunteer", "system"),
    summary="活动详情",
    response_model_exclude_unset=True,
)
async def get_activity(storage: StorageDep, activity_id: ActivityId, identity: IdentityDep) -> ActivityOut:
    record, mine = await activities.get(storage, activity_id, identity)
    return ActivityOut.of(record, mine)


CITY_CODES = "^(" + "|".join(c.code for c in CITY_LEVEL_AREAS) + ")$"


@router.get(
    "/activities",
    # `under` (a unit and everything below it) narrows the public listing only: not a scope, so not listed in units
    openapi_extra=access("unit_admin", "volunteer", "system", units=["query:unit_id"]),
    summary="查找活动（关键词、城市或单位、日期、主题、工作方向、技能；志愿者优先看到可报名的活动）",
    response_model_exclude_unset=True,
)
async def list_activities(
    storage: StorageDep,
    identity: IdentityDep,
    unit_id: Annotated[str | None, Query(description="组织单位（仅该单位）")] = None,
    status: ActivityStatus | None = None,
    line_of_work: LineOfWork | None = None,
    theme: Theme | None = None,
    from_: Annotated[AwareDatetime | None, Query(alias="from", description="开始时间不早于")] = None,
    to: Annotated[AwareDatetime | None, Query(description="开始时间早于")] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="关键词：活动名称、内容或地点（空格分隔的词须都出现）")
    ] = None,
    under: Annotated[str | None, Query(max_length=64, description="组织单位及其下级单位")] = None,
    city: Annotated[
        str | None, Query(pattern=CITY_CODES, description="城市（组织单位所在的市，如 shijiazhuang）")
    ] = None,
    skill: Annotated[str | None, Query(max_length=50, description="活动所需技能")] = None,
    sort: Annotated[ActivitySort, Query(description="排序：start 开始时间、published 最新发布、nearest 最近开始")] = (
        ActivitySort.START
    ),
    open_first: Annotated[bool, Query(description="志愿者：可报名的活动排在前面")] = True,
    offset: Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET, description="跳过的条数")] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ActivityPage:
    listing = search.Listing(
        unit_id=unit_id,
        status=None if status is None else status.value,
        line_of_work=None if line_of_work is None else line_of_work.value,
        theme=None if theme is None else theme.value,
        starts_from=from_,
        starts_before=to,
        keyword=q,
        under=under,
        city=city,
        skill=skill,
        sort=sort,
        open_first=open_first,
    )
    found = await search.find(storage, listing, identity, offset, limit)
    marked = identity.role == "volunteer" and open_first  # said only where it was worked out
    items = [ActivityOut.of(r, open_to_me=(r.activity.id in found.open_ids) if marked else None) for r in found.records]
    return ActivityPage(items=items, total=found.total, offset=offset, limit=limit)
