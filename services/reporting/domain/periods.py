"""Periods of the campaign: its quarters and the months a report is for (Asia/Shanghai)."""

from __future__ import annotations

import re

from .errors import Invalid

# The notice came out in spring: campaign months and quarters start in April unless configured otherwise.
DEFAULT_CAMPAIGN_START_MONTH = 4
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def campaign_quarters(start_month: int = DEFAULT_CAMPAIGN_START_MONTH) -> range:
    """Quarters that overlap the campaign months start_month..12."""
    if not 1 <= start_month <= 12:
        raise ValueError("the campaign start month must be 1-12")
    return range((start_month - 1) // 3 + 1, 5)


def parse_month(month: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month); :class:`Invalid` (``bad_month``) otherwise."""
    found = MONTH.match(month)
    if not found:
        raise Invalid("bad_month", f"月份格式应为 YYYY-MM，收到 {month!r}")
    return int(found.group(1)), int(found.group(2))


def parse_year(year: str) -> int:
    """``YYYY`` → the year; :class:`Invalid` (``bad_year``) otherwise."""
    if not re.fullmatch(r"\d{4}", year):
        raise Invalid("bad_year", f"年份格式应为四位数字（如 2026），收到 {year!r}")
    return int(year)
