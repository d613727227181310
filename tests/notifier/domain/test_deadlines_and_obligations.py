"""Notifier rules with no I/O: campaign calendar, obligations, reminder slots, and the e-mail templates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import TemplateError, TemplateNotFound

from services.notifier.domain import (
    ActionPlanSubmitted,
    ActivityCompleted,
    CampaignCalendar,
    ContactPersonGiven,
    DeadlineKind,
    DueNotification,
    Fact,
    MonthlyReportSubmitted,
    NotificationKind,
    ObligationKind,
    SlotKey,
    UnitObligations,
    UnitRegistered,
    days_left,
    due_notifications,
    reminder_at,
    slots_for_unit,
    templates,
)
from shared.calendar import SHANGHAI

CAL = CampaignCalendar(2026)
REGISTRATION_DUE = datetime(2026, 4, 20, 15, 59, 59, tzinfo=UTC)


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def slots(now: datetime, calendar: CampaignCalendar = CAL) -> dict[str, str]:
    return {n.deadline.id: n.slot for n in calendar.due_notifications(now)}


# ---- calendar ----


def test_calendar_has_stable_ids_in_due_order() -> None:
    assert [d.id for d in CAL.deadlines] == [
        "registration-2026",
        "action-plan-2026",
        "monthly-2026-04",
        "monthly-2026-05",
        "quarter-2026-Q2",
        "monthly-2026-06",
        "monthly-2026-07",
        "monthly-2026-08",
        "quarter-2026-Q3",
        "monthly-2026-09",
        "monthly-2026-10",
        "monthly-2026-11",
        "quarter-2026-Q4",
        "monthly-2026-12",
    ]


def test_registration_and_action_plan_expire_at_the_end_of_the_day_in_shanghai() -> None:
    registration = CAL.deadline("registration-2026")
    assert registration.due_at == REGISTRATION_DUE
    assert registration.kind is DeadlineKind.REGISTRATION
    assert registration.checks == (ObligationKind.REGISTRATION, ObligationKind.CONTACT_PERSON)
    assert "附件3" in registration.action_zh
    action_plan = CAL.deadline("action-plan-2026")
    assert action_plan.due_at == datetime(2026, 4, 30, 15, 59, 59, tzinfo=UTC)
    assert action_plan.checks == (ObligationKind.ACTION_PLAN,)
    assert "附件1" in action_plan.action_zh
    assert "附件2" in action_plan.action_zh


def test_quarter_ends_in_shanghai_time() -> None:
    calendar = CampaignCalendar(2026, start_month=1)
    assert calendar.deadline("quarter-2026-Q1").due_at == datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC)
    assert calendar.deadline("quarter-2026-Q2").due_at == datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC)
    assert calendar.deadline("quarter-2026-Q3").due_at == datetime(2026, 9, 30, 15, 59, 59, tzinfo=UTC)
    q4 = calendar.deadline("quarter-2026-Q4")
    assert q4.due_at == datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)
    assert q4.checks == (ObligationKind.QUARTERLY_ACTIVITY,)
    assert q4.title_zh == "2026年第4季度科技志愿服务活动"


def test_campaign_start_month_decides_the_first_month_and_quarter() -> None:
    ids = {d.id for d in CAL.deadlines}
    assert "quarter-2026-Q1" not in ids
    assert "monthly-2026-03" not in ids
    late_start = {d.id for d in CampaignCalendar(2026, start_month=8).deadlines}
    assert "monthly-2026-07" not in late_start
    assert {"monthly-2026-08", "quarter-2026-Q3"} <= late_start


def test_month_ends_including_february_in_a_leap_year() -> None:
    leap = CampaignCalendar(2028, start_month=1)
    assert leap.deadline("monthly-2028-01").period_end == shanghai(2028, 1, 31, 23, 59, 59)
    assert leap.deadline("monthly-2028-02").period_end == shanghai(2028, 2, 29, 23, 59, 59)
    assert leap.deadline("monthly-2028-02").due_at == shanghai(2028, 3, 5, 23, 59, 59)
    common = CampaignCalendar(2027, start_month=1)
    assert common.deadline("monthly-2027-02").period_end == shanghai(2027, 2, 28, 23, 59, 59)


def test_report_day_beyond_the_month_is_clamped_to_its_last_day() -> None:
    assert CampaignCalendar(2028, monthly_report_day=31, start_month=1).deadline("monthly-2028-01").due_at == shanghai(
        2028, 2, 29, 23, 59, 59
    )
    assert CampaignCalendar(2027, monthly_report_day=30, start_month=1).deadline("monthly-2027-01").due_at == shanghai(
        2027, 2, 28, 23, 59, 59
    )
    assert CampaignCalendar(2026, monthly_report_day=31).deadline("monthly-2026-05").due_at == shanghai(
        2026, 6, 30, 23, 59, 59
    )


def test_december_report_is_due_in_january_of_the_next_year() -> None:
    december = CAL.deadline("monthly-2026-12")
    assert december.due_at == datetime(2027, 1, 5, 15, 59, 59, tzinfo=UTC)
    assert december.period == "2026-12"
    assert december.title_zh == "2026年12月科技志愿服务月报"


def test_monthly_report_day_is_a_setting() -> None:
    assert CampaignCalendar(2026, monthly_report_day=10).deadline("monthly-2026-04").due_at == shanghai(
        2026, 5, 10, 23, 59, 59
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"monthly_report_day": 0},
        {"monthly_report_day": 32},
        {"start_month": 13},
        {"offsets_days": ()},
        {"offsets_days": (7, 0)},
        {"reminder_hour": 24},
    ],
)
def test_calendar_refuses_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the settings differ; the refusal is the point)
        CampaignCalendar(2026, **kwargs)  # type: ignore[arg-type]


def test_offsets_are_deduplicated_and_sorted() -> None:
    assert CampaignCalendar(2026, offsets_days=(1, 7, 3, 7)).offsets_days == (7, 3, 1)


def test_unknown_deadline_id_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        CAL.deadline("monthly-2026-13")


# ---- reminder slots ----


def test_reminders_fire_at_9_in_the_morning_shanghai_each_offset_before_the_due_day() -> None:
    registration = CAL.deadline("registration-2026")
    assert reminder_at(registration, 7) == shanghai(2026, 4, 13, 9)
    assert reminder_at(registration, 3) == shanghai(2026, 4, 17, 9)
    assert reminder_at(registration, 1) == shanghai(2026, 4, 19, 9)


def test_no_slot_before_the_first_offset() -> None:
    assert "registration-2026" not in slots(shanghai(2026, 4, 13, 8, 59, 59))


def test_approaching_slots_at_each_offset() -> None:
    assert slots(shanghai(2026, 4, 13, 9))["registration-2026"] == "approaching-7d"
    assert slots(shanghai(2026, 4, 17, 8, 59, 59))["registration-2026"] == "approaching-7d"
    assert slots(shanghai(2026, 4, 17, 9))["registration-2026"] == "approaching-3d"
    assert slots(shanghai(2026, 4, 19, 9))["registration-2026"] == "approaching-1d"


def test_last_second_before_the_deadline_is_still_approaching_and_the_next_is_missed() -> None:
    assert slots(REGISTRATION_DUE)["registration-2026"] == "approaching-1d"
    assert slots(REGISTRATION_DUE + timedelta(seconds=1))["registration-2026"] == "missed"


def test_configured_offsets_are_used() -> None:
    calendar = CampaignCalendar(2026, offsets_days=(14, 2))
    assert slots(shanghai(2026, 4, 6, 9), calendar)["registration-2026"] == "approaching-14d"
    assert slots(shanghai(2026, 4, 18, 9), calendar)["registration-2026"] == "approaching-2d"


def test_due_notifications_are_ordered_by_slot_time_and_offer_stable_keys() -> None:
    due = CAL.due_notifications(shanghai(2026, 5, 1))
    assert [(n.deadline.id, n.kind, n.offset_days) for n in due] == [
        ("registration-2026", NotificationKind.MISSED, None),  # came due April 21 00:00
        ("monthly-2026-04", NotificationKind.APPROACHING, 7),  # came due April 28 09:00
        ("action-plan-2026", NotificationKind.MISSED, None),  # came due May 1 00:00
    ]
    assert due[0].key("unit-1") == SlotKey("registration-2026", "unit-1", "missed")
    assert due[1].key("unit-1") == SlotKey("monthly-2026-04", "unit-1", "approaching-7d")


def test_due_notifications_works_on_any_deadlines() -> None:
    deadline = CAL.deadline("quarter-2026-Q2")
    due = due_notifications([deadline], shanghai(2026, 6, 29, 10), offsets_days=(2,), reminder_hour=8)
    assert due == [DueNotification(deadline, NotificationKind.APPROACHING, 2)]


def test_catch_up_after_downtime_offers_only_the_latest_slot() -> None:
    # Down from April 12 to the morning of April 19: 7d and 3d came due meanwhile; only 1d is offered.
    assert slots(shanghai(2026, 4, 19, 10))["registration-2026"] == "approaching-1d"
    # Down past the deadline: the approaching slots are skipped in favour of "missed".
    assert slots(shanghai(2026, 4, 25))["registration-2026"] == "missed"


def simulate_scheduler(ticks: list[datetime], unit: UnitObligations) -> list[SlotKey]:
    """A stand-in for the store's claim: a slot key can be claimed once."""
    claimed: set[SlotKey] = set()
    sent: list[SlotKey] = []
    for now in ticks:
        for key, _, _ in slots_for_unit(unit, CAL, CAL.due_notifications(now), now):
            if key not in claimed:
                claimed.add(key)
                sent.append(key)
    return sent


def test_hourly_ticks_send_each_slot_exactly_once() -> None:
    unit = UnitObligations("u1").apply(UnitRegistered("u1", shanghai(2026, 4, 1)))
    start = shanghai(2026, 4, 10)
    ticks = [start + timedelta(hours=h) for h in range(24 * 15)]
    sent = [key for key in simulate_scheduler(ticks, unit) if key.deadline_id == "registration-2026"]
    assert [key.slot for key in sent] == ["approaching-7d", "approaching-3d", "approaching-1d", "missed"]


def test_restart_after_downtime_catches_up_once() -> None:
    unit = UnitObligations("u1").apply(UnitRegistered("u1", shanghai(2026, 4, 1)))
    before = [shanghai(2026, 4, 13, 10)]  # 7d sent
    after = [shanghai(2026, 4, 22), shanghai(2026, 4, 22, 1)]  # back after the deadline, twice
    sent = [key.slot for key in simulate_scheduler(before + after, unit) if key.deadline_id == "registration-2026"]
    assert sent == ["approaching-7d", "missed"]


def test_days_left_counts_calendar_days_in_shanghai() -> None:
    assert days_left(REGISTRATION_DUE, shanghai(2026, 4, 13, 9)) == 7
    assert days_left(REGISTRATION_DUE, datetime(2026, 4, 19, 16, 0, tzinfo=UTC)) == 0  # April 20 in Shanghai
    assert days_left(REGISTRATION_DUE, shanghai(2026, 4, 25)) == 0


# ---- obligations ----


def registered(at: datetime = shanghai(2026, 4, 1), **kwargs: bool) -> UnitObligations:
    return UnitObligations("u1").apply(UnitRegistered("u1", at, **kwargs))


def open_ids(unit: UnitObligations, calendar: CampaignCalendar = CAL) -> set[tuple[str, ObligationKind]]:
    return {(o.deadline.id, o.kind) for o in unit.obligations(calendar) if o.is_open}


def test_no_obligations_before_registration() -> None:
    assert UnitObligations("u1").apply(ActivityCompleted("u1", shanghai(2026, 5, 1))).obligations(CAL) == []


def test_registration_opens_every_obligation_and_closes_its_own() -> None:
    unit = registered()
    obligations = unit.obligations(CAL)
    assert {o.deadline.id for o in obligations} == {d.id for d in CAL.deadlines}
    assert ("registration-2026", ObligationKind.REGISTRATION) not in open_ids(unit)
    assert ("registration-2026", ObligationKind.CONTACT_PERSON) in open_ids(unit)
    assert len(open_ids(unit)) == len(obligations) - 1


def test_registration_with_a_contact_person_closes_that_too() -> None:
    assert ("registration-2026", ObligationKind.CONTACT_PERSON) not in open_ids(registered(contact_person_given=True))


def test_facts_close_their_obligations() -> None:
    unit = registered()
    closing: list[tuple[Fact, tuple[str, ObligationKind]]] = [
        (ContactPersonGiven("u1", shanghai(2026, 4, 5)), ("registration-2026", ObligationKind.CONTACT_PERSON)),
        (ActionPlanSubmitted("u1", 2026, shanghai(2026, 4, 28)), ("action-plan-2026", ObligationKind.ACTION_PLAN)),
        (
            MonthlyReportSubmitted("u1", "2026-05", shanghai(2026, 6, 3)),
            ("monthly-2026-05", ObligationKind.MONTHLY_REPORT),
        ),
        (ActivityCompleted("u1", shanghai(2026, 8, 1)), ("quarter-2026-Q3", ObligationKind.QUARTERLY_ACTIVITY)),
    ]
    for fact, key in closing:
        assert key in open_ids(unit)
        after = unit.apply(fact)
        assert open_ids(after) == open_ids(unit) - {key}


def test_activity_quarter_is_decided_in_shanghai_time() -> None:
    last_second_of_q2 = datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC)
    closed_q2 = registered().apply(ActivityCompleted("u1", last_second_of_q2))
    assert ("quarter-2026-Q2", ObligationKind.QUARTERLY_ACTIVITY) not in open_ids(closed_q2)
    closed_q3 = registered().apply(ActivityCompleted("u1", last_second_of_q2 + timedelta(seconds=1)))
    assert ("quarter-2026-Q2", ObligationKind.QUARTERLY_ACTIVITY) in open_ids(closed_q3)
    assert ("quarter-2026-Q3", ObligationKind.QUARTERLY_ACTIVITY) not in open_ids(closed_q3)


def test_action_plan_of_another_year_does_not_close_this_one() -> None:
    unit = registered().apply(ActionPlanSubmitted("u1", 2025, shanghai(2026, 4, 28)))
    assert ("action-plan-2026", ObligationKind.ACTION_PLAN) in open_ids(unit)


def test_periods_that_ended_before_registration_are_not_opened() -> None:
    ids = {o.deadline.id for o in registered(shanghai(2026, 7, 2)).obligations(CAL)}
    assert "monthly-2026-06" not in ids
    assert "quarter-2026-Q2" not in ids
    assert {"registration-2026", "action-plan-2026", "monthly-2026-07", "quarter-2026-Q3"} <= ids


def test_fact_for_another_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="u2"):
        registered().apply(ContactPersonGiven("u2", shanghai(2026, 4, 5)))


def test_malformed_month_is_refused() -> None:
    with pytest.raises(ValueError, match="2026-4"):
        MonthlyReportSubmitted("u1", "2026-4", shanghai(2026, 5, 1))


FACTS: list[Fact] = [
    UnitRegistered("u1", shanghai(2026, 4, 2)),
    ContactPersonGiven("u1", shanghai(2026, 4, 25)),
    ActionPlanSubmitted("u1", 2026, shanghai(2026, 4, 29)),
    MonthlyReportSubmitted("u1", "2026-04", shanghai(2026, 5, 4)),
    MonthlyReportSubmitted("u1", "2026-04", shanghai(2026, 5, 8)),  # a resubmission
    ActivityCompleted("u1", shanghai(2026, 5, 20)),
    ActivityCompleted("u1", shanghai(2026, 5, 10)),
]


@given(st.permutations(FACTS), st.lists(st.sampled_from(FACTS), max_size=5))
def test_state_is_the_same_whatever_the_order_and_redelivery(order: list[Fact], duplicates: list[Fact]) -> None:
    expected = UnitObligations("u1")
    for fact in FACTS:
        expected = expected.apply(fact)
    actual = UnitObligations("u1")
    for fact in [*order, *duplicates]:
        actual = actual.apply(fact)
    assert actual == expected
    assert actual.monthly_reports["2026-04"] == shanghai(2026, 5, 4)  # the earliest submission counts


def test_slots_go_only_to_units_with_an_open_obligation() -> None:
    now = shanghai(2026, 4, 13, 10)
    due = CAL.due_notifications(now)
    open_unit = registered()
    done_unit = registered(contact_person_given=True)
    [found] = [s for s in slots_for_unit(open_unit, CAL, due, now) if s.key.deadline_id == "registration-2026"]
    assert found.key == SlotKey("registration-2026", "u1", "approaching-7d")
    assert found.obligations == (ObligationKind.CONTACT_PERSON,)
    assert found.notification.offset_days == 7
    assert slots_for_unit(done_unit, CAL, due, now) == []


def test_missed_counts_obligations_closed_late_but_not_those_closed_in_time() -> None:
    now = shanghai(2026, 4, 22)
    due = CAL.due_notifications(now)
    late = registered().apply(ContactPersonGiven("u1", REGISTRATION_DUE + timedelta(seconds=1)))
    in_time = registered().apply(ContactPersonGiven("u1", REGISTRATION_DUE))
    assert [(s.key, s.obligations) for s in slots_for_unit(late, CAL, due, now)] == [
        (SlotKey("registration-2026", "u1", "missed"), (ObligationKind.CONTACT_PERSON,))
    ]
    assert slots_for_unit(in_time, CAL, due, now) == []


def test_late_registration_is_reported_as_missed() -> None:
    now = shanghai(2026, 4, 22)
    unit = registered(shanghai(2026, 4, 21, 10), contact_person_given=True)
    found = slots_for_unit(unit, CAL, CAL.due_notifications(now), now)
    assert [(s.key, s.obligations) for s in found] == [
        (
            SlotKey("registration-2026", "u1", "missed"),
            (ObligationKind.REGISTRATION, ObligationKind.CONTACT_PERSON),  # given with the late registration
        )
    ]


# ---- e-mail templates ----


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


VALUES: dict[str, dict[str, object]] = {
    templates.DEADLINE_APPROACHING: {
        "unit_name": "石家庄市科技志愿者支队",
        "deadline_title": "2026年科技志愿服务信息平台注册及工作联系人报送",
        "due_at": REGISTRATION_DUE,
        "days_left": 3,
        "action": CAL.deadline("registration-2026").action_zh,
    },
    templates.DEADLINE_MISSED: {
        "deadline_title": "2026年4月科技志愿服务月报",
        "due_at": datetime(2026, 5, 5, 15, 59, 59, tzinfo=UTC),
        "units": ["唐山市科技志愿者支队", "河北工业大学科技志愿者支队"],
    },
    templates.ACTIVITY_REMINDER: {
        "volunteer_name": "李明",
        "activity_title": "防灾减灾科普进社区",
        "starts_at": datetime(2026, 5, 9, 1, 30, tzinfo=UTC),
        "location": "石家庄市长安区建北街道社区服务中心",
        "unit_name": "石家庄市科技志愿者支队",
    },
    templates.ACTIVITY_CANCELLED: {
        "volunteer_name": "李明",
        "activity_title": "防灾减灾科普进社区",
        "starts_at": datetime(2026, 5, 9, 1, 30, tzinfo=UTC),
        "unit_name": "石家庄市科技志愿者支队",
        "reason": "因天气原因",
    },
    templates.REPORT_RETURNED: {
        "unit_name": "石家庄市科技志愿者支队",
        "report_title": "2026年4月月度报告",
        "version": 1,
        "returned_at": datetime(2026, 5, 12, 2, 0, tzinfo=UTC),
    },
    templates.REPORT_AMENDED: {
        "unit_name": "石家庄市科技志愿者支队",
        "report_title": "2026年4月月度报告",
        "version": 2,
    },
    templates.REPORT_ACCEPTED: {
        "unit_name": "石家庄市科技志愿者支队",
        "report_title": "2026年4月月度报告",
        "version": 2,
    },
}


@pytest.mark.parametrize("name", templates.TEMPLATE_NAMES)
def test_every_template_renders_chinese_subject_and_body(name: str) -> None:
    subject, body = templates.render(name, **VALUES[name])
    assert has_chinese(subject)
    assert "\n" not in subject
    assert has_chinese(body)
    assert "{{" not in body
    assert "{%" not in body


def test_deadline_approaching_names_unit_deadline_date_days_and_action() -> None:
    subject, body = templates.render(templates.DEADLINE_APPROACHING, **VALUES[templates.DEADLINE_APPROACHING])
    assert "还有3天截止" in subject
    assert body.startswith("石家庄市科技志愿者支队：")
    assert "2026年4月20日" in body
    assert "附件3" in body


def test_dates_are_shown_in_shanghai_time() -> None:
    values = {**VALUES[templates.DEADLINE_APPROACHING], "due_at": REGISTRATION_DUE + timedelta(seconds=1)}
    _, body = templates.render(templates.DEADLINE_APPROACHING, **values)
    assert "2026年4月21日00:00" in body


def test_due_today_says_so() -> None:
    values = {**VALUES[templates.DEADLINE_APPROACHING], "days_left": 0}
    subject, _ = templates.render(templates.DEADLINE_APPROACHING, **values)
    assert subject.endswith("今天截止")


def test_deadline_missed_lists_every_unit() -> None:
    subject, body = templates.render(templates.DEADLINE_MISSED, **VALUES[templates.DEADLINE_MISSED])
    assert "（2个）" in subject
    assert "1. 唐山市科技志愿者支队\n2. 河北工业大学科技志愿者支队" in body


def test_activity_reminder_gives_time_weekday_and_place() -> None:
    subject, body = templates.render(templates.ACTIVITY_REMINDER, **VALUES[templates.ACTIVITY_REMINDER])
    assert subject == "【活动提醒】明天09:30：防灾减灾科普进社区"
    assert "2026年5月9日（星期六）09:30" in body
    assert "石家庄市长安区建北街道社区服务中心" in body


def test_activity_cancelled_reason_is_optional() -> None:
    with_reason = templates.render(templates.ACTIVITY_CANCELLED, **VALUES[templates.ACTIVITY_CANCELLED])[1]
    assert "取消原因：因天气原因" in with_reason
    values = {k: v for k, v in VALUES[templates.ACTIVITY_CANCELLED].items() if k != "reason"}
    assert "取消原因" not in templates.render(templates.ACTIVITY_CANCELLED, **values)[1]


def test_a_missing_value_raises_a_template_error_naming_it() -> None:
    values = {k: v for k, v in VALUES[templates.DEADLINE_APPROACHING].items() if k not in ("unit_name", "due_at")}
    with pytest.raises(TemplateError, match="due_at, unit_name") as raised:
        templates.render(templates.DEADLINE_APPROACHING, **values)
    assert isinstance(raised.value, templates.MissingTemplateValueError)
    assert raised.value.missing == ["due_at", "unit_name"]


def test_required_values_are_known_up_front() -> None:
    assert templates.required_values(templates.ACTIVITY_CANCELLED) == {
        "volunteer_name",
        "activity_title",
        "starts_at",
        "unit_name",
    }


def test_a_value_of_the_wrong_type_raises_a_template_error() -> None:
    with pytest.raises(TemplateError, match="expected a date or datetime"):
        templates.render(templates.DEADLINE_MISSED, **{**VALUES[templates.DEADLINE_MISSED], "due_at": "4月20日"})


def test_a_naive_datetime_is_refused() -> None:
    values = {**VALUES[templates.ACTIVITY_REMINDER], "starts_at": datetime(2026, 5, 9, 9, 30)}
    with pytest.raises(TemplateError, match="naive"):
        templates.render(templates.ACTIVITY_REMINDER, **values)


def test_a_plain_date_cannot_give_a_time_of_day() -> None:
    values = {**VALUES[templates.DEADLINE_MISSED], "due_at": date(2026, 5, 5)}
    with pytest.raises(TemplateError, match="time of day"):
        templates.render(templates.DEADLINE_MISSED, **values)


def test_unknown_template_is_refused() -> None:
    with pytest.raises(TemplateNotFound):
        templates.render("weekly_digest")
