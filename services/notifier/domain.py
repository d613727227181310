"""Deadlines, obligations and reminder slots of the notifier (DOMAIN.md §6): pure rules, no I/O.

All calendar logic runs in Asia/Shanghai; a deadline on a day expires at 23:59:59 Shanghai time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple, TypeVar

from shared.calendar import (
    DEFAULT_MONTHLY_REPORT_DAY,
    SHANGHAI,
    action_plan_due,
    is_late,
    month_end,
    monthly_report_due,
    quarter_end,
    registration_due,
    to_shanghai,
)

DEFAULT_OFFSETS_DAYS: tuple[int, ...] = (7, 3, 1)
DEFAULT_START_MONTH = 4  # the notice came out in spring; the campaign's months and quarters start in April
DEFAULT_REMINDER_HOUR = 9  # reminders go out in office hours, not at the midnight a deadline expires

_K = TypeVar("_K")

_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class DeadlineKind(StrEnum):
    REGISTRATION = "registration"
    ACTION_PLAN = "action_plan"
    MONTHLY_REPORT = "monthly_report"
    QUARTERLY_ACTIVITY = "quarterly_activity"


class ObligationKind(StrEnum):
    REGISTRATION = "registration"  # the unit on the platform (信息平台注册)
    CONTACT_PERSON = "contact_person"  # 附件3 工作联系人
    ACTION_PLAN = "action_plan"  # 行动计划, 附件1, 附件2
    MONTHLY_REPORT = "monthly_report"
    QUARTERLY_ACTIVITY = "quarterly_activity"


class NotificationKind(StrEnum):
    APPROACHING = "approaching"  # DeadlineApproaching, to the unit
    MISSED = "missed"  # DeadlineMissed, to the province office


# ---- time helpers ----


def has_passed(due: datetime, now: datetime) -> bool:
    """True once `now` is after `due`; deadlines are stated to the second, so the due second is on time."""
    return is_late(now, due)


def days_left(due: datetime, now: datetime) -> int:
    """Calendar days (Shanghai) from `now` to the day `due` falls on; 0 on the day itself, never negative."""
    return max(0, (to_shanghai(due).date() - to_shanghai(now).date()).days)


# ---- deadlines ----


@dataclass(frozen=True, slots=True)
class Deadline:
    """One dated obligation of the campaign, the same for every unit.

    `checks` are the obligation kinds a unit must have closed by `due_at`; `period` and `period_end` name the
    month ("2026-04") or quarter ("2026-Q2") a recurring deadline covers (None for the one-off ones).
    """

    id: str
    kind: DeadlineKind
    due_at: datetime
    title_zh: str
    action_zh: str
    checks: tuple[ObligationKind, ...]
    period: str | None = None
    period_end: datetime | None = None


@dataclass(frozen=True)
class CampaignCalendar:
    """The deadlines of one campaign year, seeded from DOMAIN.md §6."""

    year: int
    monthly_report_day: int = DEFAULT_MONTHLY_REPORT_DAY
    offsets_days: tuple[int, ...] = DEFAULT_OFFSETS_DAYS
    start_month: int = DEFAULT_START_MONTH
    reminder_hour: int = DEFAULT_REMINDER_HOUR
    _by_id: Mapping[str, Deadline] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.monthly_report_day <= 31:
            raise ValueError("monthly_report_day must be 1-31 (clamped to the month's last day)")
        if not 1 <= self.start_month <= 12:
            raise ValueError("start_month must be 1-12")
        if not 0 <= self.reminder_hour <= 23:
            raise ValueError("reminder_hour must be 0-23")
        if not self.offsets_days or any(o < 1 for o in self.offsets_days):
            raise ValueError("offsets_days must be one or more whole days ≥ 1")
        object.__setattr__(self, "offsets_days", tuple(sorted(set(self.offsets_days), reverse=True)))
        deadlines = sorted(self._build(), key=lambda d: (d.due_at, d.id))
        object.__setattr__(self, "_by_id", {d.id: d for d in deadlines})

    @property
    def deadlines(self) -> list[Deadline]:
        """Every deadline of the year, earliest first."""
        return list(self._by_id.values())

    def deadline(self, deadline_id: str) -> Deadline:
        """The deadline with that id; KeyError when the calendar has none."""
        return self._by_id[deadline_id]

    def due_notifications(self, now: datetime) -> list[DueNotification]:
        return due_notifications(self.deadlines, now, self.offsets_days, self.reminder_hour)

    def _build(self) -> Iterable[Deadline]:
        y = self.year
        yield Deadline(
            id=f"registration-{y}",
            kind=DeadlineKind.REGISTRATION,
            due_at=registration_due(y),
            title_zh=f"{y}年科技志愿服务信息平台注册及工作联系人报送",
            action_zh=(
                "在科技志愿服务信息平台完成本单位及科技志愿者注册，"
                "并填写《河北省科技志愿服务工作联系人情况表》（附件3）报送省科技志愿者总队工作办公室"
            ),
            checks=(ObligationKind.REGISTRATION, ObligationKind.CONTACT_PERSON),
        )
        yield Deadline(
            id=f"action-plan-{y}",
            kind=DeadlineKind.ACTION_PLAN,
            due_at=action_plan_due(y),
            title_zh=f"{y}年科技志愿服务行动计划及注册情况报送",
            action_zh=(
                "报送本单位科技志愿服务行动计划、组织及志愿者注册阶段性情况，"
                "以及《河北省科技志愿服务组织集体注册信息表》（附件1）和《河北省科技志愿者集体注册信息表》（附件2）"
            ),
            checks=(ObligationKind.ACTION_PLAN,),
        )
        for month in range(self.start_month, 13):
            period = f"{y:04d}-{month:02d}"
            yield Deadline(
                id=f"monthly-{period}",
                kind=DeadlineKind.MONTHLY_REPORT,
                due_at=monthly_report_due(y, month, self.monthly_report_day),
                title_zh=f"{y}年{month}月科技志愿服务月报",
                action_zh="报送本月科技志愿服务队伍组建及注册情况、科技志愿服务行动开展情况",
                checks=(ObligationKind.MONTHLY_REPORT,),
                period=period,
                period_end=month_end(y, month),
            )
        for quarter in range((self.start_month - 1) // 3 + 1, 5):
            end = quarter_end(y, quarter)
            yield Deadline(
                id=f"quarter-{y}-Q{quarter}",
                kind=DeadlineKind.QUARTERLY_ACTIVITY,
                due_at=end,
                title_zh=f"{y}年第{quarter}季度科技志愿服务活动",
                action_zh="本季度内至少开展1次科技志愿服务活动，并通过平台发布和宣传",
                checks=(ObligationKind.QUARTERLY_ACTIVITY,),
                period=f"{y}-Q{quarter}",
                period_end=end,
            )


# ---- reminder slots ----


class SlotKey(NamedTuple):
    """What the scheduler claims exactly once: (deadline, unit, "approaching-7d" | … | "missed")."""

    deadline_id: str
    unit_id: str
    slot: str


class DueNotification(NamedTuple):
    """A reminder slot of a deadline that has come due; `offset_days` is None for "missed"."""

    deadline: Deadline
    kind: NotificationKind
    offset_days: int | None

    @property
    def slot(self) -> str:
        if self.kind is NotificationKind.MISSED:
            return "missed"
        return f"approaching-{self.offset_days}d"

    def key(self, unit_id: str) -> SlotKey:
        return SlotKey(self.deadline.id, unit_id, self.slot)


def reminder_at(deadline: Deadline, offset_days: int, hour: int = DEFAULT_REMINDER_HOUR) -> datetime:
    """When the approaching reminder `offset_days` before a deadline fires: `hour`:00 Shanghai on that day."""
    day = to_shanghai(deadline.due_at).date() - timedelta(days=offset_days)
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI)


def due_notifications(
    deadlines: Iterable[Deadline],
    now: datetime,
    offsets_days: Sequence[int] = DEFAULT_OFFSETS_DAYS,
    reminder_hour: int = DEFAULT_REMINDER_HOUR,
) -> list[DueNotification]:
    """The reminder slots that have come due at `now`, at most one per deadline.

    Catch-up after downtime falls out of computing from `now` alone: a slot whose time has passed stays due
    (the scheduler's claim makes it fire once). Only the latest slot of a deadline is due: once the deadline
    has passed that is "missed" and the approaching slots are skipped; before it, the nearest offset that has
    come due supersedes the earlier ones (after a downtime a unit hears "1 day left" once, not three times).
    """
    due: list[tuple[datetime, DueNotification]] = []
    for deadline in deadlines:
        if has_passed(deadline.due_at, now):
            due.append((deadline.due_at, DueNotification(deadline, NotificationKind.MISSED, None)))
            continue
        reached = [o for o in offsets_days if reminder_at(deadline, o, reminder_hour) <= now]
        if reached:
            offset = min(reached)
            at = reminder_at(deadline, offset, reminder_hour)
            due.append((at, DueNotification(deadline, NotificationKind.APPROACHING, offset)))
    due.sort(key=lambda pair: (pair[0], pair[1].deadline.id))
    return [notification for _, notification in due]


# ---- obligations ----


@dataclass(frozen=True, slots=True)
class UnitRegistered:
    unit_id: str
    at: datetime
    contact_person_given: bool = False


@dataclass(frozen=True, slots=True)
class ContactPersonGiven:
    """A `UnitUpdated` that names the unit's contact person."""

    unit_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ActionPlanSubmitted:
    unit_id: str
    year: int
    at: datetime


@dataclass(frozen=True, slots=True)
class MonthlyReportSubmitted:
    unit_id: str
    month: str  # "2026-04": the month reported on
    at: datetime

    def __post_init__(self) -> None:
        if not _MONTH_RE.match(self.month):
            raise ValueError(f"month must look like 2026-04, got {self.month!r}")


@dataclass(frozen=True, slots=True)
class ActivityCompleted:
    unit_id: str
    at: datetime  # when the activity took place (its starts_at): that decides its quarter


Fact = UnitRegistered | ContactPersonGiven | ActionPlanSubmitted | MonthlyReportSubmitted | ActivityCompleted


@dataclass(frozen=True, slots=True)
class Obligation:
    """One unit's obligation towards one deadline; `closed_at` None while it is open."""

    unit_id: str
    deadline: Deadline
    kind: ObligationKind
    closed_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def was_open_at(self, at: datetime) -> bool:
        return self.closed_at is None or has_passed(due=at, now=self.closed_at)


@dataclass(frozen=True, slots=True)
class UnitObligations:
    """The facts about one unit that open and close its obligations.

    A fold of facts that keeps the earliest time of each: applying a fact twice, or facts in any order
    (an activity seen before the unit's registration), gives the same state. Obligations are derived
    from it against a calendar.
    """

    unit_id: str
    registered_at: datetime | None = None
    contact_person_at: datetime | None = None
    action_plans: Mapping[int, datetime] = field(default_factory=dict)  # campaign year -> submitted
    monthly_reports: Mapping[str, datetime] = field(default_factory=dict)  # "2026-04" -> submitted
    active_quarters: Mapping[str, datetime] = field(default_factory=dict)  # "2026-Q2" -> first activity

    def apply(self, fact: Fact) -> UnitObligations:
        if fact.unit_id != self.unit_id:
            raise ValueError(f"fact for unit {fact.unit_id!r} applied to unit {self.unit_id!r}")
        at = to_shanghai(fact.at)
        match fact:
            case UnitRegistered(contact_person_given=given):
                state = replace(self, registered_at=_earliest(self.registered_at, at))
                return replace(state, contact_person_at=_earliest(self.contact_person_at, at)) if given else state
            case ContactPersonGiven():
                return replace(self, contact_person_at=_earliest(self.contact_person_at, at))
            case ActionPlanSubmitted(year=year):
                return replace(self, action_plans=_with_earliest(self.action_plans, year, at))
            case MonthlyReportSubmitted(month=month):
                return replace(self, monthly_reports=_with_earliest(self.monthly_reports, month, at))
            case ActivityCompleted():
                quarter = f"{at.year}-Q{(at.month - 1) // 3 + 1}"
                return replace(self, active_quarters=_with_earliest(self.active_quarters, quarter, at))

    def obligations(self, calendar: CampaignCalendar) -> list[Obligation]:
        """Every obligation of the unit in that campaign year, open or closed.

        Registration opens them all; none exist before it (the notifier knows a unit only once it has
        registered, so `registration` is opened and closed by the same fact and only shows whether that was
        late). A monthly or quarterly obligation whose period ended before the unit registered is not opened.
        """
        if self.registered_at is None:
            return []
        found: list[Obligation] = []
        for deadline in calendar.deadlines:
            if deadline.period_end is not None and has_passed(deadline.period_end, self.registered_at):
                continue
            found.extend(
                Obligation(self.unit_id, deadline, kind, self._closed_at(kind, deadline, calendar.year))
                for kind in deadline.checks
            )
        return found

    def _closed_at(self, kind: ObligationKind, deadline: Deadline, year: int) -> datetime | None:
        match kind:
            case ObligationKind.REGISTRATION:
                return self.registered_at
            case ObligationKind.CONTACT_PERSON:
                return self.contact_person_at
            case ObligationKind.ACTION_PLAN:
                return self.action_plans.get(year)
            case ObligationKind.MONTHLY_REPORT:
                return self.monthly_reports.get(deadline.period or "")
            case ObligationKind.QUARTERLY_ACTIVITY:
                return self.active_quarters.get(deadline.period or "")


class UnitSlot(NamedTuple):
    """A due slot that concerns one unit, with the obligations that make it concern the unit."""

    key: SlotKey
    notification: DueNotification
    obligations: tuple[ObligationKind, ...]


def slots_for_unit(
    unit: UnitObligations, calendar: CampaignCalendar, due: Sequence[DueNotification], now: datetime
) -> list[UnitSlot]:
    """The due slots that concern this unit.

    Approaching: some obligation checked by the deadline is still open now. Missed: some was still open
    when the deadline passed (closing it late does not undo the miss; the province office hears of it).
    """
    by_deadline: dict[str, list[Obligation]] = {}
    for obligation in unit.obligations(calendar):
        by_deadline.setdefault(obligation.deadline.id, []).append(obligation)
    found: list[UnitSlot] = []
    for notification in due:
        at = notification.deadline.due_at if notification.kind is NotificationKind.MISSED else now
        kinds = tuple(o.kind for o in by_deadline.get(notification.deadline.id, []) if o.was_open_at(at))
        if kinds:
            found.append(UnitSlot(notification.key(unit.unit_id), notification, kinds))
    return found


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def _with_earliest(mapping: Mapping[_K, datetime], key: _K, at: datetime) -> dict[_K, datetime]:
    updated = dict(mapping)
    updated[key] = _earliest(mapping.get(key), at)
    return updated
