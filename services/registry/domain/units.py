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
    NamePatternError,
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


# Endings users write instead of the notice's (stripped to find the base of a suggestion), longest first.
_DETACHMENT_ENDINGS = (
    SERVICE_DETACHMENT_SUFFIX,
    DETACHMENT_SUFFIX,
    "科技志愿支队",
    "志愿服务支队",
    "志愿者支队",
    "支队",
)
_TEAM_ENDINGS = ("科技志愿服务队", TEAM_SUFFIX, "科技志愿队", "志愿服务队", "志愿者队", "队")
_ENDINGS = tuple(sorted({*_DETACHMENT_ENDINGS, *_TEAM_ENDINGS}, key=len, reverse=True))


def _sub_team_prefix(parent_name: str | None, parent_kind: UnitKind | None) -> str:
    """What a sub-team's name must begin with: under a university detachment "（高校名称）科技志愿服务支队", as
    `suggest_name` builds it from the parent's name; elsewhere nothing."""
    if parent_kind is not UnitKind.UNIVERSITY_DETACHMENT or not parent_name:
        return ""
    parent = parent_name.strip()
    for suffix in (DETACHMENT_SUFFIX, SERVICE_DETACHMENT_SUFFIX):
        if parent.endswith(suffix):
            return parent.removesuffix(suffix) + SERVICE_DETACHMENT_SUFFIX
    return parent


def follows_name_pattern(
    kind: UnitKind,
    name: str,
    *,
    city: str | None = None,
    parent_name: str | None = None,
    parent_kind: UnitKind | None = None,
) -> bool:
    """Whether a name follows its kind's pattern in the notice. `city` (a City code) binds a city detachment's name
    to its own city; a sub-team under a university detachment is named "（高校名称）科技志愿服务支队（院系名称）分队"
    after its parent."""
    name = name.strip()
    match kind:
        case UnitKind.PROVINCE_CORPS:
            return name == CORPS_NAME
        case UnitKind.CITY_DETACHMENT:
            own = find_city(city) if city else None
            cities = [own] if own is not None else CITY_LEVEL_AREAS
            return any(name == c.name + DETACHMENT_SUFFIX for c in cities)
        case UnitKind.SOCIETY_DETACHMENT | UnitKind.UNIVERSITY_DETACHMENT | UnitKind.ENTERPRISE_DETACHMENT:
            return len(name) > len(DETACHMENT_SUFFIX) and name.endswith(DETACHMENT_SUFFIX)
        case UnitKind.COUNTY_TEAM:
            return len(name) > len(TEAM_SUFFIX) and name.endswith(TEAM_SUFFIX)
        case UnitKind.SUB_TEAM:
            prefix = _sub_team_prefix(parent_name, parent_kind)
            return (
                name.startswith(prefix)
                and len(name) > len(prefix) + len(SUB_TEAM_SUFFIX)
                and name.endswith(SUB_TEAM_SUFFIX)
            )
    raise AssertionError(kind)  # pragma: no cover


def _strip_endings(name: str, endings: tuple[str, ...]) -> str:
    for ending in endings:
        if name.endswith(ending) and len(name) > len(ending):
            return name.removesuffix(ending)
    return name


def name_base(kind: UnitKind, name: str, *, parent_name: str | None = None) -> str:
    """The base (city, society, university, enterprise, county or department) a non-conforming name was written
    around, for `suggest_name`."""
    name = name.strip()
    match kind:
        case UnitKind.CITY_DETACHMENT:
            for city in CITY_LEVEL_AREAS:
                if name.startswith((city.name, city.short_name)):
                    return city.name
            return _strip_endings(name, _ENDINGS)
        case (
            UnitKind.SOCIETY_DETACHMENT
            | UnitKind.UNIVERSITY_DETACHMENT
            | UnitKind.ENTERPRISE_DETACHMENT
            | UnitKind.COUNTY_TEAM
        ):
            return _strip_endings(name, _ENDINGS)
        case UnitKind.SUB_TEAM:
            parent = (parent_name or "").strip()
            for prefix in sorted(
                {parent, *(_strip_endings(parent, _DETACHMENT_ENDINGS) + e for e in _DETACHMENT_ENDINGS)},
                key=len,
                reverse=True,
            ):
                if prefix and name.startswith(prefix) and len(name) > len(prefix):
                    name = name.removeprefix(prefix)
                    break
            return name.removesuffix(SUB_TEAM_SUFFIX) or name
    return name


def name_suggestion(
    kind: UnitKind,
    name: str,
    *,
    city: str | None = None,
    parent_name: str | None = None,
    parent_kind: UnitKind | None = None,
) -> str | None:
    """None when `name` follows the notice's pattern; else the standard name to suggest (a city detachment
    registered for a city is named after it)."""
    if follows_name_pattern(kind, name, city=city, parent_name=parent_name, parent_kind=parent_kind):
        return None
    own = find_city(city) if city else None
    if kind is UnitKind.CITY_DETACHMENT and own is not None:
        return own.name + DETACHMENT_SUFFIX
    return suggest_name(kind, name_base(kind, name, parent_name=parent_name), parent_name=parent_name)


def detachment_city(name: str) -> str | None:
    """The city (code) a city detachment's standard name names, or None."""
    return next((c.code for c in CITY_LEVEL_AREAS if name.strip() == c.name + DETACHMENT_SUFFIX), None)


def name_rule(kind: UnitKind) -> str:
    """The notice's naming pattern of a kind, as shown to users."""
    return NAME_PATTERNS[kind]


NAME_PATTERNS: Mapping[UnitKind, str] = {
    UnitKind.PROVINCE_CORPS: f"“{CORPS_NAME}”",
    UnitKind.CITY_DETACHMENT: "“××市科技志愿者支队”",
    UnitKind.SOCIETY_DETACHMENT: "“（学会名称）科技志愿者支队”",
    UnitKind.UNIVERSITY_DETACHMENT: "“（高校名称）科技志愿者支队”",
    UnitKind.ENTERPRISE_DETACHMENT: "“（企业（园区）名称）科技志愿者支队”",
    UnitKind.COUNTY_TEAM: "“（县市区名称）科技志愿者队”",
    UnitKind.SUB_TEAM: "“（高校名称）科技志愿服务支队（院系名称）分队”，其他队伍下为“（名称）分队”",
}


def check_name(
    kind: UnitKind,
    name: str,
    *,
    city: str | None = None,
    parent_name: str | None = None,
    parent_kind: UnitKind | None = None,
) -> None:
    """Refuse a name that does not follow the notice's pattern (NamePatternError, with the suggested name)."""
    suggestion = name_suggestion(kind, name, city=city, parent_name=parent_name, parent_kind=parent_kind)
    if suggestion is not None:
        raise NamePatternError(name_refusal(kind, name, suggestion), suggestion)


def name_refusal(kind: UnitKind, name: str, suggestion: str) -> str:
    """The Chinese refusal of a non-conforming name, with the suggestion."""
    return f"组织名称“{name.strip()}”不符合通知的命名规范（{kind.label}应为{name_rule(kind)}），建议使用“{suggestion}”"


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
