"""The programme's fixed vocabularies (DOMAIN.md §4), shared by every service that shows or counts them.

The values are those of the event contract (``LineOfWork`` / ``Theme`` literals in shared/contracts/events.py);
each member carries the Chinese label users see.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    Theme.NATIONAL_KEY_EVENT: "全国科普日、科技周等重点活动",
    Theme.POVERTY_HEALTH: "科技助力精准扶贫和卫生健康",
    Theme.WOMEN_YOUTH: "农村妇女和青少年等重点人群",
    Theme.ENTERPRISE_INNOVATION: "助力企业创新发展",
}

# The enums and the event contract name the same values; a drift is a programming error caught at import.
assert {m.value for m in LineOfWork} == set(get_args(events.LineOfWork)), "LineOfWork differs from the contract"
assert {m.value for m in Theme} == set(get_args(events.Theme)), "Theme differs from the contract"


@dataclass(frozen=True, slots=True)
class City:
    """A city-level area of Hebei: the 11 prefecture cities, 定州 and 辛集, and 雄安新区."""

    code: str  # stable English slug, used in filters and stored on units
    name: str  # 石家庄市
    short_name: str  # 石家庄


CITIES: tuple[City, ...] = (
    City("shijiazhuang", "石家庄市", "石家庄"),
    City("tangshan", "唐山市", "唐山"),
    City("qinhuangdao", "秦皇岛市", "秦皇岛"),
    City("handan", "邯郸市", "邯郸"),
    City("xingtai", "邢台市", "邢台"),
    City("baoding", "保定市", "保定"),
    City("zhangjiakou", "张家口市", "张家口"),
    City("chengde", "承德市", "承德"),
    City("cangzhou", "沧州市", "沧州"),
    City("langfang", "廊坊市", "廊坊"),
    City("hengshui", "衡水市", "衡水"),
    # county-level cities administered directly by the province, treated as cities by the notice
    City("dingzhou", "定州市", "定州"),
    City("xinji", "辛集市", "辛集"),
)
"""The 13 city-level units that each form a city detachment."""

XIONGAN = City("xiongan", "雄安新区", "雄安")
"""雄安新区 (through its 改革发展局), addressed alongside the cities."""

CITY_LEVEL_AREAS: tuple[City, ...] = (*CITIES, XIONGAN)

_CITY_NAMES = {city.code: city.name for city in CITY_LEVEL_AREAS}


def city_name(code: str | None) -> str | None:
    """The Chinese name of a city-level area by its code (石家庄市 for ``shijiazhuang``); unknown codes as given."""
    return None if code is None else _CITY_NAMES.get(code, code)
