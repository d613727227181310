"""Service hours and the star levels they earn (1★ 100 h … 5★ 1,500 h); hours kept as exact hundredths."""

from __future__ import annotations

import math
from typing import Any

# Cumulative service hours needed for 1★ … 5★.
STAR_THRESHOLDS: tuple[int, ...] = (100, 300, 600, 1000, 1500)


def star_level(hours: float) -> int:
    """Star level 0-5 from cumulative service hours (1★ 100 h … 5★ 1,500 h)."""
    _check_hours(hours)
    return sum(1 for threshold in STAR_THRESHOLDS if hours >= threshold)


def hours_to_next_star(hours: float) -> float | None:
    """Hours still needed for the next star, rounded to 0.01 h; None at 5★."""
    level = star_level(hours)
    if level == len(STAR_THRESHOLDS):
        return None
    return round(STAR_THRESHOLDS[level] - hours, 2)


def _check_hours(hours: float) -> None:
    if not math.isfinite(hours) or hours < 0:
        raise ValueError("service hours must be a finite, non-negative number")


def hours(hours_c: Any) -> float:
    """Stored hundredths of an hour → hours."""
    return round(int(hours_c or 0) / 100, 2)


def centi(value: float) -> int:
    """Hours → integer hundredths (sums are exact, a replay in another order identical)."""
    return round(value * 100)
