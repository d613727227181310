"""Attendance: check-in codes and their window, service hours, corrections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.activities.domain import (
    AlreadyCheckedIn,
    AlreadyCheckedOut,
    Attendance,
    CheckInCodeMismatch,
    CheckOutBeforeCheckIn,
    CorrectionHoursOutOfRange,
    CorrectionReasonRequired,
    NotCheckedIn,
    OutsideCheckInWindow,
    checkin_code,
    compute_hours,
    correct_hours,
    effective_hours,
    make_correction,
    record_check_in,
    record_check_out,
    span_hours,
    verify_checkin,
)
from tests.activities.domain.support import SECRET, T0, T_END, at

# ---- check-in codes ----


def verify(code: str, activity_id: str = "act-A", now: datetime = T0) -> None:
    verify_checkin(code, activity_id=activity_id, secret=SECRET, now=now, starts_at=T0, ends_at=T_END)


def test_checkin_code_is_short_url_safe_and_stable() -> None:
    code = checkin_code("act-A", SECRET)
    assert code == checkin_code("act-A", SECRET.decode())
    assert len(code) <= 22
    assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert code != checkin_code("act-A", b"other-secret")


def test_checkin_code_accepted_inside_window_with_grace() -> None:
    code = checkin_code("act-A", SECRET)
    for moment in (T0 - timedelta(minutes=60), T0, T_END, T_END + timedelta(minutes=60)):
        verify(code, now=moment)


def test_checkin_code_of_activity_a_is_refused_for_b() -> None:
    with pytest.raises(CheckInCodeMismatch):
        verify(checkin_code("act-A", SECRET), activity_id="act-B")
    with pytest.raises(CheckInCodeMismatch):
        verify("garbage")


@pytest.mark.parametrize(
    "moment", [T0 - timedelta(minutes=61), T_END + timedelta(minutes=60, seconds=1), T0 - timedelta(days=1)]
)
def test_checkin_code_refused_outside_window(moment: datetime) -> None:
    with pytest.raises(OutsideCheckInWindow) as info:
        verify(checkin_code("act-A", SECRET), now=moment)
    assert info.value.code != CheckInCodeMismatch.code
    assert "60分钟" in info.value.message


# ---- service hours ----


@pytest.mark.parametrize(
    ("check_in", "check_out", "hours"),
    [
        (at(0), at(3), "3.0"),  # on time
        (at(-0.5), at(2), "2.0"),  # early check-in counts from the start
        (at(1), at(5), "2.0"),  # late check-out counts until the end
        (at(0.5), None, "2.5"),  # forgotten check-out closes at the end
        (at(-2), at(-1), "0.0"),  # left before the start
        (at(4), at(5), "0.0"),  # came after the end
        (at(4), None, "0.0"),
        (at(1), at(1), "0.0"),
        (at(0) + timedelta(minutes=3), at(0) + timedelta(minutes=6), "0.1"),  # 0.05 h rounds half up
        (at(0), at(0) + timedelta(minutes=2, seconds=59), "0.0"),
        (at(0), at(0) + timedelta(minutes=20), "0.3"),
    ],
)
def test_compute_hours(check_in: datetime, check_out: datetime | None, hours: str) -> None:
    assert compute_hours(check_in, check_out, T0, T_END) == Decimal(hours)


def test_overnight_activity_counts_across_midnight() -> None:
    starts = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # 20:00 Shanghai
    ends = starts + timedelta(hours=10)  # 06:00 next day
    assert compute_hours(starts + timedelta(hours=1), None, starts, ends) == Decimal("9.0")
    assert compute_hours(starts - timedelta(hours=1), ends + timedelta(hours=2), starts, ends) == Decimal("10.0")


def test_check_out_before_check_in_is_an_error() -> None:
    with pytest.raises(CheckOutBeforeCheckIn, match="签退时间不能早于签到时间"):
        compute_hours(at(2), at(1), T0, T_END)


def test_attendance_check_in_and_out() -> None:
    attendance = Attendance(activity_id="act-1", volunteer_id="vol-1")
    with pytest.raises(NotCheckedIn):
        record_check_out(attendance, at(1))
    attendance = record_check_in(attendance, at(-0.2))
    with pytest.raises(AlreadyCheckedIn):
        record_check_in(attendance, at(0))
    with pytest.raises(CheckOutBeforeCheckIn):
        record_check_out(attendance, at(-0.5))
    attendance = record_check_out(attendance, at(2.5))
    with pytest.raises(AlreadyCheckedOut):
        record_check_out(attendance, at(3))
    assert attendance.effective_hours(T0, T_END) == Decimal("2.5")


def test_no_check_in_means_zero_computed_hours() -> None:
    attendance = Attendance(activity_id="act-1", volunteer_id="vol-1")
    assert attendance.computed_hours(T0, T_END) == Decimal("0.0")


def test_corrections_need_a_reason_and_hours_within_span() -> None:
    kwargs: dict[str, Any] = {"by": "admin-1", "at": at(5), "starts_at": T0, "ends_at": T_END}
    with pytest.raises(CorrectionReasonRequired, match="补录服务时长必须填写原因"):
        make_correction(2, reason="  ", **kwargs)
    with pytest.raises(CorrectionHoursOutOfRange):
        make_correction("3.1", reason="超出活动时长", **kwargs)
    with pytest.raises(CorrectionHoursOutOfRange):
        make_correction(-0.5, reason="负数", **kwargs)
    assert make_correction("3", reason="全程参加", **kwargs).hours == Decimal("3.0")
    assert make_correction(0, reason="未到场", **kwargs).hours == Decimal("0.0")


def test_last_correction_wins_and_history_is_kept() -> None:
    kwargs: dict[str, Any] = {"by": "admin-1", "starts_at": T0, "ends_at": T_END}
    attendance = record_check_in(Attendance(activity_id="act-1", volunteer_id="vol-1"), at(1))
    attendance = record_check_out(attendance, at(2))
    assert attendance.effective_hours(T0, T_END) == Decimal("1.0")
    first = make_correction("2.5", reason="忘记签到，负责人证明", at=at(4), **kwargs)
    second = make_correction("2.0", reason="核实后更正", at=at(5), **kwargs)
    attendance = correct_hours(correct_hours(attendance, first), second)
    assert attendance.effective_hours(T0, T_END) == Decimal("2.0")
    assert attendance.computed_hours(T0, T_END) == Decimal("1.0")
    assert [c.reason for c in attendance.corrections] == ["忘记签到，负责人证明", "核实后更正"]
    assert effective_hours(Decimal("1.0"), []) == Decimal("1.0")


def test_correction_for_a_volunteer_who_never_checked_in() -> None:
    attendance = Attendance(activity_id="act-1", volunteer_id="vol-1")
    correction = make_correction("1.5", reason="现场未扫码", by="admin-1", at=at(4), starts_at=T0, ends_at=T_END)
    assert correct_hours(attendance, correction).effective_hours(T0, T_END) == Decimal("1.5")


moments = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.just(UTC),
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3))


@given(
    starts=moments,
    length=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3)),
    check_in=moments,
    stay=st.none() | durations,
)
def test_computed_hours_never_negative_nor_beyond_span(
    starts: datetime, length: timedelta, check_in: datetime, stay: timedelta | None
) -> None:
    ends = starts + length
    check_out = None if stay is None else check_in + stay
    hours = compute_hours(check_in, check_out, starts, ends)
    assert Decimal(0) <= hours <= span_hours(starts, ends)
    assert hours <= Decimal(length.total_seconds()) / 3600 + Decimal("0.05")
    assert hours == hours.quantize(Decimal("0.1"))
