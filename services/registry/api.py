"""HTTP API of the registry: units, volunteers, memberships (JSON, Chinese summaries, problem details)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.registry.domain.codes import UnitStatus
from services.registry.domain.contact import ContactDraft, ContactPerson, validate_contact
from services.registry.domain.errors import (
    ConflictError,
    DuplicatePersonError,
    FieldError,
    ForbiddenError,
    InvalidTransitionError,
    NotFoundError,
    RegistryError,
    ValidationFailedError,
)
from services.registry.domain.fields import mask_id_number
from services.registry.domain.leaders import LeaderDraft
from services.registry.domain.scope import Scope
from services.registry.domain.units import UnitDraft, find_city, suggest_name, validate_unit
from services.registry.domain.volunteers import VolunteerDraft, validate_volunteer
from services.registry.lookups import IdLookups
from services.registry.store import Page, Registry, compliance, profile_fields, unit_profile
from shared.identity import Identity, IdentityDep, require_roles
from shared.problems import Problem, problem_response
from shared.scope import out_of_scope
from shared.storage import MAX_PAGE_OFFSET
from shared.vocabulary import LeaderRole, UnitKind

ADMINS = require_roles("province_admin", "unit_admin")
ANYONE = require_roles("province_admin", "unit_admin", "volunteer")
# The unit reads a system key may make too (shared.scope.SYSTEM_READS: the organisation, no person's record).
READERS = require_roles("province_admin", "unit_admin", "system")


def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


# ----------------------------------------------------------------------------------------------------------
# Domain errors -> problem details, in one place
# ----------------------------------------------------------------------------------------------------------


def field_errors(errors: list[FieldError], prefix: str = "") -> list[dict[str, Any]]:
    return [{"field": prefix + e.field, "message": e.message} for e in errors]


def to_problem(exc: RegistryError) -> Problem:
    if isinstance(exc, ValidationFailedError):
        return Problem(422, exc.code, exc.message, errors=field_errors(exc.errors))
    if isinstance(exc, NotFoundError):
        return Problem(404, exc.code, exc.message)
    if isinstance(exc, DuplicatePersonError):
        return Problem(409, exc.code, exc.message, platform_number=exc.platform_number, unit_names=list(exc.unit_names))
    if isinstance(exc, ConflictError | InvalidTransitionError):
        return Problem(409, exc.code, exc.message)
    if isinstance(exc, ForbiddenError):
        return Problem(403, exc.code, exc.message)
    return Problem(400, exc.code, exc.message)


async def registry_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RegistryError)
    if isinstance(exc, ForbiddenError) and request.method in ("GET", "HEAD"):
        # a read out of scope reveals nothing, not even that the record exists (shared.scope)
        return problem_response(out_of_scope(read=True), request.url.path)
    return problem_response(to_problem(exc), request.url.path)


# ----------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------


class ContactIn(BaseModel):
    name: str | None = None
    post: str | None = None
    office_phone: str | None = None
    mobile: str | None = None
    email: str | None = None


class LeaderIn(BaseModel):
    name: str | None = None
    role: str | None = Field(None, description="职务：代码或中文（如 支队长、副支队长、队长、分队负责人）")
    mobile: str | None = None


class UnitIn(BaseModel):
    """队伍注册信息。`kind` 与职务可填代码或中文名称。"""

    name: str | None = Field(None, description="组织名称；不填时按 base 和类型生成规范名称")
    base: str | None = Field(None, description="生成规范名称的基础（城市、学会、高校、企业、县市区或院系名称）")
    kind: str
    parent_id: str | None = Field(None, description="上级队伍；总队不填")
    city: str | None = None
    credit_code: str | None = Field(None, description="统一社会信用代码（如有）")
    phone: str | None = None
    address: str | None = None
    founded_on: date | str | None = None
    declared_members: int | str | None = None
    leaders: list[LeaderIn] = Field(default_factory=list)
    contact: ContactIn | None = Field(None, description="工作联系人（附件3）")
    member_approval: bool = Field(False, description="志愿者加入本队伍是否需要审核")


class UnitPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    leaders: list[LeaderIn] | None = None
    contact: ContactIn | None = None
    credit_code: str | None = None
    phone: str | None = None
    address: str | None = None
    member_approval: bool | None = None


class Reason(BaseModel):
    reason: str = Field(description="驳回原因")


class LeaderOut(BaseModel):
    name: str
    role: str
    role_label: str
    mobile: str | None = None


class UnitOut(BaseModel):
    id: str
    name: str
    kind: str
    kind_label: str
    parent_id: str | None
    ancestors: list[str]
    city: str | None
    status: str
    status_label: str
    reason: str | None = None
    credit_code: str | None = None
    phone: str | None = None
    address: str | None = None
    founded_on: str | None = None
    declared_members: int | None = None
    leaders: list[LeaderOut]
    contact: dict[str, Any] | None = None
    member_approval: bool = False
    registered_at: datetime
    version: int
    leader_gaps: list[str] = Field(default_factory=list, description="负责人配备与规定的差距（提示，不是错误）")


class UnitPage(BaseModel):
    items: list[UnitOut]
    total: int
    skip: int
    limit: int


class NameSuggestion(BaseModel):
    name: str
    available: bool


class VolunteerIn(BaseModel):
    """志愿者注册信息（附件2 的字段）。编码字段可填代码或中文。"""

    name: str | None = None
    gender: str | None = None
    id_number: str | None = Field(None, description="18位身份证号码；加密存储，只显示打码后的号码")
    mobile: str | None = None
    email: str | None = None
    employer: str | None = None
    title: str | None = None
    title_level: str | None = None
    education: str | None = None
    professional_field: str | None = None
    political_status: str | None = None
    skills: list[str] = Field(default_factory=list)
    service_areas: list[str] = Field(default_factory=list)
    unit_id: str | None = Field(None, description="加入的队伍；单位管理员不填时为本单位")

    def __repr__(self) -> str:  # never show the ID-card number
        return f"VolunteerIn(name={self.name!r})"


class VolunteerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    mobile: str | None = None
    email: str | None = None
    employer: str | None = None
    title: str | None = None
    title_level: str | None = None
    education: str | None = None
    professional_field: str | None = None
    political_status: str | None = None
    skills: list[str] | None = None
    service_areas: list[str] | None = None


class MembershipOut(BaseModel):
    unit_id: str
    status: str
    requested_at: datetime
    joined_at: datetime | None = None
    left_at: datetime | None = None
    reason: str | None = None


class VolunteerOut(BaseModel):
    id: str
    platform_number: str
    name: str
    gender: str
    id_number_masked: str = Field(description="打码后的身份证号码；完整号码不经接口返回")
    mobile: str
    email: str | None = None
    employer: str
    title: str | None = None
    title_level: str
    education: str
    professional_field: str
    political_status: str
    skills: list[str]
    service_areas: list[str]
    status: str
    unit_ids: list[str]
    memberships: list[MembershipOut]
    registered_at: datetime
    version: int


class VolunteerPage(BaseModel):
    items: list[VolunteerOut]
    total: int
    skip: int
    limit: int


def unit_out(doc: dict[str, Any]) -> UnitOut:
    return UnitOut(
        id=doc["_id"],
        name=doc["name"],
        kind=doc["kind"],
        kind_label=UnitKind(doc["kind"]).label,
        parent_id=doc.get("parent_id"),
        ancestors=doc.get("ancestors", []),
        city=doc.get("city"),
        status=doc["status"],
        status_label=UnitStatus(doc["status"]).label,
        reason=doc.get("reason"),
        credit_code=doc.get("credit_code"),
        phone=doc.get("phone"),
        address=doc.get("address"),
        founded_on=doc.get("founded_on"),
        declared_members=doc.get("declared_members"),
        leaders=[
            LeaderOut(name=x["name"], role=x["role"], role_label=LeaderRole(x["role"]).label, mobile=x.get("mobile"))
            for x in doc.get("leaders", [])
        ],
        contact=doc.get("contact"),
        member_approval=bool(doc.get("member_approval")),
        registered_at=doc["registered_at"],
        version=doc["version"],
        leader_gaps=compliance(doc)["leader_gaps"],
    )


def volunteer_out(doc: dict[str, Any]) -> VolunteerOut:
    return VolunteerOut(
        id=doc["_id"],
        platform_number=doc["platform_number"],
        name=doc["name"],
        gender=doc["gender"],
        id_number_masked=mask_id_number(doc["id_masked"]),  # documents stored with the former mask too
        mobile=doc["mobile"],
        email=doc.get("email"),
        employer=doc["employer"],
        title=doc.get("title"),
        title_level=doc["title_level"],
        education=doc["education"],
        professional_field=doc["professional_field"],
        political_status=doc["political_status"],
        skills=doc.get("skills", []),
        service_areas=doc.get("service_areas", []),
        status=doc.get("status", "active"),
        unit_ids=doc.get("unit_ids", []),
        memberships=[
            MembershipOut(unit_id=uid, **{k: v for k, v in m.items() if k != "path"})
            for uid, m in (doc.get("memberships") or {}).items()
        ],
        registered_at=doc["registered_at"],
        version=doc["version"],
    )


def unit_page(page: Page) -> UnitPage:
    return UnitPage(items=[unit_out(d) for d in page.items], total=page.total, skip=page.skip, limit=page.limit)


def checked_contact(raw: ContactIn) -> ContactPerson:
    try:
        return validate_contact(ContactDraft.model_validate(raw.model_dump()))
    except ValidationFailedError as failed:
        raise ValidationFailedError([FieldError("contact." + e.field, e.message) for e in failed.errors]) from None


# ----------------------------------------------------------------------------------------------------------
# Units
# ----------------------------------------------------------------------------------------------------------

units = APIRouter(prefix="/units", tags=["队伍"])


@units.post("", status_code=201, summary="注册队伍（省科协注册即生效，下级注册待审核）", response_model=UnitOut)
async def register_unit(body: UnitIn, registry: RegistryDep, identity: Identity = ADMINS) -> UnitOut:
    errors: list[FieldError] = []
    name = body.name
    kind = UnitKind.lookup(body.kind)
    if not name and kind is not None and (body.base or kind is UnitKind.PROVINCE_CORPS):
        parent_name = (await registry.unit(body.parent_id))["name"] if body.parent_id else None
        name = suggest_name(kind, body.base or "", parent_name=parent_name)
    draft = UnitDraft(
        name=name,
        kind=body.kind,
        city=body.city,
        credit_code=body.credit_code,
        phone=body.phone,
        address=body.address,
        founded_on=body.founded_on,
        declared_members=body.declared_members,
        leaders=[LeaderDraft.model_validate(x.model_dump()) for x in body.leaders],
    )
    profile = None
    try:
        profile = validate_unit(draft)
    except ValidationFailedError as failed:
        errors.extend(failed.errors)
    contact = None
    if body.contact is not None:
        try:
            contact = checked_contact(body.contact)
        except ValidationFailedError as failed:
            errors.extend(failed.errors)
    if errors or profile is None:
        raise ValidationFailedError(errors)
    doc = await registry.register_unit(
        profile, parent_id=body.parent_id, contact=contact, member_approval=body.member_approval, scope=Scope(identity)
    )
    return unit_out(doc)


@units.get("/suggest-name", summary="按命名规范生成队伍名称，并检查是否已被使用", response_model=NameSuggestion)
async def suggest_unit_name(
    registry: RegistryDep,
    kind: str,
    base: str,
    parent_id: str | None = None,
    identity: Identity = READERS,
) -> NameSuggestion:
    member = UnitKind.lookup(kind)
    if member is None:
        raise ValidationFailedError([FieldError("kind", f"组织类型“{kind}”不在可选范围内")])
    parent_name = (await registry.unit(parent_id))["name"] if parent_id else None
    name = suggest_name(member, base, parent_name=parent_name)
    return NameSuggestion(name=name, available=await registry.unit_id_by_name(name) is None)


@units.get("", summary="查询队伍列表（按类型、地区、状态、上级筛选，分页）", response_model=UnitPage)
async def list_units(
    registry: RegistryDep,
    kind: str | None = None,
    city: str | None = None,
    status: str | None = None,
    parent_id: str | None = Query(None, alias="parent"),
    name: str | None = Query(None, description="组织全称（精确匹配）"),
    skip: int = Query(0, ge=0, le=MAX_PAGE_OFFSET),
    limit: int = Query(50, ge=1, le=200),
    identity: Identity = READERS,
) -> UnitPage:
    kind_code = None
    if kind is not None:
        member = UnitKind.lookup(kind)
        if member is None:
            raise ValidationFailedError([FieldError("kind", f"组织类型“{kind}”不在可选范围内")])
        kind_code = member.value
    city_code = None
    if city is not None:
        found = find_city(city)
        if found is None:
            raise ValidationFailedError([FieldError("city", f"地区“{city}”不是河北省的市级地区")])
        city_code = found.code
    status_code = None
    if status is not None:
        st = UnitStatus.lookup(status)
        if st is None:
            raise ValidationFailedError([FieldError("status", f"状态“{status}”不在可选范围内")])
        status_code = st.value
    page = await registry.list_units(
        Scope(identity),
        kind=kind_code,
        city=city_code,
        status=status_code,
        parent_id=parent_id,
        name=name,
        skip=skip,
        limit=limit,
    )
    return unit_page(page)


@units.get("/{unit_id}", summary="查看队伍", response_model=UnitOut)
async def get_unit(unit_id: str, registry: RegistryDep, identity: IdentityDep) -> UnitOut:
    doc = await registry.unit(unit_id)
    scope = Scope(identity)
    if not scope.sees_unit(doc) and not (identity.role == "volunteer" and doc["status"] == UnitStatus.ACTIVE.value):
        raise ForbiddenError("无权访问该队伍：只能管理本队伍及下级队伍的信息")
    return unit_out(doc)


@units.patch("/{unit_id}", summary="修改队伍信息（名称、负责人、联系人、信用代码等）", response_model=UnitOut)
async def update_unit(unit_id: str, body: UnitPatch, registry: RegistryDep, identity: Identity = ADMINS) -> UnitOut:
    doc = await registry.unit(unit_id)
    sent = body.model_fields_set
    current = unit_profile(doc)
    draft = UnitDraft(
        name=body.name if "name" in sent else current.name,
        kind=current.kind.value,
        city=current.city,
        credit_code=body.credit_code if "credit_code" in sent else current.credit_code,
        phone=body.phone if "phone" in sent else current.phone,
        address=body.address if "address" in sent else current.address,
        founded_on=current.founded_on,
        declared_members=current.declared_members,
        leaders=(
            [LeaderDraft.model_validate(x.model_dump()) for x in body.leaders]
            if body.leaders is not None
            else [LeaderDraft(name=x.name, role=x.role.value, mobile=x.mobile) for x in current.leaders]
        ),
    )
    errors: list[FieldError] = []
    fields: dict[str, Any] = {}
    try:
        fields = profile_fields(validate_unit(draft))
    except ValidationFailedError as failed:
        errors.extend(failed.errors)
    changes: dict[str, Any] = {
        k: fields.get(k) for k in ("name", "leaders", "credit_code", "phone", "address") if k in sent
    }
    if body.contact is not None:
        try:
            changes["contact"] = checked_contact(body.contact).model_dump()
        except ValidationFailedError as failed:
            errors.extend(failed.errors)
    if body.member_approval is not None:
        changes["member_approval"] = body.member_approval
    if errors:
        raise ValidationFailedError(errors)
    return unit_out(await registry.update_unit(unit_id, changes, Scope(identity)))


@units.post("/{unit_id}/approve", summary="审核通过下级队伍的注册", response_model=UnitOut)
async def approve_unit(unit_id: str, registry: RegistryDep, identity: Identity = ADMINS) -> UnitOut:
    return unit_out(await registry.decide_unit(unit_id, approve=True, reason=None, scope=Scope(identity)))


@units.post("/{unit_id}/reject", summary="驳回下级队伍的注册（须填写原因）", response_model=UnitOut)
async def reject_unit(unit_id: str, body: Reason, registry: RegistryDep, identity: Identity = ADMINS) -> UnitOut:
    return unit_out(await registry.decide_unit(unit_id, approve=False, reason=body.reason, scope=Scope(identity)))


@units.get("/{unit_id}/subtree", summary="查询队伍及其全部下级队伍（分页）", response_model=UnitPage)
async def subtree(
    unit_id: str,
    registry: RegistryDep,
    skip: int = Query(0, ge=0, le=MAX_PAGE_OFFSET),
    limit: int = Query(50, ge=1, le=200),
    identity: Identity = READERS,
) -> UnitPage:
    scope = Scope(identity)
    root = await registry.unit(unit_id)
    if not scope.sees_unit(root):
        raise ForbiddenError("无权访问该队伍：只能管理本队伍及下级队伍的信息")
    return unit_page(await registry.list_units(scope, below=unit_id, skip=skip, limit=limit))


class UnitRef(BaseModel):
    """A unit on a path: who it is, nothing about its people (leaders, contacts, phones, addresses)."""

    id: str
    name: str
    kind: str
    kind_label: str


@units.get(
    "/{unit_id}/path",
    summary="查询队伍到总队的上级路径（自总队而下，仅编号、名称与类型）",
    response_model=list[UnitRef],
)
async def unit_path(unit_id: str, registry: RegistryDep, identity: Identity = READERS) -> list[UnitRef]:
    scope = Scope(identity)
    docs = await registry.path(unit_id, scope)
    return [UnitRef(id=d["_id"], name=d["name"], kind=d["kind"], kind_label=UnitKind(d["kind"]).label) for d in docs]


# ----------------------------------------------------------------------------------------------------------
# Volunteers
# ----------------------------------------------------------------------------------------------------------

volunteers = APIRouter(prefix="/volunteers", tags=["志愿者"])


@volunteers.post(
    "",
    status_code=201,
    summary="注册志愿者（单位管理员为本单位注册，或志愿者本人注册并申请加入队伍）",
    response_model=VolunteerOut,
    responses={429: {"description": "今日查到在其他单位注册的身份证号码次数已达上限"}},
)
async def register_volunteer(
    body: VolunteerIn, request: Request, registry: RegistryDep, identity: Identity = ANYONE
) -> VolunteerOut:
    draft = VolunteerDraft.model_validate(body.model_dump(exclude={"unit_id"}))
    profile = validate_volunteer(draft)
    try:
        doc = await registry.register_volunteer(profile, unit_id=body.unit_id, scope=Scope(identity))
    except DuplicatePersonError as refused:
        if refused.elsewhere:  # an answer about a number outside the caller's scope: counted and recorded
            lookups: IdLookups = request.app.state.id_lookups
            await lookups.charge(identity, 1, purpose="register", unit_id=body.unit_id)
        raise
    return volunteer_out(doc)


@volunteers.get("", summary="查询志愿者（按队伍及下级、姓名、专业、技能、职称）", response_model=VolunteerPage)
async def search_volunteers(
    registry: RegistryDep,
    unit_id: str | None = Query(None, description="队伍（含全部下级队伍）"),
    name: str | None = None,
    professional_field: str | None = None,
    skill: str | None = None,
    title: str | None = None,
    skip: int = Query(0, ge=0, le=MAX_PAGE_OFFSET),
    limit: int = Query(50, ge=1, le=200),
    identity: Identity = ADMINS,
) -> VolunteerPage:
    page = await registry.search_volunteers(
        Scope(identity),
        unit_id=unit_id,
        name=name,
        professional_field=professional_field,
        skill=skill,
        title=title,
        skip=skip,
        limit=limit,
    )
    return VolunteerPage(
        items=[volunteer_out(d) for d in page.items], total=page.total, skip=page.skip, limit=page.limit
    )


@volunteers.get("/{volunteer_id}", summary="查看志愿者（身份证号码只显示打码后的号码）", response_model=VolunteerOut)
async def get_volunteer(volunteer_id: str, registry: RegistryDep, identity: Identity = ANYONE) -> VolunteerOut:
    return volunteer_out(await registry.get_volunteer(volunteer_id, Scope(identity)))


@volunteers.patch("/{volunteer_id}", summary="修改志愿者信息（身份证号码和性别不可修改）", response_model=VolunteerOut)
async def update_volunteer(
    volunteer_id: str, body: VolunteerPatch, registry: RegistryDep, identity: Identity = ANYONE
) -> VolunteerOut:
    changes = body.model_dump(exclude_unset=True)
    return volunteer_out(await registry.update_volunteer(volunteer_id, changes, Scope(identity)))


@volunteers.post(
    "/{volunteer_id}/units/{unit_id}",
    summary="加入队伍（队伍要求审核时为待审核）",
    response_model=VolunteerOut,
)
async def join_unit(
    volunteer_id: str, unit_id: str, registry: RegistryDep, identity: Identity = ANYONE
) -> VolunteerOut:
    return volunteer_out(await registry.join(volunteer_id, unit_id, Scope(identity)))


@volunteers.post(
    "/{volunteer_id}/units/{unit_id}/approve", summary="审核通过志愿者加入队伍的申请", response_model=VolunteerOut
)
async def approve_membership(
    volunteer_id: str, unit_id: str, registry: RegistryDep, identity: Identity = ADMINS
) -> VolunteerOut:
    return volunteer_out(
        await registry.decide_membership(volunteer_id, unit_id, approve=True, reason=None, scope=Scope(identity))
    )


@volunteers.post(
    "/{volunteer_id}/units/{unit_id}/reject", summary="驳回志愿者加入队伍的申请", response_model=VolunteerOut
)
async def reject_membership(
    volunteer_id: str, unit_id: str, body: Reason, registry: RegistryDep, identity: Identity = ADMINS
) -> VolunteerOut:
    return volunteer_out(
        await registry.decide_membership(
            volunteer_id, unit_id, approve=False, reason=body.reason, scope=Scope(identity)
        )
    )


@volunteers.delete("/{volunteer_id}/units/{unit_id}", summary="退出队伍（保留记录）", response_model=VolunteerOut)
async def leave_unit(
    volunteer_id: str,
    unit_id: str,
    registry: RegistryDep,
    reason: str | None = None,
    identity: Identity = ANYONE,
) -> VolunteerOut:
    return volunteer_out(await registry.leave(volunteer_id, unit_id, reason, Scope(identity)))
