"""Sign-ups: the decision, refusals, the waitlist's order, state changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.activities.domain import (
    Activity,
    ActivityError,
    ActivityIsCancelled,
    ActivityIsCompleted,
    ActivityIsDraft,
    ActivityStatus,
    AlreadySignedUp,
    OutsideSignUpWindow,
    SignUp,
    SignUpClosed,
    SignUpNotActive,
    SignUpNotYetOpen,
    SignUpRefused,
    SignUpStatus,
    VolunteerInactive,
    VolunteerUnknown,
    approve_signup,
    cancel_signup,
    decide_signup,
    promotions,
    reject_signup,
    waitlist_order,
)
from tests.activities.domain.support import T0, T_END, at, make_activity

S = ActivityStatus

# ---- sign-up ----


def decide(activity: Activity, **overrides: Any) -> SignUpStatus:
    kwargs: dict[str, Any] = {
        "now": T0 - timedelta(days=1),
        "volunteer_known": True,
        "volunteer_active": True,
        "already_signed": False,
        "confirmed_count": 0,
    }
    kwargs.update(overrides)
    return decide_signup(activity, **kwargs)


def test_signup_is_confirmed_while_places_remain() -> None:
    assert decide(make_activity(), confirmed_count=1) is SignUpStatus.CONFIRMED


def test_signup_is_accepted_while_ongoing_if_window_open() -> None:
    activity = make_activity(S.ONGOING, signup_closes_at=T_END)
    assert decide(activity, now=at(1)) is SignUpStatus.CONFIRMED


def test_capacity_exactly_reached_sends_next_to_waitlist() -> None:
    activity = make_activity()  # capacity 2
    assert decide(activity, confirmed_count=2) is SignUpStatus.WAITLISTED
    assert decide(activity, confirmed_count=3) is SignUpStatus.WAITLISTED


def test_a_free_place_owed_to_the_waitlist_is_not_taken_by_a_newcomer() -> None:
    """While a promotion is under way (or owed after a crash), the waitlist keeps its turn: first come, first served."""
    activity = make_activity()  # capacity 2
    assert decide(activity, confirmed_count=1, waitlisted_count=1) is SignUpStatus.WAITLISTED
    assert decide(activity, confirmed_count=1, waitlisted_count=0) is SignUpStatus.CONFIRMED
    pending = signup(1, SignUpStatus.PENDING_APPROVAL)
    assert approve_signup(pending, capacity=2, confirmed_count=1, waitlisted_count=3).status is SignUpStatus.WAITLISTED


def test_approval_required_makes_signup_pending() -> None:
    assert decide(make_activity(requires_approval=True), confirmed_count=5) is SignUpStatus.PENDING_APPROVAL


@pytest.mark.parametrize(
    ("overrides", "error", "code"),
    [
        ({"volunteer_known": False, "volunteer_active": False}, VolunteerUnknown, "volunteer_unknown"),
        ({"volunteer_active": False}, VolunteerInactive, "volunteer_inactive"),
        ({"already_signed": True}, AlreadySignedUp, "already_signed_up"),
        ({"now": T0 - timedelta(days=8)}, SignUpNotYetOpen, "signup_not_yet_open"),
        ({"now": T0}, SignUpClosed, "signup_closed"),
    ],
)
def test_signup_refusals(overrides: dict[str, Any], error: type[ActivityError], code: str) -> None:
    with pytest.raises(error) as info:
        decide(make_activity(), **overrides)
    assert isinstance(info.value, SignUpRefused)
    assert info.value.code == code
    assert info.value.message


@pytest.mark.parametrize(
    ("status", "error"),
    [(S.CANCELLED, ActivityIsCancelled), (S.COMPLETED, ActivityIsCompleted), (S.DRAFT, ActivityIsDraft)],
)
def test_signup_refused_for_activity_not_open(status: ActivityStatus, error: type[ActivityError]) -> None:
    with pytest.raises(error):
        decide(make_activity(status))


def test_signup_refusal_codes_are_distinct() -> None:
    errors = [
        VolunteerUnknown,
        VolunteerInactive,
        AlreadySignedUp,
        SignUpNotYetOpen,
        SignUpClosed,
        ActivityIsCancelled,
        ActivityIsCompleted,
        ActivityIsDraft,
    ]
    assert len({e.code for e in errors}) == len(errors)
    assert all(issubclass(e, SignUpRefused) for e in errors)
    assert issubclass(SignUpClosed, OutsideSignUpWindow)


def signup(seq: int, status: SignUpStatus, volunteer: str | None = None) -> SignUp:
    return SignUp(
        activity_id="act-1",
        volunteer_id=volunteer or f"vol-{seq}",
        sequence=seq,
        status=status,
        signed_up_at=T0 - timedelta(days=1, minutes=-seq),
    )


def test_waitlist_promotion_is_first_come_first_served() -> None:
    C, W = SignUpStatus.CONFIRMED, SignUpStatus.WAITLISTED
    signups = [signup(5, W), signup(1, C), signup(3, W), signup(2, SignUpStatus.CANCELLED), signup(4, W)]
    assert [s.sequence for s in waitlist_order(signups)] == [3, 4, 5]
    moved = promotions(signups, capacity=3)
    assert [(s.sequence, s.status) for s in moved] == [(3, C), (4, C)]
    assert promotions(signups, capacity=1) == []


def test_cancelling_a_confirmed_signup_frees_a_place_for_the_first_waitlisted() -> None:
    C, W = SignUpStatus.CONFIRMED, SignUpStatus.WAITLISTED
    signups = [signup(1, C), signup(2, C), signup(3, W), signup(4, W)]
    assert promotions(signups, capacity=2) == []
    signups[0] = cancel_signup(signups[0])
    assert [s.volunteer_id for s in promotions(signups, capacity=2)] == ["vol-3"]


def test_signup_state_changes() -> None:
    pending = signup(1, SignUpStatus.PENDING_APPROVAL)
    assert approve_signup(pending, capacity=2, confirmed_count=1).status is SignUpStatus.CONFIRMED
    assert approve_signup(pending, capacity=2, confirmed_count=2).status is SignUpStatus.WAITLISTED
    assert reject_signup(pending).status is SignUpStatus.REJECTED
    for status in (SignUpStatus.CANCELLED, SignUpStatus.REJECTED):
        with pytest.raises(SignUpNotActive):
            cancel_signup(signup(1, status))
    with pytest.raises(SignUpNotActive):
        approve_signup(signup(1, SignUpStatus.CONFIRMED), capacity=2, confirmed_count=0)
    with pytest.raises(SignUpNotActive):
        reject_signup(signup(1, SignUpStatus.WAITLISTED))
