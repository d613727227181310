"""The programme's vocabulary (shared.vocabulary) as the registry reads it: the notice's wording for every label, the
older wordings still recognised, the codes unchanged (they are stored, and sent in events)."""

from __future__ import annotations

import pytest

from shared.vocabulary import (
    ALLOWED_PARENTS,
    FIRST_BATCH_MINIMUM,
    LEADER_RULES,
    LeaderRole,
    UnitKind,
    principal_role,
    required_leaders,
    roles_for,
)


def test_labels_follow_the_notice() -> None:
    assert UnitKind.labels() == (
        "河北省科技志愿者总队",
        "市级科技志愿者支队",
        "省级学会科技志愿者支队",
        "高校科技志愿者支队",
        "企业（园区）科技志愿者支队",
        "县（市、区）科技志愿者队",
        "科技志愿服务分队",
    )
    assert LeaderRole.SUB_TEAM_HEAD.label == "分队负责人"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("分队", UnitKind.SUB_TEAM),  # the registry's former label: spreadsheets filled with it still parse
        ("科技志愿服务分队", UnitKind.SUB_TEAM),
        ("科技志愿者分队", UnitKind.SUB_TEAM),
        ("省科技志愿者总队", UnitKind.PROVINCE_CORPS),  # reporting's former label
        ("总队", UnitKind.PROVINCE_CORPS),
        ("企业（园区）科技志愿者支队", UnitKind.ENTERPRISE_DETACHMENT),
        ("企业(园区)科技志愿者支队", UnitKind.ENTERPRISE_DETACHMENT),  # half-width brackets
        (" county_team ", UnitKind.COUNTY_TEAM),
    ],
)
def test_every_wording_finds_its_kind(text: str, kind: UnitKind) -> None:
    assert UnitKind.lookup(text) is kind


def test_codes_are_the_stored_ones() -> None:
    assert [k.value for k in UnitKind] == [
        "province_corps",
        "city_detachment",
        "society_detachment",
        "university_detachment",
        "enterprise_detachment",
        "county_team",
        "sub_team",
    ]
    assert LeaderRole.lookup("分队长") is LeaderRole.SUB_TEAM_HEAD


def test_rules_cover_every_kind() -> None:
    assert set(ALLOWED_PARENTS) == set(LEADER_RULES) == set(UnitKind)
    assert principal_role(UnitKind.COUNTY_TEAM) is LeaderRole.TEAM_CHIEF
    assert roles_for(UnitKind.SUB_TEAM) == (LeaderRole.SUB_TEAM_HEAD,)
    assert [(r.role, r.minimum, r.maximum) for r in required_leaders(UnitKind.CITY_DETACHMENT)] == [
        (LeaderRole.DETACHMENT_CHIEF, 1, 1),
        (LeaderRole.DETACHMENT_DEPUTY, 3, 5),
        (LeaderRole.SECRETARY_GENERAL, 1, 1),
    ]
    assert FIRST_BATCH_MINIMUM == {
        UnitKind.CITY_DETACHMENT: 300,
        UnitKind.SOCIETY_DETACHMENT: 30,
        UnitKind.UNIVERSITY_DETACHMENT: 100,
        UnitKind.COUNTY_TEAM: 50,
    }
