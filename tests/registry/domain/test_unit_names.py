"""The notice's naming patterns as a rule (一、2–6): which names follow them, what is suggested for one that does not,
and that every suggested name passes the rule it is checked against."""

from __future__ import annotations

import pytest

from services.registry.domain.errors import NamePatternError
from services.registry.domain.units import check_name, follows_name_pattern, name_suggestion, suggest_name
from shared.vocabulary import UnitKind

K = UnitKind
HAU = "河北农业大学科技志愿者支队"
ZD = "正定县科技志愿者队"
SJZ = "石家庄市科技志愿者支队"


@pytest.mark.parametrize(
    ("kind", "name", "parent", "parent_kind", "city", "suggestion"),
    [
        (K.CITY_DETACHMENT, "石家庄科技志愿者支队", None, None, None, SJZ),
        (K.CITY_DETACHMENT, "石家庄市科协志愿服务支队", None, None, None, SJZ),
        (K.CITY_DETACHMENT, "石家庄市科技志愿者支队", None, None, "tangshan", "唐山市科技志愿者支队"),
        (K.SOCIETY_DETACHMENT, "河北省农学会志愿服务支队", None, None, None, "河北省农学会科技志愿者支队"),
        (K.SOCIETY_DETACHMENT, "河北省农学会", None, None, None, "河北省农学会科技志愿者支队"),
        (K.UNIVERSITY_DETACHMENT, "河北大学科技志愿服务支队", None, None, None, "河北大学科技志愿者支队"),
        (K.ENTERPRISE_DETACHMENT, "高新区支队", None, None, None, "高新区科技志愿者支队"),
        (K.COUNTY_TEAM, "正定县科技志愿服务队", None, None, None, ZD),
        (K.COUNTY_TEAM, "正定县", None, None, None, ZD),
        (K.SUB_TEAM, "农学院分队", HAU, K.UNIVERSITY_DETACHMENT, None, "河北农业大学科技志愿服务支队农学院分队"),
        (K.SUB_TEAM, HAU + "农学院", HAU, K.UNIVERSITY_DETACHMENT, None, "河北农业大学科技志愿服务支队农学院分队"),
        (K.SUB_TEAM, "新安镇", ZD, K.COUNTY_TEAM, None, "正定县科技志愿者队新安镇分队"),
        (K.PROVINCE_CORPS, "总队", None, None, None, "河北省科技志愿者总队"),
    ],
)
def test_a_name_off_the_pattern_gets_the_standard_name_suggested(
    kind: UnitKind, name: str, parent: str | None, parent_kind: UnitKind | None, city: str | None, suggestion: str
) -> None:
    assert not follows_name_pattern(kind, name, city=city, parent_name=parent, parent_kind=parent_kind)
    assert name_suggestion(kind, name, city=city, parent_name=parent, parent_kind=parent_kind) == suggestion
    with pytest.raises(NamePatternError) as caught:
        check_name(kind, name, city=city, parent_name=parent, parent_kind=parent_kind)
    assert caught.value.code == "name_pattern" and caught.value.suggestion == suggestion
    assert caught.value.errors[0].field == "name"
    assert f"建议使用“{suggestion}”" in caught.value.message and "命名规范" in caught.value.message
    # the suggestion itself passes
    check_name(kind, suggestion, city=city, parent_name=parent, parent_kind=parent_kind)


@pytest.mark.parametrize(
    ("kind", "name", "parent", "parent_kind"),
    [
        (K.CITY_DETACHMENT, "定州市科技志愿者支队", None, None),
        (K.CITY_DETACHMENT, "雄安新区科技志愿者支队", None, None),
        (K.SOCIETY_DETACHMENT, "石家庄市农学会科技志愿者支队", SJZ, K.CITY_DETACHMENT),
        (K.UNIVERSITY_DETACHMENT, "石家庄学院科技志愿者支队", SJZ, K.CITY_DETACHMENT),
        (K.SUB_TEAM, "河北农业大学科技志愿服务支队农学院分队", HAU, K.UNIVERSITY_DETACHMENT),
        (K.SUB_TEAM, "新安镇科技志愿者分队", ZD, K.COUNTY_TEAM),  # the notice: 乡镇（街道）科技志愿者分队
        (K.SUB_TEAM, "植保专委会分队", "河北省农学会科技志愿者支队", K.SOCIETY_DETACHMENT),
    ],
)
def test_names_in_the_notices_patterns_pass(
    kind: UnitKind, name: str, parent: str | None, parent_kind: UnitKind | None
) -> None:
    assert follows_name_pattern(kind, name, parent_name=parent, parent_kind=parent_kind)
    check_name(kind, name, parent_name=parent, parent_kind=parent_kind)


def test_a_department_team_of_another_university_is_off_the_pattern() -> None:
    name = "河北大学科技志愿服务支队化学院分队"
    assert not follows_name_pattern(K.SUB_TEAM, name, parent_name=HAU, parent_kind=K.UNIVERSITY_DETACHMENT)
    assert follows_name_pattern(K.SUB_TEAM, name)  # without its parent only the ending is known


@pytest.mark.parametrize(
    ("kind", "base", "parent", "parent_kind"),
    [
        (K.CITY_DETACHMENT, "保定", None, None),
        (K.SOCIETY_DETACHMENT, "河北省农学会", None, None),
        (K.UNIVERSITY_DETACHMENT, "河北大学", SJZ, K.CITY_DETACHMENT),
        (K.ENTERPRISE_DETACHMENT, "石家庄高新区", SJZ, K.CITY_DETACHMENT),
        (K.COUNTY_TEAM, "正定县", SJZ, K.CITY_DETACHMENT),
        (K.SUB_TEAM, "农学院", HAU, K.UNIVERSITY_DETACHMENT),
        (K.SUB_TEAM, "农学院", "河北农业大学", K.UNIVERSITY_DETACHMENT),  # a parent named off the pattern
        (K.SUB_TEAM, "新安镇", ZD, K.COUNTY_TEAM),
        (K.SUB_TEAM, "植保专委会", "河北省农学会科技志愿者支队", K.SOCIETY_DETACHMENT),
    ],
)
def test_every_suggested_name_passes_the_check(
    kind: UnitKind, base: str, parent: str | None, parent_kind: UnitKind | None
) -> None:
    """GET /units/suggest-name and the check agree: what is suggested is accepted."""
    name = suggest_name(kind, base, parent_name=parent)
    check_name(kind, name, parent_name=parent, parent_kind=parent_kind)
