"""Routes of sign-ups: sign up, cancel, approve, reject, the roster."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from services.activities.domain import SignUpStatus
from services.activities.usecases import signups
from shared.access import access
from shared.identity import Identity, IdentityDep

from .deps import ADMINS, ActivityId, BatchesDep, StorageDep, VolunteerId
from .schemas import CancelledSignUpOut, RosterOut, SignUpBody, SignUpOut

router = APIRouter(tags=["报名"])


@router.post(
    "/activities/{activity_id}/signups",
    openapi_extra=access("unit_admin", "volunteer:self", volunteers=["body:volunteer_id"]),
    status_code=201,
    summary="报名（满员进入候补）",
    response_model_exclude_unset=True,
)
async def sign_up(
    storage: StorageDep,
    batches: BatchesDep,
    activity_id: ActivityId,
    identity: IdentityDep,
    body: Annotated[SignUpBody | None, Body()] = None,
) -> SignUpOut:
    signed = await signups.sign_up(storage, batches, activity_id, identity, body.volunteer_id if body else None)
    return SignUpOut.of(signed.entry, signed.waitlist_position)


@router.delete(
    "/activities/{activity_id}/signups/{volunteer_id}",
    openapi_extra=access("unit_admin", "volunteer:self", me=["path:volunteer_id"]),
    summary="取消报名（候补依次递补）",
    response_model_exclude_unset=True,
)
async def cancel_sign_up(
    storage: StorageDep, activity_id: ActivityId, volunteer_id: VolunteerId, identity: IdentityDep
) -> CancelledSignUpOut:
    cancelled = await signups.cancel(storage, activity_id, volunteer_id, identity)
    return CancelledSignUpOut.of(cancelled.entry, promoted=cancelled.promoted)


@router.post(
    "/activities/{activity_id}/signups/{volunteer_id}/approve",
    openapi_extra=access("unit_admin", me=["path:volunteer_id"]),
    summary="审核通过报名",
    response_model_exclude_unset=True,
)
async def approve(
    storage: StorageDep, activity_id: ActivityId, volunteer_id: VolunteerId, identity: Identity = ADMINS
) -> SignUpOut:
    return SignUpOut.of(await signups.review(storage, activity_id, volunteer_id, identity, approve=True))


@router.post(
    "/activities/{activity_id}/signups/{volunteer_id}/reject",
    openapi_extra=access("unit_admin", me=["path:volunteer_id"]),
    summary="审核不通过",
    response_model_exclude_unset=True,
)
async def reject(
    storage: StorageDep, activity_id: ActivityId, volunteer_id: VolunteerId, identity: Identity = ADMINS
) -> SignUpOut:
    return SignUpOut.of(await signups.review(storage, activity_id, volunteer_id, identity, approve=False))


@router.get(
    "/activities/{activity_id}/signups",
    openapi_extra=access("unit_admin", personal=True),
    summary="报名名单（按报名顺序）",
    response_model_exclude_unset=True,
)
async def list_sign_ups(
    storage: StorageDep, activity_id: ActivityId, status: SignUpStatus | None = None, identity: Identity = ADMINS
) -> RosterOut:
    roster = await signups.roster(storage, activity_id, None if status is None else status.value, identity)
    items = [SignUpOut.of(e, roster.waitlist_positions.get(e.signup.volunteer_id)) for e in roster.items]
    return RosterOut(items=items, total=len(items), counts=roster.counts)
