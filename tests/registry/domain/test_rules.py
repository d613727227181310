"""Registry domain rules: hierarchy, names, leaders, unit life cycle, volunteers, memberships (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.registry.domain.codes import (
    Education,
    Gender,
    MembershipStatus,
    PoliticalStatus,
    ServiceArea,
    TitleLevel,
    UnitStatus,
)
from services.registry.domain.contact import ContactDraft, validate_contact
from services.registry.domain.errors import (
    AlreadyMemberError,
    ConflictError,
    CorpsExistsError,
    DuplicateNameError,
    DuplicatePersonError,
    InvalidLeaderRoleError,
    InvalidParentError,
    InvalidTransitionError,
    MembershipLimitError,
    NotFoundError,
    RegistryError,
    ValidationFailedError,
)
from services.registry.domain.leaders import Leader, LeaderDraft, LeaderGap, check_leaders
from services.registry.domain.memberships import (
    MAX_UNITS_PER_VOLUNTEER,
    Membership,
    approve_membership,
    leave_unit,
    reject_membership,
    request_membership,
)
from services.registry.domain.units import (
    CORPS_NAME,
    UnitDraft,
    check_parent,
    find_city,
    follows_name_pattern,
    initial_unit_status,
    member_shortfall,
    suggest_name,
    transition_unit,
    validate_unit,
)
from services.registry.domain.volunteers import (
    VolunteerDraft,
    format_platform_number,
    parse_platform_number,
    validate_volunteer,
)
from shared.programme import CITIES, CITY_LEVEL_AREAS, XIONGAN
from shared.vocabulary import ALLOWED_PARENTS, FIRST_BATCH_MINIMUM, LeaderRole, UnitKind, principal_role

TODAY = date(2026, 4, 1)
AT = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
K = UnitKind

# --- hierarchy ------------------------------------------------------------------------------------------

ALLOWED = [
    (K.CITY_DETACHMENT, K.PROVINCE_CORPS),
    (K.SOCIETY_DETACHMENT, K.PROVINCE_CORPS),
    (K.UNIVERSITY_DETACHMENT, K.PROVINCE_CORPS),
    (K.ENTERPRISE_DETACHMENT, K.PROVINCE_CORPS),
    # the notice 一、2: city-level societies, local universities and enterprises join the city detachment (属地管理)
    (K.SOCIETY_DETACHMENT, K.CITY_DETACHMENT),
    (K.UNIVERSITY_DETACHMENT, K.CITY_DETACHMENT),
    (K.ENTERPRISE_DETACHMENT, K.CITY_DETACHMENT),
    (K.COUNTY_TEAM, K.CITY_DETACHMENT),
    (K.SUB_TEAM, K.CITY_DETACHMENT),
    (K.SUB_TEAM, K.SOCIETY_DETACHMENT),
    (K.SUB_TEAM, K.UNIVERSITY_DETACHMENT),  # 一、4: a university's department teams (按院系分组)
    (K.SUB_TEAM, K.ENTERPRISE_DETACHMENT),
    (K.SUB_TEAM, K.COUNTY_TEAM),  # 一、6: township (乡镇、街道) teams under the county team
]


@pytest.mark.parametrize(("kind", "parent"), ALLOWED)
def test_allowed_parents_are_accepted(kind: UnitKind, parent: UnitKind) -> None:
    check_parent(kind, parent)


@pytest.mark.parametrize(
    ("kind", "parent"),
    [(kind, parent) for kind in UnitKind for parent in UnitKind if (kind, parent) not in ALLOWED],
)
def test_every_other_parent_is_refused(kind: UnitKind, parent: UnitKind) -> None:
    with pytest.raises(InvalidParentError) as caught:
        check_parent(kind, parent)
    assert caught.value.code == "invalid_parent"
    assert caught.value.errors[0].field == "parent_id"


def test_the_table_matches_the_allowed_list() -> None:
    assert {(k, p) for k, parents in ALLOWED_PARENTS.items() for p in parents} == set(ALLOWED)


def test_wrong_parent_message_names_both_kinds() -> None:
    with pytest.raises(InvalidParentError) as caught:
        check_parent(K.COUNTY_TEAM, K.SOCIETY_DETACHMENT)
    assert (
        caught.value.message == "县（市、区）科技志愿者队的上级组织应为市级科技志愿者支队，不能是省级学会科技志愿者支队"
    )


def test_enterprise_detachment_parent_message_offers_both_choices() -> None:
    with pytest.raises(InvalidParentError) as caught:
        check_parent(K.ENTERPRISE_DETACHMENT, None)
    assert (
        caught.value.message == "企业（园区）科技志愿者支队必须有上级组织（河北省科技志愿者总队或市级科技志愿者支队）"
    )


def test_the_corps_has_no_parent_and_exists_once() -> None:
    check_parent(K.PROVINCE_CORPS, None)
    with pytest.raises(InvalidParentError, match="最高一级"):
        check_parent(K.PROVINCE_CORPS, K.CITY_DETACHMENT)
    with pytest.raises(CorpsExistsError) as caught:
        check_parent(K.PROVINCE_CORPS, None, corps_exists=True)
    assert caught.value.message == "河北省科技志愿者总队已存在，全省只设一个总队"
    assert isinstance(caught.value, ConflictError)


def test_thirteen_cities_and_xiongan() -> None:
    assert len(CITIES) == 13
    assert [c.short_name for c in CITIES[:11]] == [
        "石家庄", "唐山", "秦皇岛", "邯郸", "邢台", "保定", "张家口", "承德", "沧州", "廊坊", "衡水",
    ]  # fmt: skip
    assert {c.name for c in CITIES[11:]} == {"定州市", "辛集市"}
    assert XIONGAN.name == "雄安新区"
    assert XIONGAN not in CITIES
    assert len(CITY_LEVEL_AREAS) == 14
    assert len({c.code for c in CITY_LEVEL_AREAS}) == 14


@pytest.mark.parametrize("text", ["石家庄", "石家庄市", "shijiazhuang", " 石家庄市 "])
def test_find_city_by_any_name(text: str) -> None:
    city = find_city(text)
    assert city is not None
    assert city.code == "shijiazhuang"


def test_unknown_city() -> None:
    assert find_city("北京") is None


# --- names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "base", "parent", "expected"),
    [
        (K.PROVINCE_CORPS, "", None, "河北省科技志愿者总队"),
        (K.CITY_DETACHMENT, "石家庄", None, "石家庄市科技志愿者支队"),
        (K.CITY_DETACHMENT, "定州市", None, "定州市科技志愿者支队"),
        (K.CITY_DETACHMENT, "雄安新区", None, "雄安新区科技志愿者支队"),
        (K.SOCIETY_DETACHMENT, "河北省农学会", None, "河北省农学会科技志愿者支队"),
        (K.UNIVERSITY_DETACHMENT, "河北农业大学", None, "河北农业大学科技志愿者支队"),
        (K.ENTERPRISE_DETACHMENT, "石家庄高新区", None, "石家庄高新区科技志愿者支队"),
        (K.COUNTY_TEAM, "正定县", None, "正定县科技志愿者队"),
        (K.SUB_TEAM, "农学院", "河北农业大学科技志愿者支队", "河北农业大学科技志愿服务支队农学院分队"),
        (K.SUB_TEAM, "植保专委会", "河北省农学会科技志愿者支队", "河北省农学会科技志愿服务支队植保专委会分队"),
        (K.SUB_TEAM, "新安镇", "正定县科技志愿者队", "正定县科技志愿者队新安镇分队"),
        (K.SUB_TEAM, "农学院分队", None, "农学院分队"),
    ],
)
def test_suggested_names_follow_the_notice(kind: UnitKind, base: str, parent: str | None, expected: str) -> None:
    name = suggest_name(kind, base, parent_name=parent)
    assert name == expected
    assert follows_name_pattern(kind, name)


def test_names_off_the_pattern_are_flagged_not_refused() -> None:
    assert not follows_name_pattern(K.CITY_DETACHMENT, "石家庄科协志愿队")
    assert not follows_name_pattern(K.CITY_DETACHMENT, "北京市科技志愿者支队")
    assert not follows_name_pattern(K.COUNTY_TEAM, "科技志愿者队")
    assert not follows_name_pattern(K.PROVINCE_CORPS, "总队")


# --- minimums and leaders ------------------------------------------------------------------------------


def test_first_batch_minimums() -> None:
    assert FIRST_BATCH_MINIMUM == {
        K.CITY_DETACHMENT: 300,
        K.SOCIETY_DETACHMENT: 30,
        K.UNIVERSITY_DETACHMENT: 100,
        K.COUNTY_TEAM: 50,
    }
    assert member_shortfall(K.CITY_DETACHMENT, 120) == 180
    assert member_shortfall(K.COUNTY_TEAM, 60) == 0
    assert member_shortfall(K.ENTERPRISE_DETACHMENT, 0) == 0


def leaders(*roles: LeaderRole) -> list[Leader]:
    return [Leader(name=f"负责人{chr(0x4E00 + i)}", role=role) for i, role in enumerate(roles)]


R = LeaderRole


def test_city_detachment_gaps_are_counted_not_refused() -> None:
    gaps = check_leaders(K.CITY_DETACHMENT, leaders(R.DETACHMENT_CHIEF, R.DETACHMENT_DEPUTY, R.DETACHMENT_DEPUTY))
    assert gaps == [
        LeaderGap(R.DETACHMENT_DEPUTY, 3, 5, 2),
        LeaderGap(R.SECRETARY_GENERAL, 1, 1, 0),
    ]
    assert [g.message for g in gaps] == ["副支队长应为3–5名，现有2名", "秘书长应为1名，现有0名"]
    assert gaps[0].shortfall == 1
    assert gaps[0].excess == 0


def test_complete_city_detachment_has_no_gap() -> None:
    roles = [R.DETACHMENT_CHIEF, *[R.DETACHMENT_DEPUTY] * 4, R.SECRETARY_GENERAL, *[R.DEPUTY_SECRETARY_GENERAL] * 3]
    assert check_leaders(K.CITY_DETACHMENT, leaders(*roles)) == []


def test_county_team_needs_one_chief_and_two_to_three_deputies() -> None:
    assert check_leaders(K.COUNTY_TEAM, leaders(R.TEAM_CHIEF, R.TEAM_DEPUTY, R.TEAM_DEPUTY)) == []
    too_many = check_leaders(K.COUNTY_TEAM, leaders(R.TEAM_CHIEF, *[R.TEAM_DEPUTY] * 4))
    assert too_many == [LeaderGap(R.TEAM_DEPUTY, 2, 3, 4)]
    assert too_many[0].excess == 1
    assert too_many[0].message == "副队长应为2–3名，现有4名"


def test_no_leaders_at_all_is_a_gap_for_each_required_role() -> None:
    gaps = check_leaders(K.SUB_TEAM, [])
    assert gaps == [LeaderGap(R.SUB_TEAM_HEAD, 1, 1, 0)]


def test_roles_the_kind_does_not_have_are_refused() -> None:
    with pytest.raises(InvalidLeaderRoleError) as caught:
        check_leaders(K.COUNTY_TEAM, leaders(R.TEAM_CHIEF, R.SECRETARY_GENERAL, R.DETACHMENT_CHIEF))
    errors = caught.value.errors
    assert [e.field for e in errors] == ["leaders[1].role", "leaders[2].role"]
    assert errors[0].message == "县（市、区）科技志愿者队不设“秘书长”职务，可设：队长、副队长"


def test_principal_roles() -> None:
    assert principal_role(K.PROVINCE_CORPS) is R.CORPS_CHIEF
    assert principal_role(K.UNIVERSITY_DETACHMENT) is R.DETACHMENT_CHIEF
    assert principal_role(K.COUNTY_TEAM) is R.TEAM_CHIEF
    assert principal_role(K.SUB_TEAM) is R.SUB_TEAM_HEAD


def test_leader_role_labels() -> None:
    assert R.labels() == (
        "总队长",
        "副总队长",
        "支队长",
        "副支队长",
        "秘书长",
        "副秘书长",
        "队长",
        "副队长",
        "分队负责人",
    )


# --- unit life cycle -------------------------------------------------------------------------------------


def test_province_office_registrations_are_active_at_once() -> None:
    assert initial_unit_status(registered_by_province=True) is UnitStatus.ACTIVE
    assert initial_unit_status(registered_by_province=False) is UnitStatus.PENDING


def test_pending_unit_is_approved_or_rejected_with_a_reason() -> None:
    assert transition_unit(UnitStatus.PENDING, UnitStatus.ACTIVE).status is UnitStatus.ACTIVE
    rejected = transition_unit(UnitStatus.PENDING, UnitStatus.REJECTED, reason=" 名称不规范 ")
    assert (rejected.status, rejected.reason) == (UnitStatus.REJECTED, "名称不规范")


def test_rejection_needs_a_reason() -> None:
    with pytest.raises(ValidationFailedError) as caught:
        transition_unit(UnitStatus.PENDING, UnitStatus.REJECTED, reason="  ")
    assert caught.value.errors[0].message == "请填写驳回原因"


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (UnitStatus.ACTIVE, UnitStatus.REJECTED),
        (UnitStatus.ACTIVE, UnitStatus.PENDING),
        (UnitStatus.REJECTED, UnitStatus.ACTIVE),
        (UnitStatus.PENDING, UnitStatus.PENDING),
    ],
)
def test_invalid_unit_transitions_are_refused(current: UnitStatus, target: UnitStatus) -> None:
    with pytest.raises(InvalidTransitionError) as caught:
        transition_unit(current, target, reason="x")
    assert caught.value.message == f"队伍状态为“{current.label}”，不能改为“{target.label}”"


# --- volunteers ---------------------------------------------------------------------------------------------

ID = "130102198506151230"  # male


def draft(**overrides: object) -> VolunteerDraft:
    fields: dict[str, object] = {
        "name": "张三",
        "gender": "男",
        "id_number": ID,
        "mobile": "13800138000",
        "email": "zhangsan@example.com",
        "employer": "河北农业大学",
        "title": "教授",
        "title_level": "正高级",
        "education": "博士研究生",
        "professional_field": "作物栽培",
        "political_status": "中共党员",
        "skills": ["小麦栽培"],
        "service_areas": ["助力乡村振兴"],
    }
    fields.update(overrides)
    return VolunteerDraft.model_validate(fields)


def test_valid_registration_is_normalised() -> None:
    profile = validate_volunteer(
        draft(
            id_number=f" {ID[:6]} {ID[6:]} ",
            mobile="+86 138-0013-8000",
            gender="male",
            education="本科",
            political_status="团员",
            title_level="无职称",
            skills=[" 小麦栽培 ", "小麦栽培", "", "病虫害防治"],
            service_areas=["进社区进学校", "rural_revitalisation"],
        ),
        today=TODAY,
    )
    assert profile.gender is Gender.MALE
    assert profile.mobile == "13800138000"
    assert profile.education is Education.BACHELOR
    assert profile.political_status is PoliticalStatus.CYL_MEMBER
    assert profile.title_level is TitleLevel.NONE
    assert profile.skills == ["小麦栽培", "病虫害防治"]
    assert profile.service_areas == [ServiceArea.COMMUNITIES_SCHOOLS, ServiceArea.RURAL_REVITALISATION]
    assert profile.masked_id_number == "13****************"
    assert profile.birth_date == date(1985, 6, 15)


def test_id_number_never_appears_in_repr() -> None:
    profile = validate_volunteer(draft(), today=TODAY)
    assert ID not in repr(profile)
    assert ID not in repr(draft())


def test_every_field_error_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailedError) as caught:
        validate_volunteer(
            VolunteerDraft(
                name="张3",
                gender="女",
                id_number=ID,
                mobile="123",
                email="bad",
                education="学士",
                service_areas=["扶贫"],
            ),
            today=TODAY,
        )
    errors = {e.field: e.message for e in caught.value.errors}
    assert errors == {
        "name": "姓名不能包含数字或特殊符号",
        "id_number": "身份证号码显示性别为男，与填写的性别“女”不一致",
        "mobile": "手机号码应为11位中国大陆手机号，如 13800138000",
        "email": "电子邮箱格式不正确，如 name@example.com",
        "employer": "请填写工作单位",
        "title_level": "请选择职称级别",
        "education": "学历“学士”不在可选范围内，可选：" + "、".join(Education.labels()),
        "professional_field": "请填写专业领域",
        "political_status": "请选择政治面貌",
        "service_areas": "服务领域“扶贫”不在可选范围内，可选：进社区进学校、进企业进园区、助力乡村振兴",
    }
    assert caught.value.code == "validation_failed"
    assert caught.value.message.startswith("填写的信息有误：姓名不能包含数字或特殊符号；")


def test_empty_registration_lists_every_required_field() -> None:
    with pytest.raises(ValidationFailedError) as caught:
        validate_volunteer(VolunteerDraft(), today=TODAY)
    assert [e.field for e in caught.value.errors] == [
        "name", "gender", "id_number", "mobile", "employer", "title_level", "education", "professional_field",
        "political_status",
    ]  # fmt: skip
    assert caught.value.errors[2].message == "请填写身份证号码"


def test_email_is_optional() -> None:
    assert validate_volunteer(draft(email="  "), today=TODAY).email is None


def test_coded_values_have_chinese_labels() -> None:
    assert Gender.labels() == ("男", "女")
    assert Education.labels() == ("博士研究生", "硕士研究生", "大学本科", "大学专科", "高中/中专", "初中及以下")
    assert TitleLevel.labels() == ("正高级", "副高级", "中级", "初级", "无")
    assert PoliticalStatus.labels()[:3] == ("中共党员", "中共预备党员", "共青团员")
    assert "群众" in PoliticalStatus.labels()
    assert UnitKind.ENTERPRISE_DETACHMENT.label == "企业（园区）科技志愿者支队"
    assert UnitKind.lookup("企业(园区)科技志愿者支队") is UnitKind.ENTERPRISE_DETACHMENT  # half-width brackets
    assert UnitKind.lookup("county_team") is UnitKind.COUNTY_TEAM
    assert Gender.lookup("未知") is None


# --- memberships ------------------------------------------------------------------------------------------


def test_join_is_active_at_once_unless_the_unit_approves_members() -> None:
    direct = request_membership([], "u1", requires_approval=False, at=AT)
    assert (direct.status, direct.joined_at) == (MembershipStatus.ACTIVE, AT)
    asked = request_membership([], "u1", requires_approval=True, at=AT)
    assert (asked.status, asked.joined_at) == (MembershipStatus.PENDING, None)
    approved = approve_membership(asked, at=AT)
    assert (approved.status, approved.joined_at) == (MembershipStatus.ACTIVE, AT)


def test_at_most_five_units() -> None:
    memberships: list[Membership] = []
    for i in range(MAX_UNITS_PER_VOLUNTEER):
        memberships.append(request_membership(memberships, f"u{i}", requires_approval=i % 2 == 0, at=AT))
    with pytest.raises(MembershipLimitError) as caught:
        request_membership(memberships, "u9", requires_approval=False, at=AT)
    assert caught.value.message == "每位志愿者最多加入5支队伍"
    memberships[0] = leave_unit(memberships[0], at=AT)  # leaving frees a place
    assert request_membership(memberships, "u9", requires_approval=False, at=AT).is_open


def test_joining_the_same_unit_twice_is_refused_but_rejoining_after_leaving_is_not() -> None:
    first = request_membership([], "u1", requires_approval=False, at=AT)
    with pytest.raises(AlreadyMemberError):
        request_membership([first], "u1", requires_approval=False, at=AT)
    left = leave_unit(first, at=AT, reason="工作调动")
    assert (left.status, left.left_at, left.reason) == (MembershipStatus.LEFT, AT, "工作调动")
    assert request_membership([left], "u1", requires_approval=False, at=AT).status is MembershipStatus.ACTIVE


def test_membership_transitions_are_checked() -> None:
    pending = request_membership([], "u1", requires_approval=True, at=AT)
    rejected = reject_membership(pending, reason="不在本地", at=AT)
    assert rejected.status is MembershipStatus.REJECTED
    with pytest.raises(InvalidTransitionError, match="未通过"):
        leave_unit(rejected, at=AT)
    with pytest.raises(InvalidTransitionError):
        approve_membership(rejected, at=AT)
    with pytest.raises(ValidationFailedError):
        reject_membership(pending, reason=" ", at=AT)
    left = leave_unit(approve_membership(pending, at=AT), at=AT)
    with pytest.raises(InvalidTransitionError) as caught:
        leave_unit(left, at=AT)
    assert caught.value.message == "成员状态为“已退出”，不能退出"


# --- platform numbers -----------------------------------------------------------------------------------


def test_platform_number_format() -> None:
    assert format_platform_number(2020, 1) == "HB2020000001"
    assert format_platform_number(2026, 999_999) == "HB2026999999"
    assert parse_platform_number("hb2020000123") == (2020, 123)


@pytest.mark.parametrize(("year", "seq"), [(2020, 0), (2020, 1_000_000), (99, 1)])
def test_platform_number_out_of_range(year: int, seq: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        format_platform_number(year, seq)


@pytest.mark.parametrize("text", ["HB2020", "HB2020000000", "SD2020000001", "HB20200000012"])
def test_not_a_platform_number(text: str) -> None:
    with pytest.raises(ValueError, match="not a platform number"):
        parse_platform_number(text)


# --- errors -------------------------------------------------------------------------------------------------


def test_error_types_share_a_base_with_codes() -> None:
    errors: list[RegistryError] = [
        NotFoundError("队伍不存在"),
        DuplicateNameError("石家庄市科技志愿者支队"),
        DuplicatePersonError(platform_number="HB2020000001", unit_names=["石家庄市科技志愿者支队"]),
        InvalidTransitionError("x"),
        ValidationFailedError([]),
    ]
    assert [e.code for e in errors] == [
        "not_found", "duplicate_name", "duplicate_person", "invalid_transition", "validation_failed",
    ]  # fmt: skip
    assert errors[1].message == "名称“石家庄市科技志愿者支队”已被其他队伍使用"
    assert (
        errors[2].message
        == "该身份证号码已注册，不能重复注册（平台编号 HB2020000001），所在队伍：石家庄市科技志愿者支队"
    )
    assert DuplicatePersonError().message == "该身份证号码已注册，不能重复注册"
    assert all(isinstance(e, ConflictError) for e in errors[1:3])


# --- units and contacts ------------------------------------------------------------------------------------


def test_unit_registration_is_validated_and_normalised() -> None:
    profile = validate_unit(
        UnitDraft(
            name=" 石家庄市科技志愿者支队 ",
            kind="市级科技志愿者支队",
            city="石家庄",
            credit_code="91350100m000100y43",
            phone="(0311)87654321",
            founded_on="2020/4/1",
            declared_members="300",
            leaders=[LeaderDraft(name="李四", role="支队长", mobile="13900139000")],
        ),
        today=TODAY,
    )
    assert profile.name == "石家庄市科技志愿者支队"
    assert profile.kind is K.CITY_DETACHMENT
    assert profile.city == "shijiazhuang"
    assert profile.credit_code == "91350100M000100Y43"
    assert profile.phone == "0311-87654321"
    assert profile.founded_on == date(2020, 4, 1)
    assert profile.declared_members == 300
    assert profile.leaders == [Leader(name="李四", role=R.DETACHMENT_CHIEF, mobile="13900139000")]


def test_unit_errors_are_all_reported() -> None:
    with pytest.raises(ValidationFailedError) as caught:
        validate_unit(
            UnitDraft(
                kind="县（市、区）科技志愿者队",
                city="北京",
                credit_code="91350100M000100Y44",
                leaders=[LeaderDraft(name="李四", role="支队长"), LeaderDraft(name="", role="队长")],
            ),
            today=TODAY,
        )
    fields = [e.field for e in caught.value.errors]
    assert fields == ["name", "city", "credit_code", "leaders[0].role", "leaders[1].name"]
    assert caught.value.errors[3].message == "县（市、区）科技志愿者队不设“支队长”职务，可设：队长、副队长"


def test_contact_person_needs_mobile_and_email() -> None:
    contact = validate_contact(
        ContactDraft(
            name="王五", post="科普部部长", office_phone="0311-87654321", mobile="13700137000", email="a@qq.com"
        )
    )
    assert contact.office_phone == "0311-87654321"
    with pytest.raises(ValidationFailedError) as caught:
        validate_contact(ContactDraft(name="王五", post="科普部部长"))
    assert {e.field: e.message for e in caught.value.errors} == {
        "mobile": "请填写手机号码",
        "email": "请填写电子邮箱",
    }


def test_corps_name_constant() -> None:
    assert CORPS_NAME == "河北省科技志愿者总队"
