"""The programme's unit vocabulary, once (DOMAIN.md §2, the 2020 notice): unit kinds, leader roles and their rules,
the allowed parents and the first-batch minimums, with the notice's wording for every label.

Codes (the enum values) are what is stored, sent in events and accepted by every API; labels are what users see.
A label is also accepted where a code is, as are the aliases below (older wordings and the short forms
spreadsheets use), so a file filled with either wording still parses. Pure data and rules: no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Self, TypeVar, cast

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
    def unknown_message(cls, raw: str, what: str) -> str:
        """The Chinese refusal of a value that is none of the codes, labels or aliases."""
        return f"{what}“{raw}”不在可选范围内，可选：{'、'.join(cls.labels())}"


E = TypeVar("E", bound=CodedEnum)


def describe(cls: type[E], labels: Mapping[E, str], aliases: Mapping[str, E] | None = None) -> None:
    """Give every member of a coded enum its label, and the other wordings it is recognised by."""
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
# The unit hierarchy (队伍建设): 总队 → 支队 → 队, with 分队 under any detachment or team
# --------------------------------------------------------------------------------------------------


class UnitKind(CodedEnum):
    PROVINCE_CORPS = "province_corps"  # 总队
    CITY_DETACHMENT = "city_detachment"  # 市级支队
    SOCIETY_DETACHMENT = "society_detachment"  # 省级学会支队
    UNIVERSITY_DETACHMENT = "university_detachment"  # 高校支队
    ENTERPRISE_DETACHMENT = "enterprise_detachment"  # 企业（园区）支队
    COUNTY_TEAM = "county_team"  # 县（市、区）队
    SUB_TEAM = "sub_team"  # 分队


# The notice's headings (一、1–6) and, for 分队, its words "科技志愿服务分队" (the registry said 分队 before, the
# reporting service 科技志愿服务分队; both are accepted).
describe(
    UnitKind,
    {
        UnitKind.PROVINCE_CORPS: "河北省科技志愿者总队",
        UnitKind.CITY_DETACHMENT: "市级科技志愿者支队",
        UnitKind.SOCIETY_DETACHMENT: "省级学会科技志愿者支队",
        UnitKind.UNIVERSITY_DETACHMENT: "高校科技志愿者支队",
        UnitKind.ENTERPRISE_DETACHMENT: "企业（园区）科技志愿者支队",
        UnitKind.COUNTY_TEAM: "县（市、区）科技志愿者队",
        UnitKind.SUB_TEAM: "科技志愿服务分队",
    },
    {
        "总队": UnitKind.PROVINCE_CORPS,
        "省科技志愿者总队": UnitKind.PROVINCE_CORPS,
        "市级支队": UnitKind.CITY_DETACHMENT,
        "学会支队": UnitKind.SOCIETY_DETACHMENT,
        "高校支队": UnitKind.UNIVERSITY_DETACHMENT,
        "企业支队": UnitKind.ENTERPRISE_DETACHMENT,
        "园区支队": UnitKind.ENTERPRISE_DETACHMENT,
        "县级队": UnitKind.COUNTY_TEAM,
        "分队": UnitKind.SUB_TEAM,
        "科技志愿者分队": UnitKind.SUB_TEAM,
    },
)

DETACHMENTS: frozenset[UnitKind] = frozenset(
    {
        UnitKind.CITY_DETACHMENT,
        UnitKind.SOCIETY_DETACHMENT,
        UnitKind.UNIVERSITY_DETACHMENT,
        UnitKind.ENTERPRISE_DETACHMENT,
    }
)

# Which kinds may be the parent of each kind (the notice, 一、2–6):
# - society, university and enterprise detachments sit under the province corps; the teams of city-level societies,
#   local universities and enterprises join the city detachment where they sit (按属地管理原则, 一、2), as
#   detachments of their kind under it;
# - county teams under their city detachment;
# - sub-teams (分队) under any detachment or team (DOMAIN.md §2): a university's department teams (一、4), a
#   society's specialist teams (一、3), township/street teams under a county team (一、6) — not the corps itself and
#   not another sub-team.
ALLOWED_PARENTS: Mapping[UnitKind, frozenset[UnitKind]] = {
    UnitKind.PROVINCE_CORPS: frozenset(),
    UnitKind.CITY_DETACHMENT: frozenset({UnitKind.PROVINCE_CORPS}),
    UnitKind.SOCIETY_DETACHMENT: frozenset({UnitKind.PROVINCE_CORPS, UnitKind.CITY_DETACHMENT}),
    UnitKind.UNIVERSITY_DETACHMENT: frozenset({UnitKind.PROVINCE_CORPS, UnitKind.CITY_DETACHMENT}),
    UnitKind.ENTERPRISE_DETACHMENT: frozenset({UnitKind.PROVINCE_CORPS, UnitKind.CITY_DETACHMENT}),
    UnitKind.COUNTY_TEAM: frozenset({UnitKind.CITY_DETACHMENT}),
    UnitKind.SUB_TEAM: DETACHMENTS | {UnitKind.COUNTY_TEAM},
}

FIRST_BATCH_MINIMUM: Mapping[UnitKind, int] = {
    UnitKind.CITY_DETACHMENT: 300,
    UnitKind.SOCIETY_DETACHMENT: 30,
    UnitKind.UNIVERSITY_DETACHMENT: 100,
    UnitKind.COUNTY_TEAM: 50,
}
"""首批组建人数: a unit below its minimum is behind, not invalid."""

FIRST_BATCH_RULE = "含加入本队伍的学会、高校、企业等队伍及分队的志愿者；县级队自有首批人数要求，另行计算"
"""Who counts toward a first-batch minimum, as shown to users."""


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


describe(
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
# allowed, not required. The first rule of each kind is its head (principal_role).
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
    """The posts a unit of this kind may have."""
    return tuple(rule.role for rule in LEADER_RULES[kind])


def required_leaders(kind: UnitKind) -> tuple[LeaderRule, ...]:
    """The posts a unit of this kind must fill (minimum above zero)."""
    return tuple(rule for rule in LEADER_RULES[kind] if rule.minimum > 0)


def principal_role(kind: UnitKind) -> LeaderRole:
    """The head of a unit of this kind (总队长, 支队长, 队长 or 分队负责人)."""
    return LEADER_RULES[kind][0].role
