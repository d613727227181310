"""The campaign calendar: deadlines and their reminder slots (DOMAIN.md §6). Pure rules, no I/O.

All calendar logic runs in Asia/Shanghai; a deadline on a day expires at 23:59:59 Shanghai time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple

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


def day_before(starts_at: datetime, hour: int) -> datetime:
    """When a volunteer hears about tomorrow's activity: ``hour``:00 Shanghai the day before it starts."""
    day = to_shanghai(starts_at).date() - timedelta(days=1)
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI)
