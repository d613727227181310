"""The programme's clock: the time every rule of the programme is decided at (deadlines, sign-up windows, check-in,
registration dates, late reports).

In production it is the wall clock. Tests and demos may set it (``STVS_CLOCK_START``, refused in production mode):
the clock then reads ``start`` at the real instant ``anchor`` and runs on from there at ``rate`` times real speed,
so a season can be played in minutes and no test depends on the day it runs. Every process of one platform gets the
same three settings, so they all read the same time. Technical bookkeeping (leases, token and session lifetimes,
outbox grace periods, TTL indexes) stays on the wall clock: the database's TTL monitor knows no other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Clock:
    """Wall time, or ``start`` at the real instant ``anchor``, running at ``rate`` times real speed."""

    start: datetime | None = None
    anchor: datetime | None = None
    rate: float = 1.0

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("a clock's rate must be positive")
        for moment in (self.start, self.anchor):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("a clock's start and anchor need a time zone")

    @property
    def is_set(self) -> bool:
        return self.start is not None

    def now(self) -> datetime:
        real = datetime.now(UTC)
        if self.start is None:
            return real
        anchor = self.anchor or real
        return (self.start + (real - anchor) * self.rate).astimezone(UTC)

    def today(self) -> date:
        """The programme's date in Shanghai (where its deadlines fall)."""
        return self.now().astimezone(SHANGHAI).date()


def anchored(start: datetime | None, anchor: datetime | None = None, rate: float = 1.0) -> Clock:
    """A clock reading ``start`` now (or at ``anchor``); the wall clock when ``start`` is None."""
    if start is None:
        return Clock()
    return Clock(start=start, anchor=anchor or datetime.now(UTC), rate=rate)


_clock = Clock()


def use(clock: Clock) -> None:
    """Make ``clock`` this process's clock (the service frame does it once at start from the settings)."""
    global _clock
    _clock = clock


def current() -> Clock:
    return _clock


def now() -> datetime:
    """The programme's time now (UTC)."""
    return _clock.now()


def today() -> date:
    """The programme's date now, in Shanghai."""
    return _clock.today()
