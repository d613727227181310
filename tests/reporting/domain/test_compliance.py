"""Compliance rules of the reporting service: every rule at its met / not_yet / missed boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.domain.compliance import RuleResult, RuleStatus, UnitFacts, evaluate_unit, first_batch_units
from services.reporting.domain.stars import hours_to_next_star, star_level
from services.reporting.domain.vocabulary import LeaderRole, UnitKind
from shared.calendar import (
    SHANGHAI,
    is_late,
    month_key,
    monthly_report_due,
    quarter_end,
    quarter_of,
)
from shared.programme import Theme

YEAR = 2026
ON_TIME_APR_20 = datetime(2026, 4, 20, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
LATE_APR_20 = datetime(2026, 4, 20, 16, 0, 0, tzinfo=UTC)  # 00:00:00 on April 21 in Shanghai
REGISTERED = datetime(2026, 3, 1, tzinfo=SHANGHAI)

CITY_LEADERS = {
    LeaderRole.DETACHMENT_CHIEF: 1,
    LeaderRole.DETACHMENT_DEPUTY: 3,
    LeaderRole.SECRETARY_GENERAL: 1,
}


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def rule(results: list[RuleResult], rule_id: str) -> RuleResult:
    matches = [r for r in results if r.rule == rule_id]
    assert len(matches) == 1, f"{rule_id} in {[r.rule for r in results]}"
    return matches[0]


def facts(**overrides: object) -> UnitFacts:
    values: dict[str, object] = {"kind": UnitKind.CITY_DETACHMENT, "registered_at": REGISTERED}
    values.update(overrides)
    return UnitFacts(**values)  # type: ignore[arg-type]


def evaluate(unit: UnitFacts, today: datetime | date, rule_id: str, **kwargs: int) -> RuleResult:
    return rule(evaluate_unit(unit, YEAR, today, **kwargs), rule_id)


# ---- helpers ----


def test_quarter_of_uses_shanghai_time() -> None:
    assert quarter_of(datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC)) == 1
    assert quarter_of(datetime(2026, 3, 31, 16, 0, 0, tzinfo=UTC)) == 2  # April 1 in Shanghai
    assert quarter_of(shanghai(2026, 12, 31, 23, 59)) == 4


def test_month_key_uses_shanghai_time() -> None:
    assert month_key(datetime(2026, 4, 30, 16, 0, tzinfo=UTC)) == "2026-05"
    assert month_key(datetime(2026, 4, 30, 15, 59, 59, tzinfo=UTC)) == "2026-04"
    assert month_key(datetime(2025, 12, 31, 16, 0, tzinfo=UTC)) == "2026-01"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        quarter_of(datetime(2026, 4, 1))
    with pytest.raises(ValueError, match="aware"):
        is_late(datetime(2026, 4, 1), ON_TIME_APR_20)


def test_is_late_at_the_exact_deadline_second() -> None:
    due = shanghai(2026, 4, 20, 23, 59, 59)
    assert not is_late(ON_TIME_APR_20, due)
    assert not is_late(ON_TIME_APR_20 + timedelta(microseconds=999_999), due)
    assert is_late(LATE_APR_20, due)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_quarter_and_month_key_agree(moment: datetime) -> None:
    local = moment.astimezone(SHANGHAI)
    assert month_key(moment) == f"{local.year:04d}-{local.month:02d}"
    assert quarter_of(moment) == (int(month_key(moment)[5:]) - 1) // 3 + 1
    assert not is_late(moment, quarter_end(local.year, quarter_of(moment)))


def test_quarter_end_is_the_last_second_of_the_quarter_in_shanghai() -> None:
    assert quarter_end(2026, 1) == datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC)
    assert quarter_end(2026, 2) == datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC)
    assert quarter_end(2026, 4) == datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)


def test_december_report_is_due_in_january_and_day_is_clamped_to_month_end() -> None:
    assert monthly_report_due(2026, 12) == shanghai(2027, 1, 5, 23, 59, 59)
    assert monthly_report_due(2028, 1, day=31) == shanghai(2028, 2, 29, 23, 59, 59)
    assert monthly_report_due(2027, 1, day=31) == shanghai(2027, 2, 28, 23, 59, 59)


# ---- headcount ----


@pytest.mark.parametrize(
    ("kind", "volunteers", "status", "gap"),
    [
        (UnitKind.CITY_DETACHMENT, 299, RuleStatus.NOT_YET, 1),
        (UnitKind.CITY_DETACHMENT, 300, RuleStatus.MET, 0),
        (UnitKind.SOCIETY_DETACHMENT, 12, RuleStatus.NOT_YET, 18),
        (UnitKind.SOCIETY_DETACHMENT, 30, RuleStatus.MET, 0),
        (UnitKind.UNIVERSITY_DETACHMENT, 0, RuleStatus.NOT_YET, 100),
        (UnitKind.UNIVERSITY_DETACHMENT, 101, RuleStatus.MET, 0),
        (UnitKind.COUNTY_TEAM, 49, RuleStatus.NOT_YET, 1),
        (UnitKind.COUNTY_TEAM, 50, RuleStatus.MET, 0),
        (UnitKind.ENTERPRISE_DETACHMENT, 0, RuleStatus.MET, 0),
        (UnitKind.SUB_TEAM, 0, RuleStatus.MET, 0),
        (UnitKind.PROVINCE_CORPS, 0, RuleStatus.MET, 0),
    ],
)
def test_headcount_gap_is_the_number_of_people_missing(
    kind: UnitKind, volunteers: int, status: RuleStatus, gap: int
) -> None:
    result = evaluate(facts(kind=kind, volunteers=volunteers), shanghai(2026, 5, 1), "headcount")
    assert (result.status, result.gap) == (status, gap)


def test_a_city_detachment_counts_the_teams_that_joined_it_but_not_its_county_teams() -> None:
    """The notice: a city detachment is made of the people of city societies, universities and enterprises; a county
    team has its own minimum (50) and its township teams count for it."""
    kinds = {
        "C": UnitKind.CITY_DETACHMENT,
        "society": UnitKind.SUB_TEAM,
        "society-dept": UnitKind.SUB_TEAM,
        "park": UnitKind.ENTERPRISE_DETACHMENT,
        "county": UnitKind.COUNTY_TEAM,
        "township": UnitKind.SUB_TEAM,
    }
    children = {"C": ["society", "park", "county"], "society": ["society-dept"], "county": ["township"]}
    assert sorted(first_batch_units("C", kinds, children)) == ["C", "park", "society", "society-dept"]
    assert sorted(first_batch_units("county", kinds, children)) == ["county", "township"]

    behind = evaluate(facts(volunteers=163, first_batch_volunteers=213), shanghai(2026, 5, 1), "headcount")
    assert (behind.status, behind.gap) == (RuleStatus.NOT_YET, 87)
    assert "213" in behind.detail_zh and "县级队" in behind.detail_zh, "the answer states how it counted"


def test_headcount_below_minimum_is_behind_never_missed_even_after_the_year() -> None:
    result = evaluate(facts(volunteers=280), shanghai(2027, 3, 1), "headcount")
    assert result.status is RuleStatus.NOT_YET
    assert result.gap == 20
    assert "尚差20人" in result.detail_zh


# ---- leaders ----


def test_city_detachment_with_all_leaders_meets_the_rule() -> None:
    result = evaluate(facts(leaders=CITY_LEADERS), shanghai(2026, 5, 1), "leaders")
    assert (result.status, result.gap) == (RuleStatus.MET, 0)


def test_leader_gap_counts_every_missing_leader() -> None:
    leaders = {LeaderRole.DETACHMENT_CHIEF: 1, LeaderRole.DETACHMENT_DEPUTY: 1}
    result = evaluate(facts(leaders=leaders), shanghai(2027, 1, 1), "leaders")
    assert (result.status, result.gap) == (RuleStatus.NOT_YET, 3)  # two deputies and the secretary-general
    assert "副支队长2名" in result.detail_zh
    assert "秘书长1名" in result.detail_zh


def test_leaders_above_the_usual_ceiling_are_noted_not_counted_as_a_gap() -> None:
    leaders = {**CITY_LEADERS, LeaderRole.DETACHMENT_DEPUTY: 6}
    result = evaluate(facts(leaders=leaders), shanghai(2026, 5, 1), "leaders")
    assert (result.status, result.gap) == (RuleStatus.MET, 0)
    assert "超过" in result.detail_zh


@pytest.mark.parametrize(
    ("kind", "leaders", "gap"),
    [
        (UnitKind.COUNTY_TEAM, {"team_chief": 1, "team_deputy": 1}, 1),
        (UnitKind.COUNTY_TEAM, {"team_chief": 1, "team_deputy": 2}, 0),
        (UnitKind.SOCIETY_DETACHMENT, {}, 1),
        (UnitKind.UNIVERSITY_DETACHMENT, {"detachment_chief": 1}, 0),
        (UnitKind.ENTERPRISE_DETACHMENT, {}, 1),
        (UnitKind.SUB_TEAM, {"sub_team_head": 1}, 0),
        (UnitKind.PROVINCE_CORPS, {"corps_deputy": 3}, 1),
    ],
)
def test_leaders_required_per_kind(kind: UnitKind, leaders: dict[str, int], gap: int) -> None:
    result = evaluate(facts(kind=kind, leaders=leaders), shanghai(2026, 5, 1), "leaders")
    assert result.gap == gap
    assert result.status is (RuleStatus.MET if gap == 0 else RuleStatus.NOT_YET)


def test_leader_counts_may_be_keyed_by_chinese_title() -> None:
    leaders = {"队长": 1, "副队长": 2}
    result = evaluate(facts(kind=UnitKind.COUNTY_TEAM, leaders=leaders), shanghai(2026, 5, 1), "leaders")
    assert (result.status, result.gap) == (RuleStatus.MET, 0)


def test_unknown_unit_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="brigade"):
        facts(kind="brigade")


# ---- one activity per quarter ----


def test_quarter_with_an_activity_is_met() -> None:
    result = evaluate(facts(activities_per_quarter={2: 1}), shanghai(2026, 5, 1), "activity-Q2")
    assert (result.status, result.gap) == (RuleStatus.MET, 0)


def test_quarter_without_activity_is_not_yet_until_its_last_second_in_shanghai() -> None:
    last_second = datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC)
    assert evaluate(facts(), last_second, "activity-Q2").status is RuleStatus.NOT_YET
    missed = evaluate(facts(), last_second + timedelta(seconds=1), "activity-Q2")
    assert (missed.status, missed.gap) == (RuleStatus.MISSED, 1)


def test_future_quarters_are_not_yet() -> None:
    results = evaluate_unit(facts(), YEAR, shanghai(2026, 5, 1))
    assert [rule(results, f"activity-Q{q}").status for q in (2, 3, 4)] == [RuleStatus.NOT_YET] * 3


def test_quarters_follow_the_campaign_start_month() -> None:
    ids = {r.rule for r in evaluate_unit(facts(), YEAR, shanghai(2026, 5, 1))}
    assert "activity-Q1" not in ids  # the campaign starts in April by default
    all_year = evaluate_unit(facts(registered_at=None), YEAR, shanghai(2026, 4, 1), campaign_start_month=1)
    assert rule(all_year, "activity-Q1").status is RuleStatus.MISSED


def test_quarters_that_ended_before_registration_are_not_held_against_the_unit() -> None:
    results = evaluate_unit(facts(registered_at=shanghai(2026, 7, 1)), YEAR, shanghai(2026, 8, 1))
    ids = {r.rule for r in results}
    assert "activity-Q2" not in ids
    assert "activity-Q3" in ids


# ---- themes ----


@pytest.mark.parametrize("theme", list(Theme))
def test_each_theme_is_not_yet_during_the_year_and_missed_after_december_31(theme: Theme) -> None:
    rule_id = f"theme-{theme.value}"
    assert evaluate(facts(), datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC), rule_id).status is RuleStatus.NOT_YET
    missed = evaluate(facts(), datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC), rule_id)
    assert (missed.status, missed.gap) == (RuleStatus.MISSED, 1)
    met = evaluate(facts(theme_counts={theme: 2}), shanghai(2027, 1, 2), rule_id)
    assert (met.status, met.gap) == (RuleStatus.MET, 0)


def test_one_activity_counting_towards_several_themes_meets_each() -> None:
    counts = {Theme.WOMEN_YOUTH: 1, Theme.POVERTY_HEALTH: 1}
    results = evaluate_unit(facts(theme_counts=counts), YEAR, shanghai(2026, 6, 1))
    assert rule(results, "theme-women_youth").status is RuleStatus.MET
    assert rule(results, "theme-poverty_health").status is RuleStatus.MET
    assert rule(results, "theme-enterprise_innovation").status is RuleStatus.NOT_YET


# ---- dated one-off rules ----


@pytest.mark.parametrize(
    ("rule_id", "field"),
    [("registration", "registered_at"), ("contact_person", "contact_person_given_at")],
)
def test_april_20_rules_at_the_deadline_second(rule_id: str, field: str) -> None:
    on_time = evaluate(facts(**{field: ON_TIME_APR_20}), shanghai(2026, 5, 1), rule_id)
    assert (on_time.status, on_time.gap) == (RuleStatus.MET, 0)
    late = evaluate(facts(**{field: LATE_APR_20}), shanghai(2026, 5, 1), rule_id)
    assert (late.status, late.gap) == (RuleStatus.MISSED, 0)  # done, but late
    assert "晚于截止时间" in late.detail_zh


@pytest.mark.parametrize(
    ("rule_id", "field"),
    [("registration", "registered_at"), ("contact_person", "contact_person_given_at")],
)
def test_april_20_rules_pending_then_missed(rule_id: str, field: str) -> None:
    pending = evaluate(facts(**{field: None}), ON_TIME_APR_20, rule_id)
    assert (pending.status, pending.gap) == (RuleStatus.NOT_YET, 1)
    missed = evaluate(facts(**{field: None}), LATE_APR_20, rule_id)
    assert (missed.status, missed.gap) == (RuleStatus.MISSED, 1)


def test_action_plan_is_due_at_the_end_of_april_30_shanghai() -> None:
    due = datetime(2026, 4, 30, 15, 59, 59, tzinfo=UTC)
    on_time = evaluate(facts(action_plan_submitted_at=due), shanghai(2026, 5, 2), "action_plan")
    assert on_time.status is RuleStatus.MET
    assert on_time.due_at == due
    late = evaluate(facts(action_plan_submitted_at=due + timedelta(seconds=1)), shanghai(2026, 5, 2), "action_plan")
    assert late.status is RuleStatus.MISSED
    assert evaluate(facts(), due, "action_plan").status is RuleStatus.NOT_YET
    assert evaluate(facts(), due + timedelta(seconds=1), "action_plan").gap == 1


def test_a_date_as_today_means_the_start_of_that_day_in_shanghai() -> None:
    assert evaluate(facts(), date(2026, 4, 30), "action_plan").status is RuleStatus.NOT_YET
    assert evaluate(facts(), date(2026, 5, 1), "action_plan").status is RuleStatus.MISSED


# ---- monthly reports ----


def test_monthly_reports_are_listed_from_april_up_to_the_current_month() -> None:
    results = evaluate_unit(facts(), YEAR, shanghai(2026, 6, 10))
    assert [r.rule for r in results if r.rule.startswith("monthly-")] == [
        "monthly-2026-04",
        "monthly-2026-05",
        "monthly-2026-06",
    ]
    before_campaign = evaluate_unit(facts(), YEAR, shanghai(2026, 3, 10))
    assert not [r for r in before_campaign if r.rule.startswith("monthly-")]
    next_year = evaluate_unit(facts(), YEAR, shanghai(2027, 2, 1))
    assert [r.rule for r in next_year if r.rule.startswith("monthly-")][-1] == "monthly-2026-12"


def test_monthly_report_due_on_day_5_of_the_next_month() -> None:
    due = datetime(2026, 5, 5, 15, 59, 59, tzinfo=UTC)
    pending = evaluate(facts(), due, "monthly-2026-04")
    assert (pending.status, pending.gap) == (RuleStatus.NOT_YET, 1)
    missed = evaluate(facts(), due + timedelta(seconds=1), "monthly-2026-04")
    assert (missed.status, missed.gap) == (RuleStatus.MISSED, 1)
    on_time = evaluate(facts(monthly_reports={"2026-04": due}), shanghai(2026, 6, 1), "monthly-2026-04")
    assert on_time.status is RuleStatus.MET
    late = evaluate(
        facts(monthly_reports={"2026-04": due + timedelta(seconds=1)}),
        shanghai(2026, 6, 1),
        "monthly-2026-04",
    )
    assert (late.status, late.gap) == (RuleStatus.MISSED, 0)


def test_monthly_report_day_is_a_parameter() -> None:
    on_day_10 = datetime(2026, 5, 10, 15, 59, 59, tzinfo=UTC)
    assert evaluate(facts(), on_day_10, "monthly-2026-04", monthly_report_day=10).status is RuleStatus.NOT_YET
    assert evaluate(facts(), on_day_10, "monthly-2026-04").status is RuleStatus.MISSED


def test_december_report_is_evaluated_against_january_of_the_next_year() -> None:
    result = evaluate(facts(), shanghai(2027, 1, 5, 12), "monthly-2026-12")
    assert result.status is RuleStatus.NOT_YET
    assert result.due_at == shanghai(2027, 1, 5, 23, 59, 59)
    assert evaluate(facts(), shanghai(2027, 1, 6), "monthly-2026-12").status is RuleStatus.MISSED


def test_months_that_ended_before_registration_need_no_report() -> None:
    results = evaluate_unit(facts(registered_at=shanghai(2026, 6, 2)), YEAR, shanghai(2026, 7, 10))
    assert [r.rule for r in results if r.rule.startswith("monthly-")] == [
        "monthly-2026-06",
        "monthly-2026-07",
    ]


def test_every_result_has_chinese_label_and_detail() -> None:
    for result in evaluate_unit(facts(), YEAR, shanghai(2026, 12, 1)):
        assert result.label_zh
        assert result.detail_zh
        assert any("\u4e00" <= char <= "\u9fff" for char in result.detail_zh)


# ---- stars ----


@pytest.mark.parametrize(
    ("hours", "level", "to_next"),
    [
        (0, 0, 100),
        (99.9, 0, 0.1),
        (100, 1, 200),
        (299.5, 1, 0.5),
        (300, 2, 300),
        (600, 3, 400),
        (999.99, 3, 0.01),
        (1000, 4, 500),
        (1499, 4, 1),
        (1500, 5, None),
        (10_000, 5, None),
    ],
)
def test_star_level_boundaries(hours: float, level: int, to_next: float | None) -> None:
    assert star_level(hours) == level
    assert hours_to_next_star(hours) == to_next


@pytest.mark.parametrize("hours", [-0.1, float("nan"), float("inf")])
def test_star_level_refuses_impossible_hours(hours: float) -> None:
    with pytest.raises(ValueError, match="hours"):
        star_level(hours)


@given(st.floats(min_value=0, max_value=5000), st.floats(min_value=0, max_value=5000))
def test_star_level_never_drops_as_hours_grow(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert star_level(low) <= star_level(high)
