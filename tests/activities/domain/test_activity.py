"""Activities: labels, the draft and its rules, the life cycle, publicity, the quarter an activity falls in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.activities.domain import (
    Activity,
    ActivityDraft,
    ActivityNotEditable,
    ActivityStatus,
    ActivityValidationError,
    CancelReasonRequired,
    DemandStatus,
    InvalidTransition,
    PublicityBeforeCompletion,
    PublicityRecord,
    SignUpStatus,
    cancel,
    complete,
    create_activity,
    draft_violations,
    parse_draft,
    parse_publicity,
    publicise,
    publish,
    quarter_of,
    revise_activity,
    start,
)
from shared.programme import LineOfWork, Theme
from tests.activities.domain.support import T0, T_END, draft_data, make_activity

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
