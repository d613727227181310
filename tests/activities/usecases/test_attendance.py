"""Attendance on the in-memory port: check-in windows by the programme's clock, codes, hours, corrections that need
a reason, and a correction after completion moving the activity's totals."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.activities.domain import (
    AlreadyCheckedIn,
    CheckInCodeMismatch,
    CheckInCodeRequired,
    CorrectionReasonRequired,
    NotConfirmed,
    OutsideCheckInWindow,
    TimeInFuture,
    checkin_code,
)
from services.activities.usecases import activities, attendance, signups
from services.activities.usecases.batches import SignUpBatches
from tests.activities.usecases.conftest import ADMIN, SECRET, STARTS, at, published, volunteer, volunteers
from tests.activities.usecases.memory import MemoryStorage

ENDS = STARTS + timedelta(hours=3)


async def ready(storage: MemoryStorage, batches: SignUpBatches, *ids: str) -> str:
    """A published activity with the volunteers signed up (confirmed)."""
    activity_id = await published(storage, capacity=len(ids) + 1)
    await volunteers(storage, *ids)
    for v in ids:
        await signups.sign_up(storage, batches, activity_id, volunteer(v), None)
    return activity_id


def by_code(activity_id: str, kind: str = "in", code: str | None = None) -> attendance.Presence:
    return attendance.Presence(kind, code=checkin_code(activity_id, SECRET) if code is None else code)  # type: ignore[arg-type]


async def test_the_code_works_from_an_hour_before_the_start_to_an_hour_after_the_end(
    storage: MemoryStorage, batches: SignUpBatches
) -> None:
    activity_id = await ready(storage, batches, "a", "b")
    at(STARTS - timedelta(minutes=61))
    with pytest.raises(OutsideCheckInWindow):
        await attendance.attend(storage, activity_id, volunteer("a"), by_code(activity_id), SECRET)
    at(STARTS - timedelta(minutes=59))
    checked = await attendance.attend(storage, activity_id, volunteer("a"), by_code(activity_id), SECRET)
    assert checked.attendance.check_in is not None
    with pytest.raises(AlreadyCheckedIn):
        await attendance.attend(storage, activity_id, volunteer("a"), by_code(activity_id), SECRET)
    at(ENDS + timedelta(minutes=61))
    with pytest.raises(OutsideCheckInWindow):
        await attendance.attend(storage, activity_id, volunteer("b"), by_code(activity_id), SECRET)


async def test_a_volunteer_needs_this_activitys_code(storage: MemoryStorage, batches: SignUpBatches) -> None:
    activity_id = await ready(storage, batches, "a")
    at(STARTS)
    with pytest.raises(CheckInCodeRequired):
        await attendance.attend(storage, activity_id, volunteer("a"), attendance.Presence("in"), SECRET)
    with pytest.raises(CheckInCodeMismatch):
        await attendance.attend(storage, activity_id, volunteer("a"), by_code(activity_id, code="forged"), SECRET)
    assert not storage.claims


async def test_hours_count_inside_the_activity_and_an_admin_records_past_moments_only(
    storage: MemoryStorage, batches: SignUpBatches
) -> None:
    activity_id = await ready(storage, batches, "a")
    at(STARTS + timedelta(hours=4))
    early = attendance.Presence("in", volunteer_id="a", at=STARTS - timedelta(minutes=30))
    await attendance.attend(storage, activity_id, ADMIN, early, SECRET)
    future = attendance.Presence("out", volunteer_id="a", at=STARTS + timedelta(hours=5))
    with pytest.raises(TimeInFuture):
        await attendance.attend(storage, activity_id, ADMIN, future, SECRET)
    out = attendance.Presence("out", volunteer_id="a", at=STARTS + timedelta(hours=2, minutes=30))
    done = await attendance.attend(storage, activity_id, ADMIN, out, SECRET)
    assert done.attendance.effective_hours(STARTS, ENDS) == Decimal("2.5")
    recorded = [e.data.model_dump() for e in storage.events if e.type.endswith("attendance_recorded.v1")]
    assert [r["hours"] for r in recorded] == [None, 2.5]


async def test_only_a_confirmed_sign_up_checks_in(storage: MemoryStorage, batches: SignUpBatches) -> None:
    activity_id = await published(storage, capacity=1)
    await volunteers(storage, "a", "b")
    for v in "ab":
        await signups.sign_up(storage, batches, activity_id, volunteer(v), None)
    at(STARTS)
    with pytest.raises(NotConfirmed):
        await attendance.attend(storage, activity_id, volunteer("b"), by_code(activity_id), SECRET)


async def test_a_correction_needs_a_reason_and_keeps_the_history(
    storage: MemoryStorage, batches: SignUpBatches
) -> None:
    activity_id = await ready(storage, batches, "a")
    at(STARTS)
    await activities.start(storage, activity_id, ADMIN)
    with pytest.raises(CorrectionReasonRequired):
        await attendance.correct(storage, activity_id, "a", Decimal("2"), "  ", ADMIN)
    first = await attendance.correct(storage, activity_id, "a", Decimal("2"), "忘记签到", ADMIN)
    second = await attendance.correct(storage, activity_id, "a", Decimal("1.5"), "核实后更正", ADMIN)
    assert [c.reason for c in second.attendance.corrections] == ["忘记签到", "核实后更正"]
    assert second.attendance.effective_hours(STARTS, ENDS) == Decimal("1.5")
    assert first.attendance.effective_hours(STARTS, ENDS) == Decimal("2.0")


async def test_a_correction_after_completion_moves_the_totals_and_tells_reporting(
    storage: MemoryStorage, batches: SignUpBatches
) -> None:
    activity_id = await ready(storage, batches, "a", "b")
    at(STARTS)
    await activities.start(storage, activity_id, ADMIN)
    await attendance.attend(storage, activity_id, volunteer("a"), by_code(activity_id), SECRET)
    at(ENDS)
    await attendance.attend(storage, activity_id, volunteer("a"), by_code(activity_id, "out"), SECRET)
    completed = await activities.complete(storage, activity_id, ADMIN)
    assert (completed.total_hours, completed.participants) == (Decimal("3.0"), 1)
    await attendance.correct(storage, activity_id, "b", Decimal("1"), "未签到但全程参与", ADMIN)
    record = storage.activities[activity_id]
    assert (record["total_hours"], record["participants"]) == ("4.0", 2)
    corrected = [e.data.model_dump() for e in storage.events if e.type.endswith("hours_corrected.v1")]
    assert [(c["volunteer_id"], c["previous_hours"], c["hours"]) for c in corrected] == [("b", 0.0, 1.0)]
