"""The programme's fixed vocabularies (DOMAIN.md §4), shared by every service that shows or counts them.

The values are those of the event contract (``LineOfWork`` / ``Theme`` literals in shared/contracts/events.py);
each member carries the Chinese label users see.
"""

from __future__ import annotations

from enum import StrEnum
from typing import get_args

from shared.contracts import events


class LineOfWork(StrEnum):
    """The three lines of work of the programme."""

    COMMUNITY_SCHOOL = "community_school"
    ENTERPRISE_PARK = "enterprise_park"
    RURAL_REVITALIZATION = "rural_revitalization"

    @property
    def label(self) -> str:
        return _LINE_OF_WORK_LABELS[self]


_LINE_OF_WORK_LABELS: dict[LineOfWork, str] = {
    LineOfWork.COMMUNITY_SCHOOL: "进社区进学校",
    LineOfWork.ENTERPRISE_PARK: "进企业进园区",
    LineOfWork.RURAL_REVITALIZATION: "助力乡村振兴",
}


class Theme(StrEnum):
    """The four quota themes; one activity may count towards several, each unit covers every one yearly."""

    NATIONAL_KEY_EVENT = "national_key_event"
    POVERTY_HEALTH = "poverty_health"
    WOMEN_YOUTH = "women_youth"
    ENTERPRISE_INNOVATION = "enterprise_innovation"

    @property
    def label(self) -> str:
        return _THEME_LABELS[self]


_THEME_LABELS: dict[Theme, str] = {
    Theme.NATIONAL_KEY_EVENT: "全国科普日/科技周/全国科技工作者日/三下乡 等重点活动",
    Theme.POVERTY_HEALTH: "科技助力精准扶贫和卫生健康",
    Theme.WOMEN_YOUTH: "农村妇女和青少年",
    Theme.ENTERPRISE_INNOVATION: "助力企业创新发展",
}

# The enums and the event contract name the same values; a drift is a programming error caught at import.
assert {m.value for m in LineOfWork} == set(get_args(events.LineOfWork)), "LineOfWork differs from the contract"
assert {m.value for m in Theme} == set(get_args(events.Theme)), "Theme differs from the contract"
