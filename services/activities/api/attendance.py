"""Routes of attendance and hours: check in/out, the check-in code, corrections, the records."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter

from services.activities.usecases import attendance
from shared.access import access
from shared.identity import Identity, IdentityDep

from .deps import ADMINS, ActivityId, SecretDep, StorageDep, VolunteerId
from .schemas import AttendanceBody, AttendanceOut, AttendancePage, CheckInCodeOut, CorrectionBody

router = APIRouter(tags=["签到"])


@router.post(
    "/activities/{activity_id}/checkin",
    openapi_extra=access("unit_admin", "volunteer:self", volunteers=["body:volunteer_id"]),
    summary="签到（管理员代签，或志愿者扫码）",
)
async def check_in(
    storage: StorageDep, activity_id: ActivityId, body: AttendanceBody, identity: IdentityDep, secret: SecretDep
) -> AttendanceOut:
    presence = attendance.Presence("in", body.volunteer_id, body.code, body.at)
    return AttendanceOut.of(await attendance.attend(storage, activity_id, identity, presence, secret))


@router.post(
    "/activities/{activity_id}/checkout",
    openapi_extra=access("unit_admin", "volunteer:self", volunteers=["body:volunteer_id"]),
    summary="签退（管理员代签，或志愿者扫码）",
)
async def check_out(
    storage: StorageDep, activity_id: ActivityId, body: AttendanceBody, identity: IdentityDep, secret: SecretDep
) -> AttendanceOut:
    presence = attendance.Presence("out", body.volunteer_id, body.code, body.at)
    return AttendanceOut.of(await attendance.attend(storage, activity_id, identity, presence, secret))


@router.get(
    "/activities/{activity_id}/checkin-code", openapi_extra=access("unit_admin"), summary="活动签到码（二维码内容）"
)
async def get_checkin_code(
    storage: StorageDep, activity_id: ActivityId, secret: SecretDep, identity: Identity = ADMINS
) -> CheckInCodeOut:
    code = await attendance.checkin_code(storage, activity_id, secret, identity)
    return CheckInCodeOut(
        activity_id=code.activity_id, code=code.code, valid_from=code.valid_from, valid_until=code.valid_until
    )


@router.post(
    "/activities/{activity_id}/attendance/{volunteer_id}/correction",
    openapi_extra=access("unit_admin", me=["path:volunteer_id"]),
    summary="补录/更正服务时长（须填写原因，保留全部记录）",
)
async def correct(
    storage: StorageDep,
    activity_id: ActivityId,
    volunteer_id: VolunteerId,
    body: CorrectionBody,
    identity: Identity = ADMINS,
) -> AttendanceOut:
    corrected = await attendance.correct(storage, activity_id, volunteer_id, body.hours, body.reason, identity)
    return AttendanceOut.of(corrected)


@router.get(
    "/activities/{activity_id}/attendance",
    openapi_extra=access("unit_admin", personal=True),
    summary="签到记录与服务时长",
)
async def list_attendance(storage: StorageDep, activity_id: ActivityId, identity: Identity = ADMINS) -> AttendancePage:
    items = [AttendanceOut.of(a) for a in await attendance.records(storage, activity_id, identity)]
    total = sum((Decimal(i.hours) for i in items), Decimal("0"))
    return AttendancePage(items=items, total_hours=str(total))
