"""The programme's calendar (DOMAIN.md §3, §5, §6), in Asia/Shanghai where the deadlines are counted.

Registration and the contact-person form are due on April 20, the action plan and forms 附件1/附件2 on April 30,
each monthly report on a set day of the following month, the activity quota at each quarter's end — always at
23:59:59 Shanghai time of that day. Reporting evaluates against it and the notifier reminds before it.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_MONTHLY_REPORT_DAY = 5


def to_shanghai(dt: datetime) -> datetime:
    """The same instant in Shanghai time; a naive datetime is refused as ambiguous."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("an aware datetime is required (naive datetimes are ambiguous)")
    return dt.astimezone(SHANGHAI)


def end_of_day(day: date) -> datetime:
    """23:59:59 Shanghai time on `day`: the instant a deadline "on `day`" expires."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=SHANGHAI)


def quarter_of(dt: datetime) -> int:
    """Quarter 1-4 of the Shanghai calendar that `dt` falls in."""
    return (to_shanghai(dt).month - 1) // 3 + 1


def month_key(dt: datetime) -> str:
    """The Shanghai calendar month of `dt`, e.g. "2026-04"."""
    local = to_shanghai(dt)
    return f"{local.year:04d}-{local.month:02d}"


def month_end(year: int, month: int) -> datetime:
    return end_of_day(date(year, month, calendar.monthrange(year, month)[1]))


def quarter_end(year: int, quarter: int) -> datetime:
    if quarter not in (1, 2, 3, 4):
        raise ValueError(f"unknown quarter {quarter!r}")
    return month_end(year, quarter * 3)


def registration_due(year: int) -> datetime:
    """Platform registration and the contact-person form (附件3): April 20."""
    return end_of_day(date(year, 4, 20))


def action_plan_due(year: int) -> datetime:
    """Action plan, registration status, 附件1 and 附件2: April 30."""
    return end_of_day(date(year, 4, 30))


def monthly_report_due(year: int, month: int, day: int = DEFAULT_MONTHLY_REPORT_DAY) -> datetime:
    """The report for `month` is due on `day` of the following month (clamped to that month's last day)."""
    if not 1 <= day <= 31:
        raise ValueError("the monthly report day must be 1-31")
    due_year, due_month = (year + 1, 1) if month == 12 else (year, month + 1)
    last = calendar.monthrange(due_year, due_month)[1]
    return end_of_day(date(due_year, due_month, min(day, last)))


def is_late(submitted_at: datetime, due: datetime) -> bool:
    """True when `submitted_at` falls after `due`; sub-second fractions inside the due second are on time."""
    to_shanghai(due)
    return to_shanghai(submitted_at).replace(microsecond=0) > due


def zh_date(dt: datetime) -> str:
    """E.g. "2026年4月20日", in Shanghai time."""
    local = to_shanghai(dt)
    return f"{local.year}年{local.month}月{local.day}日"


def zh_datetime(dt: datetime) -> str:
    """E.g. "2026年4月20日 23:59", in Shanghai time."""
    local = to_shanghai(dt)
    return f"{zh_date(local)} {local.hour:02d}:{local.minute:02d}"
