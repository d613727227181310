"""Sign-ups: the decision (confirmed, waitlisted, pending approval), reviews, cancellation, the waitlist's order."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from .activity import Activity
from .errors import (
    ActivityIsCancelled,
    ActivityIsCompleted,
    ActivityIsDraft,
    AlreadySignedUp,
    SignUpClosed,
    SignUpNotActive,
    SignUpNotYetOpen,
    VolunteerInactive,
    VolunteerUnknown,
)
from .values import MODEL_CONFIG as _MODEL_CONFIG
from .values import ActivityStatus, Id, SignUpStatus


class SignUp(BaseModel):
    """One volunteer's sign-up; `sequence` is the per-activity order of arrival (the waitlist's order)."""

    model_config = _MODEL_CONFIG

    activity_id: Id
    volunteer_id: Id
    sequence: int = Field(ge=1)
    status: SignUpStatus
    signed_up_at: AwareDatetime


def decide_signup(
    activity: Activity,
    *,
    now: datetime,
    volunteer_known: bool,
    volunteer_active: bool,
    already_signed: bool,
    confirmed_count: int,
    waitlisted_count: int = 0,
) -> SignUpStatus:
    """Confirmed, waitlisted or pending approval — or a `SignUpRefused` naming why.

    `already_signed` means the volunteer holds an active sign-up (pending, confirmed or waitlisted);
    after cancelling they may sign up again. A free place goes to the waitlist first: a newcomer is confirmed only
    when a place is free and nobody waits (first come, first served).
    """
    if not volunteer_known:
        raise VolunteerUnknown()
    if not volunteer_active:
        raise VolunteerInactive()
    if activity.status is ActivityStatus.CANCELLED:
        raise ActivityIsCancelled()
    if activity.status is ActivityStatus.COMPLETED:
        raise ActivityIsCompleted()
    if activity.status is ActivityStatus.DRAFT:
        raise ActivityIsDraft()
    if already_signed:
        raise AlreadySignedUp()
    if now < activity.signup_opens_at:
        raise SignUpNotYetOpen()
    if now >= activity.signup_closes_at:
        raise SignUpClosed()
    if activity.requires_approval:
        return SignUpStatus.PENDING_APPROVAL
    return place_or_waitlist(activity.capacity, confirmed_count, waitlisted_count)


def place_or_waitlist(capacity: int, confirmed_count: int, waitlisted_count: int) -> SignUpStatus:
    """Confirmed when a place is free and nobody is waiting for one, else waitlisted."""
    if confirmed_count < capacity and waitlisted_count == 0:
        return SignUpStatus.CONFIRMED
    return SignUpStatus.WAITLISTED


def approve_signup(signup: SignUp, *, capacity: int, confirmed_count: int, waitlisted_count: int = 0) -> SignUp:
    """An approved sign-up takes a place if one is free (and nobody waits for it), else joins the waitlist."""
    if signup.status is not SignUpStatus.PENDING_APPROVAL:
        raise SignUpNotActive(signup.status)
    status = place_or_waitlist(capacity, confirmed_count, waitlisted_count)
    return signup.model_copy(update={"status": status})


def reject_signup(signup: SignUp) -> SignUp:
    if signup.status is not SignUpStatus.PENDING_APPROVAL:
        raise SignUpNotActive(signup.status)
    return signup.model_copy(update={"status": SignUpStatus.REJECTED})


def cancel_signup(signup: SignUp) -> SignUp:
    if not signup.status.is_active:
        raise SignUpNotActive(signup.status)
    return signup.model_copy(update={"status": SignUpStatus.CANCELLED})


def waitlist_order(signups: Iterable[SignUp]) -> list[SignUp]:
    """Waitlisted sign-ups, first come first served (by sign-up sequence)."""
    return sorted((s for s in signups if s.status is SignUpStatus.WAITLISTED), key=lambda s: s.sequence)


def promotions(signups: Iterable[SignUp], capacity: int) -> list[SignUp]:
    """The waitlisted sign-ups that move up to fill the free places, already marked confirmed, in order."""
    signups = list(signups)
    confirmed = sum(1 for s in signups if s.status is SignUpStatus.CONFIRMED)
    free = max(capacity - confirmed, 0)
    return [s.model_copy(update={"status": SignUpStatus.CONFIRMED}) for s in waitlist_order(signups)[:free]]
