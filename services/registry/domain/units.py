"""Units (队伍): the hierarchy's parent rule, the notice's name patterns, the registration data (附件1) and the
status life cycle pending → active | rejected(reason)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from services.registry.domain import fields as v
from services.registry.domain.codes import UnitStatus
from services.registry.domain.errors import (
    CorpsExistsError,
    FieldError,
    InvalidParentError,
    InvalidTransitionError,
    ValidationFailedError,
)
from services.registry.domain.fields import ADDRESS_MAX, Collector, checked, lookup_key, optional_checked
from services.registry.domain.leaders import Leader, LeaderDraft, role_error
from shared.programme import CITY_LEVEL_AREAS, City
from shared.vocabulary import ALLOWED_PARENTS, FIRST_BATCH_MINIMUM, LeaderRole, UnitKind, roles_for

CORPS_NAME = UnitKind.PROVINCE_CORPS.label
DETACHMENT_SUFFIX = "科技志愿者支队"
SERVICE_DETACHMENT_SUFFIX = "科技志愿服务支队"
TEAM_SUFFIX = "科技志愿者队"
SUB_TEAM_SUFFIX = "分队"


def check_parent(kind: UnitKind, parent_kind: UnitKind | None, *, corps_exists: bool = False) -> None:
    """Refuse a unit of `kind` under a parent of `parent_kind` (None: none) when the hierarchy forbids it.

    `corps_exists` tells whether a province corps is registered already: there is exactly one.
    """
    allowed = ALLOWED_PARENTS[kind]
    if kind is UnitKind.PROVINCE_CORPS:
        if parent_kind is not None:
            raise InvalidParentError(f"{CORPS_NAME}是最高一级，不能有上级组织")
        if corps_exists:
            raise CorpsExistsError()
        return
    expected = "或".join(k.label for k in UnitKind if k in allowed)
    if parent_kind is None:
        raise InvalidParentError(f"{kind.label}必须有上级组织（{expected}）")
    if parent_kind not in allowed:
        raise InvalidParentError(f"{kind.label}的上级组织应为{expected}，不能是{parent_kind.label}")


_CITY_LOOKUP: dict[str, City] = {
    lookup_key(text): city for city in CITY_LEVEL_AREAS for text in (city.code, city.name, city.short_name)
}


def find_city(text: str) -> City | None:
    """The city-level area named by a code, a full name (石家庄市) or a short name (石家庄)."""
    return _CITY_LOOKUP.get(lookup_key(text))


def suggest_name(kind: UnitKind, base: str, *, parent_name: str | None = None) -> str:
    """The standard name of a unit from the notice's patterns.

    `base` is the city, society, university, enterprise, county or (for a sub-team) department name;
    a sub-team's name is built on its parent's name when given:
    "（高校名称）科技志愿服务支队（院系名称）分队".
    """
    base = base.strip()
    match kind:
        case UnitKind.PROVINCE_CORPS:
            return CORPS_NAME
        case UnitKind.CITY_DETACHMENT:
            city = find_city(base)
            if city is not None:
                base = city.name
            elif not base.endswith(("市", "区")):
                base += "市"
            return base + DETACHMENT_SUFFIX
        case UnitKind.SOCIETY_DETACHMENT | UnitKind.UNIVERSITY_DETACHMENT | UnitKind.ENTERPRISE_DETACHMENT:
            return base if base.endswith(DETACHMENT_SUFFIX) else base + DETACHMENT_SUFFIX
        case UnitKind.COUNTY_TEAM:
            return base if base.endswith(TEAM_SUFFIX) else base + TEAM_SUFFIX
        case UnitKind.SUB_TEAM:
            department = base.removesuffix(SUB_TEAM_SUFFIX)
            if not parent_name:
                return department + SUB_TEAM_SUFFIX
            parent = parent_name.strip()
            for suffix in (DETACHMENT_SUFFIX, SERVICE_DETACHMENT_SUFFIX):
                if parent.endswith(suffix):
                    return parent.removesuffix(suffix) + SERVICE_DETACHMENT_SUFFIX + department + SUB_TEAM_SUFFIX
            return parent + department + SUB_TEAM_SUFFIX
    raise AssertionError(kind)  # pragma: no cover - match is exhaustive


def follows_name_pattern(kind: UnitKind, name: str) -> bool:
    """Whether a name follows its kind's pattern (compliance information, never a refusal)."""
    name = name.strip()
    match kind:
        case UnitKind.PROVINCE_CORPS:
            return name == CORPS_NAME
        case UnitKind.CITY_DETACHMENT:
            return any(name == city.name + DETACHMENT_SUFFIX for city in CITY_LEVEL_AREAS)
        case UnitKind.SOCIETY_DETACHMENT | UnitKind.UNIVERSITY_DETACHMENT | UnitKind.ENTERPRISE_DETACHMENT:
            return len(name) > len(DETACHMENT_SUFFIX) and name.endswith(DETACHMENT_SUFFIX)
        case UnitKind.COUNTY_TEAM:
            return len(name) > len(TEAM_SUFFIX) and name.endswith(TEAM_SUFFIX)
        case UnitKind.SUB_TEAM:
            return len(name) > len(SUB_TEAM_SUFFIX) and name.endswith(SUB_TEAM_SUFFIX)
    raise AssertionError(kind)  # pragma: no cover


def member_shortfall(kind: UnitKind, members: int) -> int:
    """How many members a unit still lacks to reach its first-batch minimum (0 when met or none is set)."""
    return max(0, FIRST_BATCH_MINIMUM.get(kind, 0) - members)


UNIT_TRANSITIONS: Mapping[UnitStatus, frozenset[UnitStatus]] = {
    UnitStatus.PENDING: frozenset({UnitStatus.ACTIVE, UnitStatus.REJECTED}),
    UnitStatus.ACTIVE: frozenset(),
    UnitStatus.REJECTED: frozenset(),
}


def initial_unit_status(*, registered_by_province: bool) -> UnitStatus:
    """The province office's registrations are active at once; a lower administrator's wait for approval."""
    return UnitStatus.ACTIVE if registered_by_province else UnitStatus.PENDING


@dataclass(frozen=True, slots=True)
class UnitStatusChange:
    status: UnitStatus
    reason: str | None = None


def transition_unit(current: UnitStatus, target: UnitStatus, *, reason: str | None = None) -> UnitStatusChange:
    """Approve or reject a pending unit; a rejection needs a reason."""
    if target not in UNIT_TRANSITIONS[current]:
        raise InvalidTransitionError(f"队伍状态为“{current.label}”，不能改为“{target.label}”")
    if target is UnitStatus.REJECTED:
        reason = (reason or "").strip()
        if not reason:
            raise ValidationFailedError([FieldError("reason", "请填写驳回原因")])
        return UnitStatusChange(target, reason)
    return UnitStatusChange(target)


class UnitDraft(BaseModel):
    """Unit registration input (raw text). The parent is checked separately with `check_parent`."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str | None = None
    kind: str | None = None
    city: str | None = None
    credit_code: str | None = None
    phone: str | None = None
    address: str | None = None
    founded_on: date | str | None = None
    declared_members: int | str | None = None
    leaders: list[LeaderDraft] = Field(default_factory=list)


class UnitProfile(BaseModel):
    """A unit's checked registration data. `city` is a City code; `declared_members` is the count the unit
    states (the real count comes from memberships)."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: UnitKind
    city: str | None = None
    credit_code: str | None = None
    phone: str | None = None
    address: str | None = None
    founded_on: date | None = None
    declared_members: int | None = None
    leaders: list[Leader] = Field(default_factory=list)


def validate_unit(draft: UnitDraft, *, today: date | None = None) -> UnitProfile:
    """Check a unit registration; every field error at once (ValidationFailedError). Leader roles the kind
    does not have are errors; missing leaders are not (see `check_leaders`)."""

    out = Collector()
    name = out.required(draft.name, "name", "组织名称")
    kind = out.coded(UnitKind, draft.kind, "kind", "组织类型")
    city_code = None
    if draft.city:
        city = find_city(draft.city)
        if city is None:
            out.add(FieldError("city", f"所属地区“{draft.city}”应为河北省的设区市、定州市、辛集市或雄安新区"))
        else:
            city_code = city.code
    credit_code = optional_checked(out, v.validate_credit_code, draft.credit_code, "credit_code")
    phone = optional_checked(out, v.validate_office_phone, draft.phone, "phone")
    address = out.optional(draft.address, "address", "地址", ADDRESS_MAX)
    founded_on = None
    if draft.founded_on not in (None, ""):
        try:
            founded_on = v.parse_date(draft.founded_on, field="founded_on", what="成立日期", today=today)
        except FieldError as error:
            out.add(error)
    members = None
    if draft.declared_members not in (None, ""):
        try:
            members = v.parse_count(draft.declared_members, field="declared_members", what="成员人数")
        except FieldError as error:
            out.add(error)
    leaders = []
    for i, raw in enumerate(draft.leaders):
        prefix = f"leaders[{i}]"
        leader_name = checked(out, v.validate_person_name, raw.name, f"{prefix}.name", "负责人姓名")
        role = out.coded(LeaderRole, raw.role, f"{prefix}.role", "负责人职务")
        if role is not None and kind is not None and role not in roles_for(kind):
            out.add(role_error(kind, role, f"{prefix}.role"))
        mobile = optional_checked(out, v.validate_mobile, raw.mobile, f"{prefix}.mobile")
        if role is not None and leader_name:
            leaders.append(Leader(name=leader_name, role=role, mobile=mobile))
    out.raise_if_any()
    assert kind is not None
    return UnitProfile(
        name=name,
        kind=kind,
        city=city_code,
        credit_code=credit_code,
        phone=phone,
        address=address,
        founded_on=founded_on,
        declared_members=members,
        leaders=leaders,
    )
