"""The programme's vocabulary as reporting reads it. Unit kinds, leader posts and their rules, first-batch minimums
and theme labels are defined once, in :mod:`shared.vocabulary` and :mod:`shared.programme`, with the notice's
wording; this module only names the views reporting uses, and keeps the export's short column labels.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.programme import Theme
from shared.vocabulary import (
    FIRST_BATCH_MINIMUM,
    FIRST_BATCH_RULE,
    LeaderRole,
    UnitKind,
    required_leaders,
)
from shared.vocabulary import LeaderRule as LeaderRequirement

__all__ = [
    "FIRST_BATCH_MINIMUM",
    "FIRST_BATCH_RULE",
    "LEADER_ROLE_ZH",
    "LINE_ZH",
    "REQUIRED_LEADERS",
    "THEME_SHORT_ZH",
    "THEME_ZH",
    "UNIT_KIND_ZH",
    "LeaderRequirement",
    "LeaderRole",
    "UnitKind",
]

UNIT_KIND_ZH: Mapping[UnitKind, str] = {kind: kind.label for kind in UnitKind}
LEADER_ROLE_ZH: Mapping[LeaderRole, str] = {role: role.label for role in LeaderRole}
THEME_ZH: Mapping[Theme, str] = {theme: theme.label for theme in Theme}
# The posts a kind of unit must fill (a minimum above 0); the others (若干, several) are allowed, not required.
REQUIRED_LEADERS: Mapping[UnitKind, tuple[LeaderRequirement, ...]] = {kind: required_leaders(kind) for kind in UnitKind}

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
