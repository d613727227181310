"""The programme's vocabulary as reporting uses it: unit kinds, leader posts and their rules, first-batch minimums,
theme labels (DOMAIN.md §2, §4), in this one module so that it can be replaced by imports from shared/ at once.

Reporting's own copy for now: the registry holds another (issue 15: the vocabulary once, in shared/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.programme import Theme


class UnitKind(StrEnum):
    """Kinds of unit in the three-level hierarchy (队伍建设)."""

    PROVINCE_CORPS = "province_corps"  # 总队
    CITY_DETACHMENT = "city_detachment"  # 市级支队
    SOCIETY_DETACHMENT = "society_detachment"  # 省级学会支队
    UNIVERSITY_DETACHMENT = "university_detachment"  # 高校支队
    ENTERPRISE_DETACHMENT = "enterprise_detachment"  # 企业（园区）支队
    COUNTY_TEAM = "county_team"  # 县（市、区）队
    SUB_TEAM = "sub_team"  # 分队


UNIT_KIND_ZH: Mapping[UnitKind, str] = {
    UnitKind.PROVINCE_CORPS: "省科技志愿者总队",
    UnitKind.CITY_DETACHMENT: "市级科技志愿者支队",
    UnitKind.SOCIETY_DETACHMENT: "省级学会科技志愿者支队",
    UnitKind.UNIVERSITY_DETACHMENT: "高校科技志愿者支队",
    UnitKind.ENTERPRISE_DETACHMENT: "企业（园区）科技志愿者支队",
    UnitKind.COUNTY_TEAM: "县（市、区）科技志愿者队",
    UnitKind.SUB_TEAM: "科技志愿服务分队",
}


class LeaderRole(StrEnum):
    """Leadership posts named by the notice (the registry's role codes)."""

    CORPS_CHIEF = "corps_chief"  # 总队长
    CORPS_DEPUTY = "corps_deputy"  # 副总队长
    DETACHMENT_CHIEF = "detachment_chief"  # 支队长
    DETACHMENT_DEPUTY = "detachment_deputy"  # 副支队长
    SECRETARY_GENERAL = "secretary_general"  # 秘书长
    DEPUTY_SECRETARY_GENERAL = "deputy_secretary_general"  # 副秘书长
    TEAM_CHIEF = "team_chief"  # 队长
    TEAM_DEPUTY = "team_deputy"  # 副队长
    SUB_TEAM_HEAD = "sub_team_head"  # 分队负责人


LEADER_ROLE_ZH: Mapping[LeaderRole, str] = {
    LeaderRole.CORPS_CHIEF: "总队长",
    LeaderRole.CORPS_DEPUTY: "副总队长",
    LeaderRole.DETACHMENT_CHIEF: "支队长",
    LeaderRole.DETACHMENT_DEPUTY: "副支队长",
    LeaderRole.SECRETARY_GENERAL: "秘书长",
    LeaderRole.DEPUTY_SECRETARY_GENERAL: "副秘书长",
    LeaderRole.TEAM_CHIEF: "队长",
    LeaderRole.TEAM_DEPUTY: "副队长",
    LeaderRole.SUB_TEAM_HEAD: "分队负责人",
}


THEME_ZH: Mapping[Theme, str] = {
    Theme.NATIONAL_KEY_EVENT: "结合全国科普日、科技周等重点活动",
    Theme.POVERTY_HEALTH: "科技助力精准扶贫和卫生健康",
    Theme.WOMEN_YOUTH: "服务农村妇女和青少年等重点人群",
    Theme.ENTERPRISE_INNOVATION: "助力企业创新发展",
}

FIRST_BATCH_MINIMUM: Mapping[UnitKind, int] = {
    UnitKind.CITY_DETACHMENT: 300,
    UnitKind.SOCIETY_DETACHMENT: 30,
    UnitKind.UNIVERSITY_DETACHMENT: 100,
    UnitKind.COUNTY_TEAM: 50,
}
FIRST_BATCH_RULE = "含加入本队伍的学会、高校、企业等队伍及分队的志愿者；县级队自有首批人数要求，另行计算"


@dataclass(frozen=True, slots=True)
class LeaderRequirement:
    """How many holders of a post a unit needs; `maximum` is the notice's usual ceiling ("一般3—5名")."""

    role: LeaderRole
    minimum: int
    maximum: int | None = None


REQUIRED_LEADERS: Mapping[UnitKind, tuple[LeaderRequirement, ...]] = {
    UnitKind.PROVINCE_CORPS: (LeaderRequirement(LeaderRole.CORPS_CHIEF, 1, 1),),
    UnitKind.CITY_DETACHMENT: (
        LeaderRequirement(LeaderRole.DETACHMENT_CHIEF, 1, 1),
        LeaderRequirement(LeaderRole.DETACHMENT_DEPUTY, 3, 5),
        LeaderRequirement(LeaderRole.SECRETARY_GENERAL, 1, 1),
    ),
    UnitKind.SOCIETY_DETACHMENT: (LeaderRequirement(LeaderRole.DETACHMENT_CHIEF, 1, 1),),
    UnitKind.UNIVERSITY_DETACHMENT: (LeaderRequirement(LeaderRole.DETACHMENT_CHIEF, 1, 1),),
    UnitKind.ENTERPRISE_DETACHMENT: (LeaderRequirement(LeaderRole.DETACHMENT_CHIEF, 1, 1),),
    UnitKind.COUNTY_TEAM: (
        LeaderRequirement(LeaderRole.TEAM_CHIEF, 1, 1),
        LeaderRequirement(LeaderRole.TEAM_DEPUTY, 2, 3),
    ),
    UnitKind.SUB_TEAM: (LeaderRequirement(LeaderRole.SUB_TEAM_HEAD, 1, 1),),
}


# Short labels of the export's columns (lines of work, themes), keyed by the contract's values.
LINE_ZH: Mapping[str, str] = {
    "community_school": "进社区进学校",
    "enterprise_park": "进企业进园区",
    "rural_revitalization": "助力乡村振兴",
}
THEME_SHORT_ZH: Mapping[str, str] = {
    "national_key_event": "重点活动",
    "poverty_health": "精准扶贫和卫生健康",
    "women_youth": "农村妇女和青少年",
    "enterprise_innovation": "企业创新发展",
}
