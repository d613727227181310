"""Compliance of a unit with the notice's rules (DOMAIN.md §2, §4, §5, §7): pure functions over plain data.

Every calendar computation runs in Asia/Shanghai. A deadline "April 20" means 23:59:59 Shanghai time that day,
and deadlines are stated to the second: anything within that last second is still on time.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum

from shared.calendar import (
    DEFAULT_MONTHLY_REPORT_DAY,
    SHANGHAI,
    action_plan_due,
    end_of_day,
    is_late,
    month_end,
    monthly_report_due,
    quarter_end,
    registration_due,
    to_shanghai,
    zh_date,
    zh_datetime,
)
from shared.programme import Theme

from .periods import DEFAULT_CAMPAIGN_START_MONTH, campaign_quarters
from .vocabulary import (
    FIRST_BATCH_MINIMUM,
    FIRST_BATCH_RULE,
    LEADER_ROLE_ZH,
    REQUIRED_LEADERS,
    THEME_ZH,
    LeaderRequirement,
    UnitKind,
)


def first_batch_units(unit_id: str, kinds: Mapping[str, UnitKind], children: Mapping[str, Sequence[str]]) -> list[str]:
    """The units whose volunteers count toward ``unit_id``'s first-batch headcount: itself and every unit below it
    reached through units without a minimum of their own.

    The notice: “支队组成人员由各市级学会、驻地高校、驻地企业等单位的科技工作者组成” — the teams of city societies,
    universities and enterprises that joined a city detachment (分队, enterprise detachments) count for it; its county
    teams do not: they have their own minimum of 50 (and their own township teams count for them).
    """
    found = [unit_id]
    stack = list(children.get(unit_id, ()))
    while stack:
        child = stack.pop()
        if kinds.get(child) in FIRST_BATCH_MINIMUM:
            continue
        found.append(child)
        stack.extend(children.get(child, ()))
    return found


class RuleStatus(StrEnum):
    MET = "met"
    NOT_YET = "not_yet"  # still open, or behind on a standing rule (headcount, leaders)
    MISSED = "missed"  # the deadline passed before the obligation was met


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One unit against one rule.

    `status` says where the unit stands against the deadline; `gap` says what is still outstanding (people,
    leaders, activities, submissions). A late submission is therefore `missed` with `gap == 0`.
    """

    rule: str
    status: RuleStatus
    gap: int
    label_zh: str
    detail_zh: str
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UnitFacts:
    """What the projections know about one unit for one campaign year."""

    kind: UnitKind
    registered_at: datetime | None = None
    volunteers: int = 0
    # Toward the first-batch minimum (its own and those of the teams that joined it: first_batch_units); None: own
    first_batch_volunteers: int | None = None
    leaders: Mapping[str, int] = field(default_factory=dict)  # role code or Chinese title -> people in post
    activities_per_quarter: Mapping[int, int] = field(default_factory=dict)  # quarter 1-4 -> completed
    theme_counts: Mapping[str, int] = field(default_factory=dict)  # Theme value -> completed this year
    contact_person_given_at: datetime | None = None
    action_plan_submitted_at: datetime | None = None
    monthly_reports: Mapping[str, datetime] = field(default_factory=dict)  # "2026-04" -> submitted_at
    # Reports the province office returned and the unit has not submitted again ("action_plan", "2026-04", …)
    returned: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        UnitKind(self.kind)  # refuses an unknown kind early
        if self.volunteers < 0:
            raise ValueError("volunteers must not be negative")
        for quarter in self.activities_per_quarter:
            if quarter not in (1, 2, 3, 4):
                raise ValueError(f"unknown quarter {quarter!r}")


# ---- compliance ----


def evaluate_unit(
    unit: UnitFacts,
    year: int,
    today: datetime | date,
    *,
    monthly_report_day: int = DEFAULT_MONTHLY_REPORT_DAY,
    campaign_start_month: int = DEFAULT_CAMPAIGN_START_MONTH,
) -> list[RuleResult]:
    """Every rule for `unit` in campaign `year`, as seen at `today`.

    `today` is an aware datetime, or a date meaning the start of that day in Shanghai. Quarters and months
    that ended before the unit registered are not held against it; monthly reports are listed for the
    campaign months up to the current one.
    """
    now = _instant(today)
    results = [_headcount(unit), _leaders(unit)]
    for quarter in campaign_quarters(campaign_start_month):
        if _covers(unit, _quarter_end(year, quarter)):
            results.append(_quarter_activity(unit, year, quarter, now))
    results.extend(_theme(unit, year, theme, now) for theme in Theme)
    one_off = (
        ("registration", "平台注册（4月20日前）", unit.registered_at, _registration_due(year)),
        (
            "contact_person",
            "工作联系人（附件3，4月20日前）",
            unit.contact_person_given_at,
            _registration_due(year),
        ),
        (
            "action_plan",
            "行动计划及注册情况（4月30日前）",
            unit.action_plan_submitted_at,
            _action_plan_due(year),
        ),
    )
    results.extend(
        _deadline_rule(rule, label, done_at, due, now, rule in unit.returned) for rule, label, done_at, due in one_off
    )
    for month in _report_months(year, now, campaign_start_month):
        if _covers(unit, _month_end(year, month)):
            key = f"{year:04d}-{month:02d}"
            results.append(
                _deadline_rule(
                    f"monthly-{key}",
                    f"{year}年{month}月月报",
                    unit.monthly_reports.get(key),
                    _monthly_report_due(year, month, monthly_report_day),
                    now,
                    key in unit.returned,
                )
            )
    return results


_quarter_end = functools.lru_cache(maxsize=256)(quarter_end)
_month_end = functools.lru_cache(maxsize=1024)(month_end)
_registration_due = functools.lru_cache(maxsize=64)(registration_due)
_action_plan_due = functools.lru_cache(maxsize=64)(action_plan_due)
_monthly_report_due = functools.lru_cache(maxsize=1024)(monthly_report_due)


def _instant(today: datetime | date) -> datetime:
    if isinstance(today, datetime):
        return to_shanghai(today)
    return datetime.combine(today, time(0), tzinfo=SHANGHAI)


def _covers(unit: UnitFacts, period_end: datetime) -> bool:
    """Whether the unit was on the platform before a period ended (unknown registration counts as yes)."""
    return unit.registered_at is None or not _is_late(unit.registered_at, period_end)


@functools.lru_cache(maxsize=16384)
def _is_late(at: datetime, due: datetime) -> bool:
    return is_late(at, due)


def _report_months(year: int, now: datetime, start_month: int) -> range:
    if now.year < year:
        return range(0)
    last = 12 if now.year > year else now.month
    return range(start_month, last + 1)


def _headcount(unit: UnitFacts) -> RuleResult:
    # Below the minimum a unit is behind, not invalid: the rule never turns "missed", only shows the gap.
    label = "首批组建人数"
    minimum = FIRST_BATCH_MINIMUM.get(unit.kind)
    if minimum is None:
        return RuleResult(
            "headcount",
            RuleStatus.MET,
            0,
            label,
            f"该类队伍无首批人数要求（已注册志愿者{unit.volunteers}人）",
        )
    counted = unit.volunteers if unit.first_batch_volunteers is None else unit.first_batch_volunteers
    gap = max(0, minimum - counted)
    counted_as = f"已注册志愿者{counted}人（{FIRST_BATCH_RULE}）"
    if gap == 0:
        return RuleResult("headcount", RuleStatus.MET, 0, label, f"{counted_as}，达到首批不少于{minimum}人的要求")
    detail = f"{counted_as}，首批不少于{minimum}人，尚差{gap}人"
    return RuleResult("headcount", RuleStatus.NOT_YET, gap, label, detail)


def _leaders(unit: UnitFacts) -> RuleResult:
    # Like the headcount, a missing leader keeps the unit "not_yet"; exceeding the usual ceiling is noted.
    label = "负责人配备"
    missing: list[str] = []
    over: list[str] = []
    gap = 0
    for req in REQUIRED_LEADERS[unit.kind]:
        name = LEADER_ROLE_ZH[req.role]
        # The event contract counts leaders by Chinese title (中文职务); the registry names roles by code.
        have = unit.leaders[req.role] if req.role in unit.leaders else unit.leaders.get(name, 0)
        if have < req.minimum:
            gap += req.minimum - have
            missing.append(f"{name}{req.minimum - have}名")
        elif req.maximum is not None and have > req.maximum:
            over.append(f"{name}{have}名，超过一般{_range_zh(req)}名")
    notes = "；".join(over)
    if gap:
        detail = "尚缺" + "、".join(missing) + (f"（{notes}）" if notes else "")
        return RuleResult("leaders", RuleStatus.NOT_YET, gap, label, detail)
    return RuleResult("leaders", RuleStatus.MET, 0, label, "负责人配备齐全" + (f"（{notes}）" if notes else ""))


def _range_zh(req: LeaderRequirement) -> str:
    if req.maximum is None or req.maximum == req.minimum:
        return str(req.minimum)
    return f"{req.minimum}—{req.maximum}"


def _quarter_activity(unit: UnitFacts, year: int, quarter: int, now: datetime) -> RuleResult:
    return _quarter_result(unit.activities_per_quarter.get(quarter, 0), year, quarter, now)


# A province's table evaluates the same few outcomes for 1,500 units: each is computed once (results are frozen).
@functools.lru_cache(maxsize=4096)
def _quarter_result(done: int, year: int, quarter: int, now: datetime) -> RuleResult:
    due = quarter_end(year, quarter)
    rule, label = f"activity-Q{quarter}", f"第{quarter}季度活动（不少于1次）"
    if done >= 1:
        return RuleResult(rule, RuleStatus.MET, 0, label, f"本季度已开展活动{done}次", due)
    if is_late(now, due):
        return RuleResult(rule, RuleStatus.MISSED, 1, label, f"第{quarter}季度未开展活动", due)
    detail = f"本季度尚未开展活动，{zh_date(due)}前需至少开展1次"
    return RuleResult(rule, RuleStatus.NOT_YET, 1, label, detail, due)


def _theme(unit: UnitFacts, year: int, theme: Theme, now: datetime) -> RuleResult:
    return _theme_result(unit.theme_counts.get(theme, 0), year, theme, now)


@functools.lru_cache(maxsize=4096)
def _theme_result(done: int, year: int, theme: Theme, now: datetime) -> RuleResult:
    due = end_of_day(date(year, 12, 31))
    rule, label = f"theme-{theme.value}", f"主题活动：{THEME_ZH[theme]}（全年不少于1次）"
    if done >= 1:
        return RuleResult(rule, RuleStatus.MET, 0, label, f"本年度已开展{done}次", due)
    if is_late(now, due):
        return RuleResult(rule, RuleStatus.MISSED, 1, label, f"{year}年度未开展该主题活动", due)
    return RuleResult(rule, RuleStatus.NOT_YET, 1, label, f"本年度尚未开展，{zh_date(due)}前需至少开展1次", due)


@functools.lru_cache(maxsize=16384)
def _deadline_rule(
    rule: str, label: str, done_at: datetime | None, due: datetime, now: datetime, returned: bool = False
) -> RuleResult:
    """A one-off obligation. The deadline judges the first submission; a report the province office returned is
    not done until submitted again (gap 1): still open when first submitted on time, missed when it was late."""
    if done_at is not None and returned:
        late = is_late(done_at, due)
        detail = f"已于{zh_datetime(done_at)}报送，被省级办公室退回，待修改后重新报送"
        return RuleResult(rule, RuleStatus.MISSED if late else RuleStatus.NOT_YET, 1, label, detail, due)
    if done_at is not None:
        if is_late(done_at, due):
            detail = f"已于{zh_datetime(done_at)}完成，晚于截止时间{zh_datetime(due)}"
            return RuleResult(rule, RuleStatus.MISSED, 0, label, detail, due)
        return RuleResult(rule, RuleStatus.MET, 0, label, f"已于{zh_datetime(done_at)}完成", due)
    if is_late(now, due):
        return RuleResult(rule, RuleStatus.MISSED, 1, label, f"截止时间{zh_datetime(due)}已过，尚未完成", due)
    return RuleResult(rule, RuleStatus.NOT_YET, 1, label, f"尚未完成，截止时间{zh_datetime(due)}", due)


STATUS_ZH: Mapping[str, str] = {RuleStatus.MET: "已达标", RuleStatus.NOT_YET: "未完成", RuleStatus.MISSED: "已逾期"}


def in_quarter(rule: str, quarter: int) -> bool:
    """Whether a rule belongs to a quarter's view (its quarter's activity, its months' reports, every yearly rule)."""
    if rule.startswith("activity-Q"):
        return rule == f"activity-Q{quarter}"
    if rule.startswith("monthly-"):
        return (int(rule[-2:]) - 1) // 3 + 1 == quarter
    return True
