"""The programme's clock: the wall clock by default; set for tests and demos, never in production."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared import clock
from shared.clock import SHANGHAI, Clock, anchored
from shared.settings import ServiceSettings

MAY_29 = datetime(2026, 5, 29, 10, 0, tzinfo=SHANGHAI)


def test_unset_the_clock_is_the_wall_clock() -> None:
    before = datetime.now(UTC)
    read = Clock().now()
    assert before <= read <= datetime.now(UTC)
    assert read.tzinfo is not None


def test_a_set_clock_reads_its_start_at_its_anchor_and_runs_on_at_its_rate() -> None:
    anchor = datetime.now(UTC) - timedelta(seconds=10)  # set ten real seconds ago
    at_real_speed = Clock(start=MAY_29, anchor=anchor).now()
    assert timedelta(seconds=10) <= at_real_speed - MAY_29 < timedelta(seconds=70)
    a_day_a_second = Clock(start=MAY_29, anchor=anchor, rate=86_400).now()
    assert a_day_a_second - MAY_29 >= timedelta(days=10)  # ten real seconds played ten days


def test_the_programme_date_is_shanghai_s() -> None:
    just_after_midnight_in_shanghai = datetime(2026, 6, 30, 16, 30, tzinfo=UTC)
    assert anchored(just_after_midnight_in_shanghai).today() == date(2026, 7, 1)


def test_settings_give_every_process_the_same_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    anchor = datetime.now(UTC) - timedelta(hours=1)
    monkeypatch.setenv("STVS_CLOCK_START", MAY_29.isoformat())
    monkeypatch.setenv("STVS_CLOCK_ANCHOR", anchor.isoformat())
    first, second = ServiceSettings().clock(), ServiceSettings().clock()
    assert first == second and first.is_set
    assert timedelta(hours=1) <= first.now() - MAY_29 < timedelta(hours=1, minutes=1)


def test_a_clock_without_a_time_zone_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STVS_CLOCK_START", "2026-05-29T10:00:00")
    with pytest.raises(ValidationError) as err:
        ServiceSettings()
    assert "clock_start" in str(err.value)


@pytest.mark.parametrize(("name", "value"), [("STVS_CLOCK_START", MAY_29.isoformat()), ("STVS_CLOCK_RATE", "60")])
def test_production_refuses_a_set_clock(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("STVS_PRODUCTION", "true")
    monkeypatch.setenv("STVS_INTERNAL_TOKEN", "a-production-secret-of-enough-length-0123456789")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="refused in production"):
        ServiceSettings().check_production()


def test_the_process_clock_is_the_one_in_use() -> None:
    previous = clock.current()
    try:
        clock.use(anchored(MAY_29))
        assert clock.today() == date(2026, 5, 29)
        assert clock.now() - MAY_29 < timedelta(minutes=1)
    finally:
        clock.use(previous)
