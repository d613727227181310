"""Routes of units: registration, edits, approval, listings, subtree, path and name suggestions."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Query

from services.registry.api.deps import ADMINS, READERS, MovesDep, UnitsDep
from services.registry.api.schemas import (
    NameSuggestion,
    Reason,
    UnitIn,
    UnitMoveIn,
    UnitMoveOut,
    UnitOut,
    UnitPage,
    UnitPatch,
    UnitRef,
    contact_draft,
    leader_drafts,
    unit_out,
    unit_page,
    unit_ref,
)
from services.registry.domain.scope import Scope
from services.registry.domain.units import UnitDraft
from services.registry.usecases.units import UnitEdit, UnitRegistration
from shared.access import access
from shared.identity import Identity, IdentityDep
from shared.storage import MAX_PAGE_OFFSET

units = APIRouter(prefix="/units", tags=["队伍"])


@units.post(
    "",
    openapi_extra=access("unit_admin", units=["body:parent_id"]),
    status_code=201,
    summary="注册队伍（省科协注册即生效，下级注册待审核）",
    response_model=UnitOut,
)
async def register_unit(body: UnitIn, use: UnitsDep, identity: Identity = ADMINS) -> UnitOut:
    draft = UnitDraft(
        name=body.name,
        kind=body.kind,
        city=body.city,
        credit_code=body.credit_code,
        phone=body.phone,
        address=body.address,
        founded_on=body.founded_on,
        declared_members=body.declared_members,
        leaders=leader_drafts(body.leaders),
    )
    asked = UnitRegistration(
        draft=draft,
        base=body.base,
        parent_id=body.parent_id,
        contact=contact_draft(body.contact) if body.contact is not None else None,
        member_approval=body.member_approval,
    )
    return unit_out(await use.register(asked, Scope(identity)))


@units.get(
    "/suggest-name",
    openapi_extra=access("unit_admin", "system", units=["query:parent_id"]),
    summary="按命名规范生成队伍名称，并检查是否已被使用",
    response_model=NameSuggestion,
)
async def suggest_unit_name(
    use: UnitsDep,
    kind: str,
    base: str,
    parent_id: str | None = None,
    identity: Identity = READERS,
) -> NameSuggestion:
    name, available = await use.suggest_name(kind, base, parent_id)
    return NameSuggestion(name=name, available=available)


@units.get(
    "",
    openapi_extra=access("unit_admin", "system", units=["query:parent"]),
    summary="查询队伍列表（按类型、地区、状态、上级筛选，分页）",
    response_model=UnitPage,
)
async def list_units(
    use: UnitsDep,
    kind: str | None = None,
    city: str | None = None,
    status: str | None = None,
    parent_id: str | None = Query(None, alias="parent"),
    name: str | None = Query(None, description="组织全称（精确匹配）"),
    skip: int = Query(0, ge=0, le=MAX_PAGE_OFFSET),
    limit: int = Query(50, ge=1, le=200),
    identity: Identity = READERS,
) -> UnitPage:
    asked = {"kind": kind, "city": city, "status": status, "parent_id": parent_id, "name": name}
    return unit_page(await use.listing(Scope(identity), asked, skip, limit))


@units.get(
    "/{unit_id}",
    openapi_extra=access("unit_admin", "system", units=["path:unit_id"]),
    summary="查看队伍",
    response_model=UnitOut,
)
async def get_unit(unit_id: str, use: UnitsDep, identity: IdentityDep) -> UnitOut:
    return unit_out(await use.get(unit_id, Scope(identity)))


@units.patch(
    "/{unit_id}",
    openapi_extra=access("unit_admin", units=["path:unit_id"]),
    summary="修改队伍信息（名称、负责人、联系人、信用代码等）",
    response_model=UnitOut,
)
async def update_unit(unit_id: str, body: UnitPatch, use: UnitsDep, identity: Identity = ADMINS) -> UnitOut:
    edit = UnitEdit(
        sent=frozenset(body.model_fields_set),
        name=body.name,
        leaders=leader_drafts(body.leaders) if body.leaders is not None else None,
        contact=contact_draft(body.contact) if body.contact is not None else None,
        credit_code=body.credit_code,
        phone=body.phone,
        address=body.address,
        member_approval=body.member_approval,
    )
    return unit_out(await use.edit(unit_id, edit, Scope(identity)))


@units.post(
    "/{unit_id}/approve",
    openapi_extra=access("unit_admin", units=["path:unit_id"]),
    summary="审核通过下级队伍的注册",
    response_model=UnitOut,
)
async def approve_unit(unit_id: str, use: UnitsDep, identity: Identity = ADMINS) -> UnitOut:
    return unit_out(await use.decide(unit_id, approve=True, reason=None, scope=Scope(identity)))


@units.post(
    "/{unit_id}/reject",
    openapi_extra=access("unit_admin", units=["path:unit_id"]),
    summary="驳回下级队伍的注册（须填写原因）",
    response_model=UnitOut,
)
async def reject_unit(unit_id: str, body: Reason, use: UnitsDep, identity: Identity = ADMINS) -> UnitOut:
    return unit_out(await use.decide(unit_id, approve=False, reason=body.reason, scope=Scope(identity)))


@units.post(
    "/{unit_id}/move",
    openapi_extra=access("unit_admin", units=["path:unit_id", "body:new_parent_id"]),
    summary="调整队伍的上级组织（由上级办理，队伍连同下级队伍、志愿者与记录一并调整）",
    response_model=UnitMoveOut,
)
async def move_unit(
    unit_id: str, body: UnitMoveIn, use: MovesDep, background: BackgroundTasks, identity: Identity = ADMINS
) -> UnitMoveOut:
    moved, job = await use.move(unit_id, body.new_parent_id, body.reason, Scope(identity))
    background.add_task(use.propagate, job)  # also resumed by every replica if this process stops first
    return UnitMoveOut(unit=unit_out(moved), move_id=job["_id"], propagation=job["state"])


@units.get(
    "/{unit_id}/subtree",
    openapi_extra=access("unit_admin", "system", units=["path:unit_id"]),
    summary="查询队伍及其全部下级队伍（分页）",
    response_model=UnitPage,
)
async def subtree(
    unit_id: str,
    use: UnitsDep,
    skip: int = Query(0, ge=0, le=MAX_PAGE_OFFSET),
    limit: int = Query(50, ge=1, le=200),
    identity: Identity = READERS,
) -> UnitPage:
    return unit_page(await use.subtree(unit_id, Scope(identity), skip, limit))


@units.get(
    "/{unit_id}/path",
    openapi_extra=access("unit_admin", "system", units=["path:unit_id"]),
    summary="查询队伍到总队的上级路径（自总队而下，仅编号、名称与类型）",
    response_model=list[UnitRef],
)
async def unit_path(unit_id: str, use: UnitsDep, identity: Identity = READERS) -> list[UnitRef]:
    return [unit_ref(d) for d in await use.path(unit_id, Scope(identity))]
