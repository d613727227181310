"""Registry domain: the unit hierarchy, leaders, volunteers and memberships, as plain rules (no I/O).

Every rule comes from the 2020 notice (digested in DOMAIN.md §2–3). Codes and identifiers are English;
every message a user may see is Simplified Chinese.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol, Self, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from shared.programme import CITY_LEVEL_AREAS, City

# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class FieldError(Exception):
    """One invalid input field: `field` is the machine key, `message` the Chinese text shown to the user."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __repr__(self) -> str:
        return f"FieldError({self.field!r}, {self.message!r})"


class RegistryError(Exception):
    """Base of every refusal of the registry; `code` is stable for machines, `message` is Chinese."""

    code: str = "registry_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(RegistryError):
    code = "not_found"


class ConflictError(RegistryError):
    code = "conflict"


class DuplicateNameError(ConflictError):
    code = "duplicate_name"

    def __init__(self, name: str) -> None:
        super().__init__(f"名称“{name}”已被其他队伍使用")
        self.name = name


class DuplicatePersonError(ConflictError):
    """The same ID-card number is registered already: one person, one record.

    `unit_names` is what the caller may be shown; pass none when the caller may not see the units.
    """

    code = "duplicate_person"

    def __init__(
        self, *, platform_number: str | None = None, unit_names: Sequence[str] = (), elsewhere: bool = False
    ) -> None:
        # outside the caller's scope: that it is registered, and nothing more (not where, not under which number)
        text = "该身份证号码已在其他单位注册，不能重复注册" if elsewhere else "该身份证号码已注册，不能重复注册"
        if platform_number:
            text += f"（平台编号 {platform_number}）"
        if unit_names:
            text += f"，所在队伍：{'、'.join(unit_names)}"
        super().__init__(text)
        self.platform_number = None if elsewhere else platform_number
        self.unit_names = () if elsewhere else tuple(unit_names)
        self.elsewhere = elsewhere


class CorpsExistsError(ConflictError):
    code = "corps_exists"

    def __init__(self) -> None:
        super().__init__(f"{CORPS_NAME}已存在，全省只设一个总队")


class AlreadyMemberError(ConflictError):
    code = "already_member"


class MembershipLimitError(ConflictError):
    code = "membership_limit"


class InvalidTransitionError(RegistryError):
    code = "invalid_transition"


class ValidationFailedError(RegistryError):
    """Input refused; `errors` holds every invalid field, not only the first one."""

    code = "validation_failed"

    def __init__(self, errors: Sequence[FieldError], message: str | None = None) -> None:
        self.errors = list(errors)
        if message is None:
            details = "；".join(e.message for e in self.errors[:5])
            more = f"等{len(self.errors)}处" if len(self.errors) > 5 else ""
            message = f"填写的信息有误：{details}{more}"
        super().__init__(message)


class InvalidParentError(ValidationFailedError):
    code = "invalid_parent"

    def __init__(self, message: str, *, field: str = "parent_id") -> None:
        super().__init__([FieldError(field, message)], message)


class InvalidLeaderRoleError(ValidationFailedError):
    code = "invalid_leader_role"


# --------------------------------------------------------------------------------------------------
# Coded values: an English code is stored, a Chinese label is shown and accepted
# --------------------------------------------------------------------------------------------------


def lookup_key(text: str) -> str:
    """Normalise free text for matching codes and labels: NFKC (full-width → ASCII), no spaces, lower case."""
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


_LABELS: dict[type[CodedEnum], dict[str, str]] = {}
_LOOKUP: dict[type[CodedEnum], dict[str, CodedEnum]] = {}


class CodedEnum(StrEnum):
    """A coded value: the code (value) is stored, `label` (Chinese) is shown in forms and messages."""

    @property
    def label(self) -> str:
        return _LABELS[type(self)][self.value]

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        return tuple(member.label for member in cls)

    @classmethod
    def lookup(cls, raw: str) -> Self | None:
        """The member whose code, label or alias is `raw`, or None."""
        table = _LOOKUP[cls]
        member = table.get(raw)  # exact code or label: the common case, no normalisation needed
        if member is None:
            member = table.get(lookup_key(raw))
        return cast("Self | None", member)

    @classmethod
    def parse(cls, raw: str, *, field: str, what: str) -> Self:
        member = cls.lookup(raw)
        if member is None:
            raise cls.unknown(raw, field=field, what=what)
        return member

    @classmethod
    def unknown(cls, raw: str, *, field: str, what: str) -> FieldError:
        return FieldError(field, f"{what}“{raw}”不在可选范围内，可选：{'、'.join(cls.labels())}")


_E = TypeVar("_E", bound=CodedEnum)


def _describe(cls: type[_E], labels: Mapping[_E, str], aliases: Mapping[str, _E] | None = None) -> None:
    assert set(labels) == set(cls), f"{cls.__name__}: every member needs a label"
    _LABELS[cls] = {member.value: label for member, label in labels.items()}
    table: dict[str, CodedEnum] = {}
    for member, label in labels.items():
        table[member.value] = table[lookup_key(member.value)] = member
        table[label] = table[lookup_key(label)] = member
    for alias, member in (aliases or {}).items():
        table[lookup_key(alias)] = member
    _LOOKUP[cls] = table


# --------------------------------------------------------------------------------------------------
# The unit hierarchy (队伍建设, DOMAIN.md §2)
# --------------------------------------------------------------------------------------------------


class UnitKind(CodedEnum):
    PROVINCE_CORPS = "province_corps"  # 总队
    CITY_DETACHMENT = "city_detachment"  # 市级支队
    SOCIETY_DETACHMENT = "society_detachment"  # 省级学会支队
    UNIVERSITY_DETACHMENT = "university_detachment"  # 高校支队
    ENTERPRISE_DETACHMENT = "enterprise_detachment"  # 企业（园区）支队
    COUNTY_TEAM = "county_team"  # 县（市、区）队
    SUB_TEAM = "sub_team"  # 分队


_describe(
    UnitKind,
    {
        UnitKind.PROVINCE_CORPS: "河北省科技志愿者总队",
        UnitKind.CITY_DETACHMENT: "市级科技志愿者支队",
        UnitKind.SOCIETY_DETACHMENT: "省级学会科技志愿者支队",
        UnitKind.UNIVERSITY_DETACHMENT: "高校科技志愿者支队",
        UnitKind.ENTERPRISE_DETACHMENT: "企业（园区）科技志愿者支队",
        UnitKind.COUNTY_TEAM: "县（市、区）科技志愿者队",
        UnitKind.SUB_TEAM: "分队",
    },
    {
        "总队": UnitKind.PROVINCE_CORPS,
        "市级支队": UnitKind.CITY_DETACHMENT,
        "学会支队": UnitKind.SOCIETY_DETACHMENT,
        "高校支队": UnitKind.UNIVERSITY_DETACHMENT,
        "企业支队": UnitKind.ENTERPRISE_DETACHMENT,
        "园区支队": UnitKind.ENTERPRISE_DETACHMENT,
        "县级队": UnitKind.COUNTY_TEAM,
        "科技志愿服务分队": UnitKind.SUB_TEAM,
    },
)

CORPS_NAME = "河北省科技志愿者总队"
DETACHMENT_SUFFIX = "科技志愿者支队"
SERVICE_DETACHMENT_SUFFIX = "科技志愿服务支队"
TEAM_SUFFIX = "科技志愿者队"
SUB_TEAM_SUFFIX = "分队"

_DETACHMENTS = frozenset(
    {
        UnitKind.CITY_DETACHMENT,
        UnitKind.SOCIETY_DETACHMENT,
        UnitKind.UNIVERSITY_DETACHMENT,
        UnitKind.ENTERPRISE_DETACHMENT,
    }
)

# Which kinds may be the parent of each kind. Sub-teams (分队) sit under "any detachment or team"
# (DOMAIN.md §2): every detachment and county team, not the corps itself and not another sub-team.
ALLOWED_PARENTS: Mapping[UnitKind, frozenset[UnitKind]] = {
    UnitKind.PROVINCE_CORPS: frozenset(),
    UnitKind.CITY_DETACHMENT: frozenset({UnitKind.PROVINCE_CORPS}),
    UnitKind.SOCIETY_DETACHMENT: frozenset({UnitKind.PROVINCE_CORPS}),
    UnitKind.UNIVERSITY_DETACHMENT: frozenset({UnitKind.PROVINCE_CORPS}),
    UnitKind.ENTERPRISE_DETACHMENT: frozenset({UnitKind.PROVINCE_CORPS, UnitKind.CITY_DETACHMENT}),
    UnitKind.COUNTY_TEAM: frozenset({UnitKind.CITY_DETACHMENT}),
    UnitKind.SUB_TEAM: _DETACHMENTS | {UnitKind.COUNTY_TEAM},
}


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


FIRST_BATCH_MINIMUM: Mapping[UnitKind, int] = {
    UnitKind.CITY_DETACHMENT: 300,
    UnitKind.SOCIETY_DETACHMENT: 30,
    UnitKind.UNIVERSITY_DETACHMENT: 100,
    UnitKind.COUNTY_TEAM: 50,
}
"""首批组建人数: a unit below its minimum is behind, not invalid."""


def member_shortfall(kind: UnitKind, members: int) -> int:
    """How many members a unit still lacks to reach its first-batch minimum (0 when met or none is set)."""
    return max(0, FIRST_BATCH_MINIMUM.get(kind, 0) - members)


# --------------------------------------------------------------------------------------------------
# Leaders (负责人)
# --------------------------------------------------------------------------------------------------


class LeaderRole(CodedEnum):
    CORPS_CHIEF = "corps_chief"
    CORPS_DEPUTY = "corps_deputy"
    DETACHMENT_CHIEF = "detachment_chief"
    DETACHMENT_DEPUTY = "detachment_deputy"
    SECRETARY_GENERAL = "secretary_general"
    DEPUTY_SECRETARY_GENERAL = "deputy_secretary_general"
    TEAM_CHIEF = "team_chief"
    TEAM_DEPUTY = "team_deputy"
    SUB_TEAM_HEAD = "sub_team_head"


_describe(
    LeaderRole,
    {
        LeaderRole.CORPS_CHIEF: "总队长",
        LeaderRole.CORPS_DEPUTY: "副总队长",
        LeaderRole.DETACHMENT_CHIEF: "支队长",
        LeaderRole.DETACHMENT_DEPUTY: "副支队长",
        LeaderRole.SECRETARY_GENERAL: "秘书长",
        LeaderRole.DEPUTY_SECRETARY_GENERAL: "副秘书长",
        LeaderRole.TEAM_CHIEF: "队长",
        LeaderRole.TEAM_DEPUTY: "副队长",
        LeaderRole.SUB_TEAM_HEAD: "分队负责人",
    },
    {"分队长": LeaderRole.SUB_TEAM_HEAD, "支队负责人": LeaderRole.DETACHMENT_CHIEF},
)


@dataclass(frozen=True, slots=True)
class LeaderRule:
    """How many holders of `role` a kind of unit should have; `maximum` None stands for 若干 (several)."""

    role: LeaderRole
    minimum: int
    maximum: int | None


def _rules(*rules: tuple[LeaderRole, int, int | None]) -> tuple[LeaderRule, ...]:
    return tuple(LeaderRule(role, low, high) for role, low, high in rules)


# 若干 (several) is read as "any number, none required". Enterprise deputies are not named by the notice:
# allowed, not required.
LEADER_RULES: Mapping[UnitKind, tuple[LeaderRule, ...]] = {
    UnitKind.PROVINCE_CORPS: _rules((LeaderRole.CORPS_CHIEF, 1, 1), (LeaderRole.CORPS_DEPUTY, 0, None)),
    UnitKind.CITY_DETACHMENT: _rules(
        (LeaderRole.DETACHMENT_CHIEF, 1, 1),
        (LeaderRole.DETACHMENT_DEPUTY, 3, 5),
        (LeaderRole.SECRETARY_GENERAL, 1, 1),
        (LeaderRole.DEPUTY_SECRETARY_GENERAL, 0, None),
    ),
    UnitKind.SOCIETY_DETACHMENT: _rules((LeaderRole.DETACHMENT_CHIEF, 1, 1), (LeaderRole.DETACHMENT_DEPUTY, 0, None)),
    UnitKind.UNIVERSITY_DETACHMENT: _rules(
        (LeaderRole.DETACHMENT_CHIEF, 1, 1), (LeaderRole.DETACHMENT_DEPUTY, 0, None)
    ),
    UnitKind.ENTERPRISE_DETACHMENT: _rules(
        (LeaderRole.DETACHMENT_CHIEF, 1, 1), (LeaderRole.DETACHMENT_DEPUTY, 0, None)
    ),
    UnitKind.COUNTY_TEAM: _rules((LeaderRole.TEAM_CHIEF, 1, 1), (LeaderRole.TEAM_DEPUTY, 2, 3)),
    UnitKind.SUB_TEAM: _rules((LeaderRole.SUB_TEAM_HEAD, 1, 1)),
}


def roles_for(kind: UnitKind) -> tuple[LeaderRole, ...]:
    return tuple(rule.role for rule in LEADER_RULES[kind])


def principal_role(kind: UnitKind) -> LeaderRole:
    """The head of a unit of this kind (总队长, 支队长, 队长 or 分队负责人)."""
    return LEADER_RULES[kind][0].role


class Leader(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    role: LeaderRole
    mobile: str | None = None


@dataclass(frozen=True, slots=True)
class LeaderGap:
    """A leader count outside its rule: compliance information shown to the unit, not an error."""

    role: LeaderRole
    minimum: int
    maximum: int | None
    actual: int

    @property
    def shortfall(self) -> int:
        return max(0, self.minimum - self.actual)

    @property
    def excess(self) -> int:
        return 0 if self.maximum is None else max(0, self.actual - self.maximum)

    @property
    def message(self) -> str:
        if self.maximum is None:
            wanted = f"至少{self.minimum}名"
        elif self.minimum == self.maximum:
            wanted = f"{self.minimum}名"
        else:
            wanted = f"{self.minimum}–{self.maximum}名"
        return f"{self.role.label}应为{wanted}，现有{self.actual}名"


def role_error(kind: UnitKind, role: LeaderRole, field: str) -> FieldError:
    allowed = "、".join(r.label for r in roles_for(kind))
    return FieldError(field, f"{kind.label}不设“{role.label}”职务，可设：{allowed}")


def check_leaders(kind: UnitKind, leaders: Iterable[Leader]) -> list[LeaderGap]:
    """Refuse roles the kind does not have (hard error); return the count gaps (compliance information)."""
    leaders = list(leaders)
    allowed = set(roles_for(kind))
    errors = [role_error(kind, x.role, f"leaders[{i}].role") for i, x in enumerate(leaders) if x.role not in allowed]
    if errors:
        raise InvalidLeaderRoleError(errors)
    counts = Counter(x.role for x in leaders)
    gaps = []
    for rule in LEADER_RULES[kind]:
        actual = counts[rule.role]
        if actual < rule.minimum or (rule.maximum is not None and actual > rule.maximum):
            gaps.append(LeaderGap(rule.role, rule.minimum, rule.maximum, actual))
    return gaps


# --------------------------------------------------------------------------------------------------
# Unit status life cycle: pending → active | rejected(reason)
# --------------------------------------------------------------------------------------------------


class UnitStatus(CodedEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"


_describe(UnitStatus, {UnitStatus.PENDING: "待审核", UnitStatus.ACTIVE: "已通过", UnitStatus.REJECTED: "已驳回"})

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


# --------------------------------------------------------------------------------------------------
# Volunteers (科技志愿者, DOMAIN.md §3)
# --------------------------------------------------------------------------------------------------


class Gender(CodedEnum):
    MALE = "male"
    FEMALE = "female"


_describe(Gender, {Gender.MALE: "男", Gender.FEMALE: "女"}, {"男性": Gender.MALE, "女性": Gender.FEMALE})


class Education(CodedEnum):
    DOCTORATE = "doctorate"
    MASTER = "master"
    BACHELOR = "bachelor"
    JUNIOR_COLLEGE = "junior_college"
    HIGH_SCHOOL = "high_school"
    JUNIOR_HIGH_OR_BELOW = "junior_high_or_below"


_describe(
    Education,
    {
        Education.DOCTORATE: "博士研究生",
        Education.MASTER: "硕士研究生",
        Education.BACHELOR: "大学本科",
        Education.JUNIOR_COLLEGE: "大学专科",
        Education.HIGH_SCHOOL: "高中/中专",
        Education.JUNIOR_HIGH_OR_BELOW: "初中及以下",
    },
    {
        "博士": Education.DOCTORATE,
        "硕士": Education.MASTER,
        "本科": Education.BACHELOR,
        "大专": Education.JUNIOR_COLLEGE,
        "专科": Education.JUNIOR_COLLEGE,
        "高中": Education.HIGH_SCHOOL,
        "中专": Education.HIGH_SCHOOL,
        "中专/高中": Education.HIGH_SCHOOL,
        "高中（中专）": Education.HIGH_SCHOOL,
        "初中": Education.JUNIOR_HIGH_OR_BELOW,
        "小学": Education.JUNIOR_HIGH_OR_BELOW,
    },
)


class PoliticalStatus(CodedEnum):
    CPC_MEMBER = "cpc_member"
    CPC_PROBATIONARY = "cpc_probationary"
    CYL_MEMBER = "cyl_member"
    DEMOCRATIC_PARTY = "democratic_party"
    NON_PARTISAN = "non_partisan"
    MASSES = "masses"


_describe(
    PoliticalStatus,
    {
        PoliticalStatus.CPC_MEMBER: "中共党员",
        PoliticalStatus.CPC_PROBATIONARY: "中共预备党员",
        PoliticalStatus.CYL_MEMBER: "共青团员",
        PoliticalStatus.DEMOCRATIC_PARTY: "民主党派",
        PoliticalStatus.NON_PARTISAN: "无党派人士",
        PoliticalStatus.MASSES: "群众",
    },
    {
        "党员": PoliticalStatus.CPC_MEMBER,
        "中国共产党党员": PoliticalStatus.CPC_MEMBER,
        "预备党员": PoliticalStatus.CPC_PROBATIONARY,
        "团员": PoliticalStatus.CYL_MEMBER,
        "民主党派成员": PoliticalStatus.DEMOCRATIC_PARTY,
        "无党派": PoliticalStatus.NON_PARTISAN,
    },
)


class TitleLevel(CodedEnum):
    """职称级别: the level of the professional title; the title itself (e.g. 高级农艺师) is free text."""

    SENIOR = "senior"
    ASSOCIATE_SENIOR = "associate_senior"
    INTERMEDIATE = "intermediate"
    JUNIOR = "junior"
    NONE = "none"


_describe(
    TitleLevel,
    {
        TitleLevel.SENIOR: "正高级",
        TitleLevel.ASSOCIATE_SENIOR: "副高级",
        TitleLevel.INTERMEDIATE: "中级",
        TitleLevel.JUNIOR: "初级",
        TitleLevel.NONE: "无",
    },
    {"正高": TitleLevel.SENIOR, "副高": TitleLevel.ASSOCIATE_SENIOR, "无职称": TitleLevel.NONE},
)


class ServiceArea(CodedEnum):
    """The notice's three lines of work a volunteer offers to serve in."""

    COMMUNITIES_SCHOOLS = "communities_schools"
    ENTERPRISES_PARKS = "enterprises_parks"
    RURAL_REVITALISATION = "rural_revitalisation"


_describe(
    ServiceArea,
    {
        ServiceArea.COMMUNITIES_SCHOOLS: "进社区进学校",
        ServiceArea.ENTERPRISES_PARKS: "进企业进园区",
        ServiceArea.RURAL_REVITALISATION: "助力乡村振兴",
    },
)

NAME_MAX = 50
TEXT_MAX = 100
ADDRESS_MAX = 200
LIST_MAX = 20


class VolunteerDraft(BaseModel):
    """Registration input as typed by a person or read from a spreadsheet row: raw text, checked by
    `validate_volunteer`. Coded fields take the code or the Chinese label."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str | None = None
    gender: str | None = None
    id_number: str | None = Field(default=None, repr=False)
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


class VolunteerProfile(BaseModel):
    """A volunteer's checked registration data. `id_number` is plain text here: the store encrypts it,
    it is never logged (hidden from repr) and never put in an event."""

    model_config = ConfigDict(frozen=True)

    name: str
    gender: Gender
    id_number: str = Field(repr=False)
    mobile: str
    email: str | None = None
    employer: str
    title: str | None = None
    title_level: TitleLevel
    education: Education
    professional_field: str
    political_status: PoliticalStatus
    skills: list[str] = Field(default_factory=list)
    service_areas: list[ServiceArea] = Field(default_factory=list)

    @property
    def masked_id_number(self) -> str:
        from services.registry.validation import mask_id_number

        return mask_id_number(self.id_number)

    @property
    def birth_date(self) -> date:
        from services.registry.validation import id_birth_date

        return id_birth_date(self.id_number)


class _Collector:
    """Runs field checks and keeps every FieldError, so a form reports all its problems at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, error: FieldError) -> None:
        self.errors.append(error)

    def required(self, value: str | None, field: str, what: str, max_len: int = TEXT_MAX) -> str:
        text = (value or "").strip()
        if not text:
            self.errors.append(FieldError(field, f"请填写{what}"))
        elif len(text) > max_len:
            self.errors.append(FieldError(field, f"{what}不能超过{max_len}个字"))
        return text

    def optional(self, value: str | None, field: str, what: str, max_len: int = TEXT_MAX) -> str | None:
        text = (value or "").strip()
        if len(text) > max_len:
            self.errors.append(FieldError(field, f"{what}不能超过{max_len}个字"))
        return text or None

    def coded(self, cls: type[_E], value: str | None, field: str, what: str) -> _E | None:
        text = (value or "").strip()
        if not text:
            self.errors.append(FieldError(field, f"请选择{what}"))
            return None
        member = cls.lookup(text)
        if member is None:
            self.errors.append(cls.unknown(text, field=field, what=what))
        return member

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailedError(self.errors)


def _text_list(values: Iterable[str], field: str, what: str, out: _Collector) -> list[str]:
    items = list(dict.fromkeys(v.strip() for v in values if v and v.strip()))
    if len(items) > LIST_MAX:
        out.add(FieldError(field, f"{what}最多填写{LIST_MAX}项"))
    for item in items:
        if len(item) > NAME_MAX:
            out.add(FieldError(field, f"{what}“{item[:10]}…”过长，每项不超过{NAME_MAX}个字"))
    return items


def validate_volunteer(draft: VolunteerDraft, *, today: date | None = None) -> VolunteerProfile:
    """Check a registration and return the normalised profile, or raise ValidationFailedError with every
    field error (required fields, ID-card number agreeing with the gender, mobile, e-mail, coded values)."""
    from services.registry import validation as v  # validators build on this module's types

    out = _Collector()
    name = _checked(out, v.validate_person_name, draft.name, "name", "姓名")
    gender = out.coded(Gender, draft.gender, "gender", "性别")
    id_number = ""
    if not (draft.id_number or "").strip():
        out.add(FieldError("id_number", "请填写身份证号码"))
    else:
        try:
            id_number = v.validate_id_number(draft.id_number or "", gender=gender, today=today)
        except FieldError as error:
            out.add(error)
    mobile = _checked(out, v.validate_mobile, draft.mobile, "mobile", "手机号码")
    email = None
    if (draft.email or "").strip():
        try:
            email = v.validate_email(draft.email or "")
        except FieldError as error:
            out.add(error)
    employer = out.required(draft.employer, "employer", "工作单位")
    title = out.optional(draft.title, "title", "职称", NAME_MAX)
    title_level = out.coded(TitleLevel, draft.title_level, "title_level", "职称级别")
    education = out.coded(Education, draft.education, "education", "学历")
    professional_field = out.required(draft.professional_field, "professional_field", "专业领域")
    political_status = out.coded(PoliticalStatus, draft.political_status, "political_status", "政治面貌")
    skills = _text_list(draft.skills, "skills", "技能特长", out)
    areas: list[ServiceArea] = []
    for raw in dict.fromkeys(a.strip() for a in draft.service_areas if a and a.strip()):
        try:
            areas.append(ServiceArea.parse(raw, field="service_areas", what="服务领域"))
        except FieldError as error:
            out.add(error)
    out.raise_if_any()
    # all set when no error was collected
    assert gender is not None
    assert title_level is not None
    assert education is not None
    assert political_status is not None
    return VolunteerProfile(
        name=name,
        gender=gender,
        id_number=id_number,
        mobile=mobile,
        email=email,
        employer=employer,
        title=title,
        title_level=title_level,
        education=education,
        professional_field=professional_field,
        political_status=political_status,
        skills=skills,
        service_areas=areas,
    )


def _checked(out: _Collector, check: _Validator, value: str | None, field: str, what: str) -> str:
    text = (value or "").strip()
    if not text:
        out.add(FieldError(field, f"请填写{what}"))
        return ""
    try:
        return check(text, field=field)
    except FieldError as error:
        out.add(error)
        return ""


class _Validator(Protocol):
    def __call__(self, value: str, *, field: str) -> str: ...


# --------------------------------------------------------------------------------------------------
# Memberships: a volunteer belongs to at most 5 units
# --------------------------------------------------------------------------------------------------

MAX_UNITS_PER_VOLUNTEER = 5


class MembershipStatus(CodedEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    LEFT = "left"


_describe(
    MembershipStatus,
    {
        MembershipStatus.PENDING: "待审核",
        MembershipStatus.ACTIVE: "在队",
        MembershipStatus.REJECTED: "未通过",
        MembershipStatus.LEFT: "已退出",
    },
)

_OPEN_MEMBERSHIP = frozenset({MembershipStatus.PENDING, MembershipStatus.ACTIVE})


class Membership(BaseModel):
    """A volunteer's place in one unit; leaving keeps the record (status `left`)."""

    model_config = ConfigDict(frozen=True)

    unit_id: str
    status: MembershipStatus
    requested_at: datetime
    joined_at: datetime | None = None
    left_at: datetime | None = None
    reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN_MEMBERSHIP


def request_membership(
    memberships: Sequence[Membership], unit_id: str, *, requires_approval: bool, at: datetime
) -> Membership:
    """A new membership in `unit_id`: pending when the unit approves its members, else active at once.

    Refused when the volunteer is already (or asking to be) in that unit, or already in five units.
    """
    open_ = [m for m in memberships if m.is_open]
    if any(m.unit_id == unit_id for m in open_):
        raise AlreadyMemberError("已加入该队伍或正在等待审核")
    if len(open_) >= MAX_UNITS_PER_VOLUNTEER:
        raise MembershipLimitError(f"每位志愿者最多加入{MAX_UNITS_PER_VOLUNTEER}支队伍")
    if requires_approval:
        return Membership(unit_id=unit_id, status=MembershipStatus.PENDING, requested_at=at)
    return Membership(unit_id=unit_id, status=MembershipStatus.ACTIVE, requested_at=at, joined_at=at)


def _refuse(membership: Membership, action: str) -> InvalidTransitionError:
    return InvalidTransitionError(f"成员状态为“{membership.status.label}”，不能{action}")


def approve_membership(membership: Membership, *, at: datetime) -> Membership:
    if membership.status is not MembershipStatus.PENDING:
        raise _refuse(membership, "通过审核")
    return membership.model_copy(update={"status": MembershipStatus.ACTIVE, "joined_at": at})


def reject_membership(membership: Membership, *, reason: str, at: datetime) -> Membership:
    if membership.status is not MembershipStatus.PENDING:
        raise _refuse(membership, "驳回")
    reason = reason.strip()
    if not reason:
        raise ValidationFailedError([FieldError("reason", "请填写驳回原因")])
    return membership.model_copy(update={"status": MembershipStatus.REJECTED, "reason": reason, "left_at": at})


def leave_unit(membership: Membership, *, at: datetime, reason: str | None = None) -> Membership:
    """Record leaving a unit (a pending request may also be withdrawn); the record stays."""
    if not membership.is_open:
        raise _refuse(membership, "退出")
    return membership.model_copy(
        update={"status": MembershipStatus.LEFT, "left_at": at, "reason": (reason or "").strip() or None}
    )


# --------------------------------------------------------------------------------------------------
# Platform number: used everywhere instead of the ID-card number
# --------------------------------------------------------------------------------------------------

PLATFORM_NUMBER_RE = re.compile(r"HB(\d{4})(\d{6})")


def format_platform_number(year: int, seq: int) -> str:
    """`HB` + four-digit year + six-digit sequence, e.g. HB2020000001."""
    if not 1000 <= year <= 9999:
        raise ValueError(f"year out of range: {year}")
    if not 1 <= seq <= 999_999:
        raise ValueError(f"sequence out of range: {seq}")
    return f"HB{year:04d}{seq:06d}"


def parse_platform_number(number: str) -> tuple[int, int]:
    """(year, sequence) of a platform number; ValueError when it is not one."""
    match = PLATFORM_NUMBER_RE.fullmatch(number.strip().upper())
    if match is None or int(match[2]) == 0:
        raise ValueError("not a platform number")
    return int(match[1]), int(match[2])


# --------------------------------------------------------------------------------------------------
# Unit registration data and the contact person (附件1, 附件3)
# --------------------------------------------------------------------------------------------------


class LeaderDraft(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: str | None = None
    role: str | None = None
    mobile: str | None = None


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
    from services.registry import validation as v

    out = _Collector()
    name = out.required(draft.name, "name", "组织名称")
    kind = out.coded(UnitKind, draft.kind, "kind", "组织类型")
    city_code = None
    if draft.city:
        city = find_city(draft.city)
        if city is None:
            out.add(FieldError("city", f"所属地区“{draft.city}”应为河北省的设区市、定州市、辛集市或雄安新区"))
        else:
            city_code = city.code
    credit_code = _optional_checked(out, v.validate_credit_code, draft.credit_code, "credit_code")
    phone = _optional_checked(out, v.validate_office_phone, draft.phone, "phone")
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
        leader_name = _checked(out, v.validate_person_name, raw.name, f"{prefix}.name", "负责人姓名")
        role = out.coded(LeaderRole, raw.role, f"{prefix}.role", "负责人职务")
        if role is not None and kind is not None and role not in roles_for(kind):
            out.add(role_error(kind, role, f"{prefix}.role"))
        mobile = _optional_checked(out, v.validate_mobile, raw.mobile, f"{prefix}.mobile")
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


def _optional_checked(out: _Collector, check: _Validator, value: str | None, field: str) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        return check(text, field=field)
    except FieldError as error:
        out.add(error)
        return None


class ContactDraft(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: str | None = None
    post: str | None = None
    office_phone: str | None = None
    mobile: str | None = None
    email: str | None = None


class ContactPerson(BaseModel):
    """A unit's work contact (工作联系人, 附件3), reachable for reminders: mobile and e-mail required."""

    model_config = ConfigDict(frozen=True)

    name: str
    post: str
    office_phone: str | None = None
    mobile: str
    email: str


def validate_contact(draft: ContactDraft) -> ContactPerson:
    from services.registry import validation as v

    out = _Collector()
    name = _checked(out, v.validate_person_name, draft.name, "name", "联系人姓名")
    post = out.required(draft.post, "post", "职务", NAME_MAX)
    office_phone = _optional_checked(out, v.validate_office_phone, draft.office_phone, "office_phone")
    mobile = _checked(out, v.validate_mobile, draft.mobile, "mobile", "手机号码")
    email = _checked(out, v.validate_email, draft.email, "email", "电子邮箱")
    out.raise_if_any()
    return ContactPerson(name=name, post=post, office_phone=office_phone, mobile=mobile, email=email)
