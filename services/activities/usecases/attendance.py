"""Use cases of attendance and hours: check in/out (an organiser for a volunteer, or the volunteer with the
activity's code, inside its window), corrections of hours (with a reason, every one kept), the records, the code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from services.activities import domain
from services.activities.domain import (
    CHECKIN_GRACE,
    Activity,
    ActivityNotFound,
    ActivityNotOpen,
    ActivityStatus,
    AtForAdmins,
    Attendance,
    CheckInCodeRequired,
    NotConfirmed,
    OutsideCheckInWindow,
    SignUpStatus,
    TimeInFuture,
)
from shared import clock
from shared.contracts.events import AttendanceRecorded, ServiceHoursCorrected
from shared.identity import Identity

from .common import SignUpDecision, claimed_for, commit_or_refuse, require_running
from .ports import Change, Claim, Premise, Record, Storage
from .records import VERSION, attendance_doc, attendance_of, envelope, to_activity
from .scope import Acting, acting_reach, acting_volunteer, require_admin_of

CLOCK_SKEW = timedelta(minutes=2)


@dataclass
class Attended:
    """One volunteer's attendance at one activity, with the activity its hours are counted in."""

    activity: Activity
    attendance: Attendance


@dataclass(frozen=True)
class Presence:
    """A check-in or check-out as asked: for whom (an admin names the volunteer), the code, the moment."""

    kind: Literal["in", "out"]
    volunteer_id: str | None = None
    code: str | None = None
    at: datetime | None = None


def check_window(activity: Activity, by: Acting, presence: Presence, at: datetime, secret: str, now: datetime) -> None:
    """An admin's moment inside the activity's window; a volunteer's code for this activity, now inside it."""
    if by == "admin":
        opens, closes = domain.checkin_window(activity.starts_at, activity.ends_at)
        if not opens <= at <= closes:
            raise OutsideCheckInWindow(CHECKIN_GRACE)
        return
    domain.verify_checkin(
        presence.code or "",
        activity_id=activity.id,
        secret=secret,
        now=now,
        starts_at=activity.starts_at,
        ends_at=activity.ends_at,
    )


def _moment(by: Acting, presence: Presence, now: datetime) -> datetime:
    if by == "volunteer" and not presence.code:
        raise CheckInCodeRequired()
    if by == "volunteer" and presence.at is not None:
        raise AtForAdmins()
    at = presence.at or now
    if at > now + CLOCK_SKEW:
        raise TimeInFuture()
    return at


async def attend(storage: Storage, activity_id: str, identity: Identity, presence: Presence, secret: str) -> Attended:
    """Check in or out, for a confirmed sign-up of a running activity."""
    volunteer_id, by = acting_volunteer(identity, presence.volunteer_id)
    now = clock.now()
    at = _moment(by, presence, now)
    reach = await acting_reach(storage, identity, volunteer_id, by)
    claim, doc = await claimed_for(storage, activity_id, volunteer_id)
    decided: list[Attended] = []

    def decide(doc: Record) -> SignUpDecision:
        activity = to_activity(doc)
        if by == "admin":
            require_admin_of(reach, doc["unit_id"])
        check_window(activity, by, presence, at, secret, now)
        require_running(doc, "签到签退")
        if claim.status is not SignUpStatus.CONFIRMED:
            raise NotConfirmed()
        attendance = attendance_of(claim.doc, activity_id, volunteer_id)
        if presence.kind == "in":
            attendance = domain.record_check_in(attendance, at)
        else:
            attendance = domain.record_check_out(attendance, at)
        hours = (
            None if attendance.check_out is None else attendance.effective_hours(activity.starts_at, activity.ends_at)
        )
        data = AttendanceRecorded(
            activity_id=activity_id,
            volunteer_id=volunteer_id,
            check_in_at=attendance.check_in,
            check_out_at=attendance.check_out,
            hours=None if hours is None else float(hours),
        )
        decided[:] = [Attended(activity, attendance)]
        change = Change(claim, {"attendance": attendance_doc(attendance)}, [envelope(data, activity_id)])
        return SignUpDecision([change], Premise({VERSION: doc.get(VERSION)}))

    committed, changes = await commit_or_refuse(storage, claim, doc, decide)
    await storage.finish(committed, changes)
    return decided[0]


def correction_decision(
    claim: Claim, doc: Record, correction: domain.Correction, decided: list[Attended]
) -> SignUpDecision:
    """The corrected attendance; once completed, the activity's totals move in the same write (conditional on the
    totals it read) and reporting is told the change (``ServiceHoursCorrected``)."""
    activity, entry = to_activity(doc), claim.doc
    activity_id, volunteer_id = claim.activity_id, claim.volunteer_id
    before = attendance_of(entry, activity_id, volunteer_id)
    attendance = domain.correct_hours(before, correction)
    decided[:] = [Attended(activity, attendance)]
    data = AttendanceRecorded(
        activity_id=activity_id,
        volunteer_id=volunteer_id,
        check_in_at=attendance.check_in,
        check_out_at=attendance.check_out,
        hours=float(correction.hours),
        correction_reason=correction.reason,
    )
    fields = {"attendance": attendance_doc(attendance)}
    unchanged: dict[str, Any] = {VERSION: doc.get(VERSION)}
    if activity.status is not ActivityStatus.COMPLETED:  # completion will carry the corrected hours
        return SignUpDecision([Change(claim, fields, [envelope(data, activity_id)])], Premise(unchanged))
    previous = before.effective_hours(activity.starts_at, activity.ends_at)
    corrected = ServiceHoursCorrected(
        activity_id=activity_id,
        unit_id=activity.unit_id,
        volunteer_id=volunteer_id,
        starts_at=activity.starts_at,
        previous_hours=float(previous),
        hours=float(correction.hours),
        reason=correction.reason,
        corrected_at=correction.at,
    )
    total = Decimal(str(doc.get("total_hours") or "0")) - previous + correction.hours
    unchanged["total_hours"] = doc.get("total_hours")
    events = [envelope(data, activity_id), envelope(corrected, activity_id)]
    inc = None if entry.get("attendance") else {"participants": 1}  # a new participant, never checked in
    sets = {"total_hours": str(total), "updated_at": correction.at}
    return SignUpDecision([Change(claim, fields, events)], Premise(unchanged), inc, sets)


async def correct(
    storage: Storage, activity_id: str, volunteer_id: str, hours: Decimal, reason: str, identity: Identity
) -> Attended:
    """An organiser's correction of a volunteer's hours (补录), with a reason; every correction is kept."""
    reach = await acting_reach(storage, identity, volunteer_id, "admin")
    claim, doc = await claimed_for(storage, activity_id, volunteer_id)
    decided: list[Attended] = []

    def decide(doc: Record) -> SignUpDecision:
        require_admin_of(reach, doc["unit_id"])
        activity = to_activity(doc)
        if activity.status not in (ActivityStatus.ONGOING, ActivityStatus.COMPLETED):
            raise ActivityNotOpen(activity.status, "补录服务时长")
        if claim.status is None or (not claim.doc.get("attendance") and claim.status is not SignUpStatus.CONFIRMED):
            raise NotConfirmed("该志愿者没有本活动的有效报名或签到记录，不能补录")
        correction = domain.make_correction(
            hours,
            reason=reason,
            by=identity.subject[:64],
            at=clock.now(),
            starts_at=activity.starts_at,
            ends_at=activity.ends_at,
        )
        return correction_decision(claim, doc, correction, decided)

    committed, changes = await commit_or_refuse(storage, claim, doc, decide)
    await storage.finish(committed, changes)
    return decided[0]


async def records(storage: Storage, activity_id: str, identity: Identity) -> list[Attended]:
    """Everyone with an attendance record at the activity, for its organisers."""
    doc = await storage.activity(activity_id)
    if doc is None:
        raise ActivityNotFound()
    require_admin_of(await storage.reach(identity), doc["unit_id"], read=True)
    activity = to_activity(doc)
    return [
        Attended(activity, attendance_of(d, activity_id, d["volunteer_id"]))
        for d in await storage.roster(doc)
        if d.get("attendance")
    ]


@dataclass(frozen=True)
class CheckInCode:
    activity_id: str
    code: str
    valid_from: datetime
    valid_until: datetime


async def checkin_code(storage: Storage, activity_id: str, secret: str, identity: Identity) -> CheckInCode:
    """The activity's check-in code (the QR code's content) and when it works, for its organisers."""
    doc = await storage.activity(activity_id, pending=False)
    if doc is None:
        raise ActivityNotFound()
    require_admin_of(await storage.reach(identity), doc["unit_id"], read=True)
    opens, closes = domain.checkin_window(doc["starts_at"], doc["ends_at"])
    return CheckInCode(activity_id, domain.checkin_code(activity_id, secret), opens, closes)
