"""Routes of volunteers: registration, profile, searches and memberships (join, approve, reject, leave)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from services.registry.api.deps import ADMINS, ANYONE, VolunteersDep
from services.registry.api.schemas import (
    Reason,
    VolunteerIn,
    VolunteerOut,
    VolunteerPage,
    VolunteerPatch,
    volunteer_out,
    volunteer_page,
)
from services.registry.domain.scope import Scope
from services.registry.domain.volunteers import VolunteerDraft
from shared.access import access
from shared.identity import Identity
from shared.storage import MAX_PAGE_OFFSET

volunteers = APIRouter(prefix="/volunteers", tags=["志愿者"])


@volunteers.post(
    "",
    openapi_extra=access("unit_admin", units=["body:unit_id"]),
    status_code=201,
    summary="注册志愿者（单位管理员为本单位注册，或志愿者本人注册并申请加入队伍）",
    response_model=VolunteerOut,
    responses={429: {"description": "今日查到在其他单位注册的身份证号码次数已达上限"}},
)
async def register_volunteer(body: VolunteerIn, use: VolunteersDep, identity: Identity = ANYONE) -> VolunteerOut:
    draft = VolunteerDraft.model_validate(body.model_dump(exclude={"unit_id"}))
    return volunteer_out(await use.register(draft, body.unit_id, Scope(identity)))


@volunteers.get(
    "",
    openapi_extra=access("unit_admin", units=["query:unit_id"]),
    summary="查询志愿者（按队伍及下级、姓名、专业、技能、职称）",
    response_model=VolunteerPage,
)
async def search_volunteers(
    use: VolunteersDep,
    unit_id: str | None = Query(None, description="队伍（含全部下级队伍）"),
    name: str | None = None,
    professional_field: str | None = None,
    skill: str | None = None,
    title: str | None = None,
    skip: int = Query(0, ge=0, le=MAX_PAGE_OFFSET),
    limit: int = Query(50, ge=1, le=200),
    identity: Identity = ADMINS,
) -> VolunteerPage:
    asked = {"unit_id": unit_id, "name": name, "professional_field": professional_field, "skill": skill}
    page = await use.search(Scope(identity), {**asked, "title": title}, skip, limit)
    return volunteer_page(page)


@volunteers.get(
    "/{volunteer_id}",
    openapi_extra=access("unit_admin", "volunteer:self", volunteers=["path:volunteer_id"], personal=True),
    summary="查看志愿者（身份证号码只显示打码后的号码）",
    response_model=VolunteerOut,
)
async def get_volunteer(volunteer_id: str, use: VolunteersDep, identity: Identity = ANYONE) -> VolunteerOut:
    return volunteer_out(await use.get(volunteer_id, Scope(identity)))


@volunteers.patch(
    "/{volunteer_id}",
    openapi_extra=access("unit_admin", "volunteer:self", volunteers=["path:volunteer_id"]),
    summary="修改志愿者信息（身份证号码和性别不可修改）",
    response_model=VolunteerOut,
)
async def update_volunteer(
    volunteer_id: str, body: VolunteerPatch, use: VolunteersDep, identity: Identity = ANYONE
) -> VolunteerOut:
    changes = body.model_dump(exclude_unset=True)
    return volunteer_out(await use.edit(volunteer_id, changes, Scope(identity)))


@volunteers.post(
    "/{volunteer_id}/units/{unit_id}",
    openapi_extra=access("unit_admin", "volunteer:self", units=["path:unit_id"], volunteers=["path:volunteer_id"]),
    summary="加入队伍（队伍要求审核时为待审核）",
    response_model=VolunteerOut,
)
async def join_unit(volunteer_id: str, unit_id: str, use: VolunteersDep, identity: Identity = ANYONE) -> VolunteerOut:
    return volunteer_out(await use.join(volunteer_id, unit_id, Scope(identity)))


@volunteers.post(
    "/{volunteer_id}/units/{unit_id}/approve",
    openapi_extra=access("unit_admin", units=["path:unit_id"], volunteers=["path:volunteer_id"]),
    summary="审核通过志愿者加入队伍的申请",
    response_model=VolunteerOut,
)
async def approve_membership(
    volunteer_id: str, unit_id: str, use: VolunteersDep, identity: Identity = ADMINS
) -> VolunteerOut:
    decided = await use.decide_membership(volunteer_id, unit_id, approve=True, reason=None, scope=Scope(identity))
    return volunteer_out(decided)


@volunteers.post(
    "/{volunteer_id}/units/{unit_id}/reject",
    openapi_extra=access("unit_admin", units=["path:unit_id"], volunteers=["path:volunteer_id"]),
    summary="驳回志愿者加入队伍的申请",
    response_model=VolunteerOut,
)
async def reject_membership(
    volunteer_id: str, unit_id: str, body: Reason, use: VolunteersDep, identity: Identity = ADMINS
) -> VolunteerOut:
    scope = Scope(identity)
    decided = await use.decide_membership(volunteer_id, unit_id, approve=False, reason=body.reason, scope=scope)
    return volunteer_out(decided)


@volunteers.delete(
    "/{volunteer_id}/units/{unit_id}",
    openapi_extra=access("unit_admin", "volunteer:self", units=["path:unit_id"], volunteers=["path:volunteer_id"]),
    summary="退出队伍（保留记录）",
    response_model=VolunteerOut,
)
async def leave_unit(
    volunteer_id: str,
    unit_id: str,
    use: VolunteersDep,
    reason: str | None = None,
    identity: Identity = ANYONE,
) -> VolunteerOut:
    return volunteer_out(await use.leave(volunteer_id, unit_id, reason, Scope(identity)))
