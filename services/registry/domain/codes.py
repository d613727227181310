"""The registry's own coded values (a code stored, a Chinese label shown and accepted): a unit's and a
membership's status, and a volunteer's coded attributes (附件2). The programme's vocabulary is shared.vocabulary."""

from __future__ import annotations

from shared.vocabulary import CodedEnum, describe


class UnitStatus(CodedEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"


describe(UnitStatus, {UnitStatus.PENDING: "待审核", UnitStatus.ACTIVE: "已通过", UnitStatus.REJECTED: "已驳回"})


class Gender(CodedEnum):
    MALE = "male"
    FEMALE = "female"


describe(Gender, {Gender.MALE: "男", Gender.FEMALE: "女"}, {"男性": Gender.MALE, "女性": Gender.FEMALE})


class Education(CodedEnum):
    DOCTORATE = "doctorate"
    MASTER = "master"
    BACHELOR = "bachelor"
    JUNIOR_COLLEGE = "junior_college"
    HIGH_SCHOOL = "high_school"
    JUNIOR_HIGH_OR_BELOW = "junior_high_or_below"


describe(
    Education,
    {
        Education.DOCTORATE: "博士研究生",
        Education.MASTER: "硕士研究生",
        Education.BACHELOR: "大学本科",
        Education.JUNIOR_COLLEGE: "大学专科",
        Education.HIGH_SCHOOL: "高中/中专",
        Education.JUNIOR_HIGH_OR_BELOW: "初中及以下",
    },
    {
        "博士": Education.DOCTORATE,
        "硕士": Education.MASTER,
        "本科": Education.BACHELOR,
        "大专": Education.JUNIOR_COLLEGE,
        "专科": Education.JUNIOR_COLLEGE,
        "高中": Education.HIGH_SCHOOL,
        "中专": Education.HIGH_SCHOOL,
        "中专/高中": Education.HIGH_SCHOOL,
        "高中（中专）": Education.HIGH_SCHOOL,
        "初中": Education.JUNIOR_HIGH_OR_BELOW,
        "小学": Education.JUNIOR_HIGH_OR_BELOW,
    },
)


class PoliticalStatus(CodedEnum):
    CPC_MEMBER = "cpc_member"
    CPC_PROBATIONARY = "cpc_probationary"
    CYL_MEMBER = "cyl_member"
    DEMOCRATIC_PARTY = "democratic_party"
    NON_PARTISAN = "non_partisan"
    MASSES = "masses"


describe(
    PoliticalStatus,
    {
        PoliticalStatus.CPC_MEMBER: "中共党员",
        PoliticalStatus.CPC_PROBATIONARY: "中共预备党员",
        PoliticalStatus.CYL_MEMBER: "共青团员",
        PoliticalStatus.DEMOCRATIC_PARTY: "民主党派",
        PoliticalStatus.NON_PARTISAN: "无党派人士",
        PoliticalStatus.MASSES: "群众",
    },
    {
        "党员": PoliticalStatus.CPC_MEMBER,
        "中国共产党党员": PoliticalStatus.CPC_MEMBER,
        "预备党员": PoliticalStatus.CPC_PROBATIONARY,
        "团员": PoliticalStatus.CYL_MEMBER,
        "民主党派成员": PoliticalStatus.DEMOCRATIC_PARTY,
        "无党派": PoliticalStatus.NON_PARTISAN,
    },
)


class TitleLevel(CodedEnum):
    """职称级别: the level of the professional title; the title itself (e.g. 高级农艺师) is free text."""

    SENIOR = "senior"
    ASSOCIATE_SENIOR = "associate_senior"
    INTERMEDIATE = "intermediate"
    JUNIOR = "junior"
    NONE = "none"


describe(
    TitleLevel,
    {
        TitleLevel.SENIOR: "正高级",
        TitleLevel.ASSOCIATE_SENIOR: "副高级",
        TitleLevel.INTERMEDIATE: "中级",
        TitleLevel.JUNIOR: "初级",
        TitleLevel.NONE: "无",
    },
    {"正高": TitleLevel.SENIOR, "副高": TitleLevel.ASSOCIATE_SENIOR, "无职称": TitleLevel.NONE},
)


class ServiceArea(CodedEnum):
    """The notice's three lines of work a volunteer offers to serve in."""

    COMMUNITIES_SCHOOLS = "communities_schools"
    ENTERPRISES_PARKS = "enterprises_parks"
    RURAL_REVITALISATION = "rural_revitalisation"


describe(
    ServiceArea,
    {
        ServiceArea.COMMUNITIES_SCHOOLS: "进社区进学校",
        ServiceArea.ENTERPRISES_PARKS: "进企业进园区",
        ServiceArea.RURAL_REVITALISATION: "助力乡村振兴",
    },
)


class MembershipStatus(CodedEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    LEFT = "left"


describe(
    MembershipStatus,
    {
        MembershipStatus.PENDING: "待审核",
        MembershipStatus.ACTIVE: "在队",
        MembershipStatus.REJECTED: "未通过",
        MembershipStatus.LEFT: "已退出",
    },
)
