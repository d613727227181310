"""Attendance: check-in codes and their window, service hours (服务时长) and their corrections (补录)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from pydantic import AwareDatetime, BaseModel

from .errors import (
    AlreadyCheckedIn,
    AlreadyCheckedOut,
    CheckInCodeMismatch,
    CheckOutBeforeCheckIn,
    CorrectionHoursOutOfRange,
    CorrectionReasonRequired,
    NotCheckedIn,
    OutsideCheckInWindow,
)
from .values import MODEL_CONFIG as _MODEL_CONFIG
from .values import Id

CHECKIN_GRACE = timedelta(minutes=60)
HOURS_STEP = Decimal("0.1")

# ---- Check-in codes ----

_CHECKIN_DOMAIN = b"stvs.activities.checkin.v1:"
_CHECKIN_BYTES = 12  # 96 bits → 16 url-safe characters


def checkin_code(activity_id: str, secret: bytes | str) -> str:
    """The activity's check-in code (the QR code's content): a short url-safe HMAC-SHA256 of its id."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, _CHECKIN_DOMAIN + activity_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:_CHECKIN_BYTES]).decode().rstrip("=")


def checkin_window(
    starts_at: datetime, ends_at: datetime, *, grace: timedelta = CHECKIN_GRACE
) -> tuple[datetime, datetime]:
    """When the code works: from `grace` before the start to `grace` after the end."""
    return starts_at - grace, ends_at + grace


def verify_checkin(
    code: str,
    *,
    activity_id: str,
    secret: bytes | str,
    now: datetime,
    starts_at: datetime,
    ends_at: datetime,
    grace: timedelta = CHECKIN_GRACE,
) -> None:
    """Accept the code for this activity inside its window, or refuse with a distinct error."""
    if not hmac.compare_digest(code.strip().encode(), checkin_code(activity_id, secret).encode()):
        raise CheckInCodeMismatch()
    opens, closes = checkin_window(starts_at, ends_at, grace=grace)
    if not opens <= now <= closes:
        raise OutsideCheckInWindow(grace)


# ---- Service hours ----


def _hours(delta: timedelta) -> Decimal:
    micros = delta // timedelta(microseconds=1)
    return (Decimal(max(micros, 0)) / Decimal(3_600_000_000)).quantize(HOURS_STEP, rounding=ROUND_HALF_UP)


def span_hours(starts_at: datetime, ends_at: datetime) -> Decimal:
    """The activity's length in hours, rounded to 0.1 h: the most anyone can serve in it."""
    return _hours(ends_at - starts_at)


def compute_hours(check_in: datetime, check_out: datetime | None, starts_at: datetime, ends_at: datetime) -> Decimal:
    """Hours served, rounded to 0.1 h, counted only inside the activity's span.

    Early check-in counts from the start, late check-out until the end, and a forgotten check-out closes at
    the end; a check-out before the check-in is refused.
    """
    if check_out is not None and check_out < check_in:
        raise CheckOutBeforeCheckIn()
    begin = max(check_in, starts_at)
    end = ends_at if check_out is None else min(check_out, ends_at)
    return _hours(end - begin)


def _quantize(hours: Decimal | float | int | str) -> Decimal:
    return Decimal(str(hours)).quantize(HOURS_STEP, rounding=ROUND_HALF_UP)


class Correction(BaseModel):
    """An administrator's correction of a volunteer's hours (补录); every one is kept."""

    model_config = _MODEL_CONFIG

    hours: Decimal
    reason: str
    by: Id
    at: AwareDatetime


def make_correction(
    hours: Decimal | float | int | str,
    *,
    reason: str,
    by: str,
    at: datetime,
    starts_at: datetime,
    ends_at: datetime,
) -> Correction:
    """A correction with a reason and hours between 0 and the activity's span, or an `InvalidCorrection`."""
    reason = reason.strip()
    if not reason:
        raise CorrectionReasonRequired()
    value = _quantize(hours)
    span = span_hours(starts_at, ends_at)
    if not Decimal(0) <= value <= span:
        raise CorrectionHoursOutOfRange(value, span)
    return Correction(hours=value, reason=reason, by=by, at=at)


class Attendance(BaseModel):
    """One volunteer's presence at one activity: check-in/out and the history of corrections."""

    model_config = _MODEL_CONFIG

    activity_id: Id
    volunteer_id: Id
    check_in: AwareDatetime | None = None
    check_out: AwareDatetime | None = None
    corrections: tuple[Correction, ...] = ()

    def computed_hours(self, starts_at: datetime, ends_at: datetime) -> Decimal:
        """Hours from the check-in/out alone (0 when never checked in)."""
        if self.check_in is None:
            return Decimal("0.0")
        return compute_hours(self.check_in, self.check_out, starts_at, ends_at)

    def effective_hours(self, starts_at: datetime, ends_at: datetime) -> Decimal:
        """The last correction if any, else the computed hours."""
        return effective_hours(self.computed_hours(starts_at, ends_at), self.corrections)


def effective_hours(computed: Decimal, corrections: Iterable[Correction]) -> Decimal:
    last: Decimal | None = None
    for correction in corrections:
        last = correction.hours
    return computed if last is None else last


def record_check_in(attendance: Attendance, at: datetime) -> Attendance:
    if attendance.check_in is not None:
        raise AlreadyCheckedIn()
    return attendance.model_copy(update={"check_in": at})


def record_check_out(attendance: Attendance, at: datetime) -> Attendance:
    if attendance.check_in is None:
        raise NotCheckedIn()
    if attendance.check_out is not None:
        raise AlreadyCheckedOut()
    if at < attendance.check_in:
        raise CheckOutBeforeCheckIn()
    return attendance.model_copy(update={"check_out": at})


def correct_hours(attendance: Attendance, correction: Correction) -> Attendance:
    """Append a correction; earlier ones stay in the history."""
    return attendance.model_copy(update={"corrections": (*attendance.corrections, correction)})
