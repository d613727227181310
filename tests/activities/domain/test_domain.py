"""Rules of the activities service, tested without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.activities.domain import (
    Activity,
    ActivityDraft,
    ActivityError,
    ActivityIsCancelled,
    ActivityIsCompleted,
    ActivityIsDraft,
    ActivityNotEditable,
    ActivityStatus,
    ActivityValidationError,
    AlreadyCheckedIn,
    AlreadyCheckedOut,
    AlreadySignedUp,
    Attendance,
    CancelReasonRequired,
    CheckInCodeMismatch,
    CheckOutBeforeCheckIn,
    CorrectionHoursOutOfRange,
    CorrectionReasonRequired,
    Demand,
    DemandStatus,
    InvalidDemandTransition,
    InvalidTransition,
    NotCheckedIn,
    OutsideCheckInWindow,
    OutsideSignUpWindow,
    PublicityBeforeCompletion,
    PublicityRecord,
    SignUp,
    SignUpClosed,
    SignUpNotActive,
    SignUpNotYetOpen,
    SignUpRefused,
    SignUpStatus,
    VolunteerInactive,
    VolunteerUnknown,
    approve_signup,
    cancel,
    cancel_signup,
    change_demand_status,
    checkin_code,
    complete,
    compute_hours,
    correct_hours,
    create_activity,
    decide_signup,
    draft_violations,
    effective_hours,
    make_correction,
    parse_draft,
    parse_publicity,
    promotions,
    publicise,
    publish,
    quarter_of,
    record_check_in,
    record_check_out,
    reject_signup,
    revise_activity,
    span_hours,
    start,
    verify_checkin,
    waitlist_order,
)
from shared.programme import LineOfWork, Theme

T0 = datetime(2026, 5, 16, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
T_END = T0 + timedelta(hours=3)
SECRET = b"test-secret"


def at(hours: float) -> datetime:
    """A moment relative to the activity's start."""
    return T0 + timedelta(hours=hours)


def draft_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "社区应急救护培训",
        "description": "为社区居民讲解心肺复苏与常见急症处置",
        "unit_id": "unit-1",
        "line_of_work": "community_school",
        "themes": ["poverty_health", "women_youth"],
        "target_groups": ["社区居民"],
        "place": "裕华区东苑街道社区服务中心",
        "county": "裕华区",
        "starts_at": T0,
        "ends_at": T_END,
        "capacity": 2,
        "skills_wanted": ["急救"],
        "signup_opens_at": T0 - timedelta(days=7),
        "signup_closes_at": T0,
    }
    data.update(overrides)
    return data


def make_activity(status: ActivityStatus = ActivityStatus.PUBLISHED, **overrides: Any) -> Activity:
    activity = create_activity(ActivityDraft.model_validate(draft_data(**overrides)), activity_id="act-1")
    return activity.model_copy(update={"status": status})


# ---- enums ----


def test_enums_carry_chinese_labels() -> None:
    assert LineOfWork("enterprise_park").label == "进企业进园区"
    assert LineOfWork.RURAL_REVITALIZATION.label == "助力乡村振兴"
    assert Theme.ENTERPRISE_INNOVATION.label == "助力企业创新发展"
    assert all(status.label for status in ActivityStatus)
    assert all(status.label for status in SignUpStatus)
    assert all(status.label for status in DemandStatus)


# ---- activity data ----


def test_valid_draft_becomes_a_draft_activity() -> None:
    activity = create_activity(parse_draft(draft_data()), activity_id="act-1")
    assert activity.status is ActivityStatus.DRAFT
    assert activity.themes == {Theme.POVERTY_HEALTH, Theme.WOMEN_YOUTH}
    assert activity.span == timedelta(hours=3)


def test_themes_may_be_empty() -> None:
    assert parse_draft(draft_data(themes=[])).themes == frozenset()


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ActivityValidationError) as info:
        parse_draft(draft_data(ends_at=T0 - timedelta(minutes=1), signup_closes_at=T0 - timedelta(hours=1)))
    assert [v.field for v in info.value.violations] == ["ends_at"]
    assert "结束时间必须晚于开始时间" in info.value.message


def test_signup_window_rules_are_reported_together() -> None:
    data = draft_data(
        ends_at=T0 - timedelta(hours=1),
        signup_opens_at=T0 + timedelta(days=1),
        signup_closes_at=T_END + timedelta(hours=1),
    )
    with pytest.raises(ActivityValidationError) as info:
        parse_draft(data)
    assert {v.field for v in info.value.violations} == {"ends_at", "signup_closes_at", "signup_opens_at"}
    assert info.value.code == "activity_invalid"


def test_signup_may_close_after_start_but_not_after_end() -> None:
    assert parse_draft(draft_data(signup_closes_at=T_END)).signup_closes_at == T_END
    with pytest.raises(ActivityValidationError, match="报名截止时间不能晚于活动结束时间"):
        parse_draft(draft_data(signup_closes_at=T_END + timedelta(seconds=1)))


def test_field_and_cross_field_errors_come_at_once_in_chinese() -> None:
    data = draft_data(capacity=0, title="  ", ends_at=T0 - timedelta(hours=1))
    del data["county"]
    with pytest.raises(ActivityValidationError) as info:
        parse_draft(data)
    messages = {v.field: v.message for v in info.value.violations}
    assert messages == {
        "capacity": "招募人数不能小于1",
        "title": "活动名称不能为空",
        "county": "所在县（市、区）为必填项",
        "ends_at": "结束时间必须晚于开始时间",
        "signup_closes_at": "报名截止时间不能晚于活动结束时间",
    }


def test_naive_times_are_refused() -> None:
    with pytest.raises(ActivityValidationError, match="开始时间必须包含时区"):
        parse_draft(draft_data(starts_at=datetime(2026, 5, 16, 9, 0)))


def test_capacity_below_confirmed_count_is_refused_on_update() -> None:
    activity = make_activity()
    smaller = ActivityDraft.model_validate(draft_data(capacity=1))
    with pytest.raises(ActivityValidationError, match=r"招募人数（1）不能少于已确认报名人数（2）"):
        revise_activity(activity, smaller, confirmed_count=2)
    assert revise_activity(activity, smaller, confirmed_count=1).capacity == 1
    assert draft_violations(smaller, confirmed_count=1) == ()


def test_revision_keeps_state_and_identity() -> None:
    activity = make_activity(ActivityStatus.PUBLISHED)
    revised = revise_activity(activity, ActivityDraft.model_validate(draft_data(title="新标题")), confirmed_count=0)
    assert (revised.id, revised.status, revised.title) == ("act-1", ActivityStatus.PUBLISHED, "新标题")


def test_revision_may_not_move_activity_to_another_unit() -> None:
    with pytest.raises(ActivityValidationError, match="组织单位"):
        revise_activity(make_activity(), ActivityDraft.model_validate(draft_data(unit_id="unit-2")), confirmed_count=0)


@pytest.mark.parametrize("status", [ActivityStatus.COMPLETED, ActivityStatus.CANCELLED])
def test_finished_activities_cannot_be_revised(status: ActivityStatus) -> None:
    with pytest.raises(ActivityNotEditable):
        revise_activity(make_activity(status), ActivityDraft.model_validate(draft_data()), confirmed_count=0)


# ---- life cycle ----

S = ActivityStatus
ALLOWED = {
    (S.DRAFT, S.PUBLISHED),
    (S.PUBLISHED, S.ONGOING),
    (S.ONGOING, S.COMPLETED),
    (S.DRAFT, S.CANCELLED),
    (S.PUBLISHED, S.CANCELLED),
    (S.ONGOING, S.CANCELLED),
}


def _apply(activity: Activity, target: ActivityStatus) -> Activity:
    if target is S.PUBLISHED:
        return publish(activity)
    if target is S.ONGOING:
        return start(activity)
    if target is S.COMPLETED:
        return complete(activity)
    if target is S.CANCELLED:
        return cancel(activity, "场地临时关闭")
    raise AssertionError(target)


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c in S for t in S if t is not S.DRAFT],
)
def test_every_transition_is_allowed_or_refused(current: ActivityStatus, target: ActivityStatus) -> None:
    activity = make_activity(current)
    if (current, target) in ALLOWED:
        assert _apply(activity, target).status is target
    else:
        with pytest.raises(InvalidTransition) as info:
            _apply(activity, target)
        assert info.value.message == f"活动当前状态为“{current.label}”，不能变更为“{target.label}”"
        assert info.value.code == "invalid_transition"


def test_full_life_cycle() -> None:
    activity = complete(start(publish(make_activity(S.DRAFT))))
    assert activity.status is S.COMPLETED


def test_cancel_needs_a_reason_and_keeps_it() -> None:
    with pytest.raises(CancelReasonRequired):
        cancel(make_activity(), "   ")
    cancelled = cancel(make_activity(), " 暴雨预警 ")
    assert (cancelled.status, cancelled.cancel_reason) == (S.CANCELLED, "暴雨预警")


def test_publicity_only_after_completion() -> None:
    record = parse_publicity(
        {
            "summary": "讲解心肺复苏，现场演练",
            "people_served": 120,
            "links": ["https://example.org/news/1"],
            "photo_urls": ["http://example.org/p.jpg"],
        }
    )
    for status in (S.DRAFT, S.PUBLISHED, S.ONGOING, S.CANCELLED):
        with pytest.raises(PublicityBeforeCompletion):
            publicise(make_activity(status), record)
    published = publicise(make_activity(S.COMPLETED), record)
    assert published.publicity == record


def test_publicity_validates_urls_and_people_served() -> None:
    with pytest.raises(ActivityValidationError) as info:
        parse_publicity({"summary": "总结", "people_served": -1, "links": ["ftp://example.org/x", "not a url"]})
    fields = {v.field: v.message for v in info.value.violations}
    assert fields["people_served"] == "服务人数不能小于0"
    assert fields["links.0"] == "宣传链接必须是有效的 http 或 https 网址"
    assert fields["links.1"] == "宣传链接必须是有效的 http 或 https 网址"
    assert PublicityRecord(summary="总结", people_served=0).links == ()


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


# ---- demands ----


def test_demand_status_changes() -> None:
    demand = Demand(id="d-1", unit_id="unit-1", enterprise="某机械厂", title="焊接工艺改进", description="…")
    matched = change_demand_status(demand, DemandStatus.MATCHED)
    assert change_demand_status(matched, DemandStatus.SOLVED).status is DemandStatus.SOLVED
    with pytest.raises(InvalidDemandTransition):
        change_demand_status(change_demand_status(matched, DemandStatus.SOLVED), DemandStatus.OPEN)


# ---- quarters ----


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 31, 16, 30, tzinfo=UTC), (2026, 2)),  # 00:30 on 1 April in Shanghai
        (datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC), (2026, 1)),
        (datetime(2025, 12, 31, 16, 0, tzinfo=UTC), (2026, 1)),
        (datetime(2026, 6, 30, 16, 0, tzinfo=UTC), (2026, 3)),
        (datetime(2026, 9, 30, 15, 59, tzinfo=UTC), (2026, 3)),
        (datetime(2026, 12, 31, 15, 59, tzinfo=UTC), (2026, 4)),
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), (2027, 1)),
    ],
)
def test_quarter_of_counts_in_shanghai(moment: datetime, expected: tuple[int, int]) -> None:
    assert quarter_of(moment) == expected


def test_quarter_of_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        quarter_of(datetime(2026, 4, 1))
