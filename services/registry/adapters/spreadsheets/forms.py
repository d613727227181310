"""The three collective-registration forms (附件1 organisations, 附件2 volunteers, 附件3 contacts) as data: their
columns, example rows, and how a row is read (checked with the domain's validators) and written."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final

from services.registry.adapters.spreadsheets.layout import (
    Cell,
    Cells,
    Column,
    FormSpec,
    _count_cell,
    _date_cell,
    _join,
    _split,
    _text,
)
from services.registry.domain.codes import Education, Gender, PoliticalStatus, ServiceArea, TitleLevel
from services.registry.domain.contact import ContactDraft, ContactPerson, validate_contact
from services.registry.domain.errors import FieldError, ValidationFailedError
from services.registry.domain.fields import TEXT_MAX
from services.registry.domain.imports import ContactRow, FormKind, OrganisationRow, VolunteerRow
from services.registry.domain.leaders import Leader, LeaderDraft
from services.registry.domain.units import CORPS_NAME, UnitDraft, UnitProfile, check_parent, validate_unit
from services.registry.domain.volunteers import VolunteerDraft, VolunteerProfile, validate_volunteer
from shared.programme import CITY_LEVEL_AREAS
from shared.vocabulary import LeaderRole, UnitKind

# --- 附件1 organisations --------------------------------------------------------------------------------

_OTHER_LEADER = re.compile(r"(.+?)\s*[（(]\s*(.+?)\s*[)）]")

ORGANISATION_COLUMNS: Final = (
    Column("name", "组织名称", True, note="按命名规范填写，如“石家庄市科技志愿者支队”", width=30),
    Column("kind", "组织类型", True, UnitKind.labels(), width=24),
    Column("parent_name", "上级组织名称", note=f"总队不填；其他组织必填，如“{CORPS_NAME}”", width=30),
    Column(
        "city", "所属地区", choices=tuple(c.name for c in CITY_LEVEL_AREAS), note="所在的设区市、定州、辛集或雄安新区"
    ),
    Column("leader_name", "负责人姓名", True),
    Column("leader_role", "负责人职务", True, LeaderRole.labels(), note="总队长、支队长、队长或分队负责人等"),
    Column("leader_mobile", "负责人手机"),
    Column(
        "other_leaders",
        "其他负责人",
        note="按“姓名（职务）”填写，多人用“、”分隔，如“王五（副支队长）、赵六（秘书长）”",
        width=36,
    ),
    Column("phone", "联系电话", True, note="区号-号码（如 0311-87654321）或手机号"),
    Column("credit_code", "统一社会信用代码", note="18位；没有可不填", width=22),
    Column("address", "通讯地址", width=30),
    Column("founded_on", "成立日期", note="如 2020-04-01", type="date", width=14),
    Column("declared_members", "成员人数", note="整数", type="count", width=12),
)


def _organisation_read(cells: Cells, today: date | None) -> OrganisationRow:
    errors: list[FieldError] = []
    kind_text = _text(cells.get("kind"))
    parent_name = _text(cells.get("parent_name"))
    corps = kind_text is not None and UnitKind.lookup(kind_text) is UnitKind.PROVINCE_CORPS
    if corps and parent_name:
        errors.append(FieldError("parent_name", f"{CORPS_NAME}是最高一级，不填上级组织"))
    elif kind_text and not corps and not parent_name:
        errors.append(FieldError("parent_name", "请填写上级组织名称"))
    if parent_name and len(parent_name) > TEXT_MAX:
        errors.append(FieldError("parent_name", f"上级组织名称不能超过{TEXT_MAX}个字"))
    if not _text(cells.get("phone")):
        errors.append(FieldError("phone", "请填写联系电话"))
    leaders = [
        LeaderDraft(
            name=_text(cells.get("leader_name")) or "",
            role=_text(cells.get("leader_role")) or "",
            mobile=_text(cells.get("leader_mobile")),
        )
    ]
    for item in _split(cells.get("other_leaders")):
        match = _OTHER_LEADER.fullmatch(item)
        if match is None:
            errors.append(FieldError("other_leaders", f"“{item[:20]}”应按“姓名（职务）”填写"))
        else:
            leaders.append(LeaderDraft(name=match[1], role=match[2]))
    draft = UnitDraft(
        name=_text(cells.get("name")),
        kind=kind_text,
        city=_text(cells.get("city")),
        credit_code=_text(cells.get("credit_code")),
        phone=_text(cells.get("phone")),
        address=_text(cells.get("address")),
        founded_on=_date_cell(cells.get("founded_on")),
        declared_members=_count_cell(cells.get("declared_members")),
        leaders=leaders,
    )
    profile = None
    try:
        profile = validate_unit(draft, today=today)
    except ValidationFailedError as failed:
        errors.extend(_organisation_field(e) for e in failed.errors)
    if errors or profile is None:
        raise ValidationFailedError(errors)
    return OrganisationRow(profile=profile, parent_name=parent_name)


_LEADER_FIELD = re.compile(r"leaders\[(\d+)\]\.(\w+)")


def _organisation_field(error: FieldError) -> FieldError:
    """Leader fields of the domain (leaders[0].role) to the form's columns."""
    match = _LEADER_FIELD.fullmatch(error.field)
    if match is None:
        return error
    if match[1] != "0":
        return FieldError("other_leaders", error.message)
    return FieldError(f"leader_{match[2]}", error.message)


def _organisation_write(row: OrganisationRow) -> dict[str, Cell]:
    unit = row.profile
    principal = unit.leaders[0] if unit.leaders else None
    city = next((c.name for c in CITY_LEVEL_AREAS if c.code == unit.city), None)
    return {
        "name": unit.name,
        "kind": unit.kind.label,
        "parent_name": row.parent_name,
        "city": city,
        "leader_name": principal.name if principal else None,
        "leader_role": principal.role.label if principal else None,
        "leader_mobile": principal.mobile if principal else None,
        "other_leaders": _join(f"{x.name}（{x.role.label}）" for x in unit.leaders[1:]),
        "phone": unit.phone,
        "credit_code": unit.credit_code,
        "address": unit.address,
        "founded_on": unit.founded_on,
        "declared_members": unit.declared_members,
    }


def _organisation_checks(rows: Sequence[tuple[int, OrganisationRow]]) -> list[tuple[int, str, str]]:
    """Checks across rows: a parent named in the same file must be of an allowed kind; one corps only."""
    problems: list[tuple[int, str, str]] = []
    kinds = {row.profile.name: row.profile.kind for _, row in rows}
    corps_rows = [number for number, row in rows if row.profile.kind is UnitKind.PROVINCE_CORPS]
    if len(corps_rows) > 1:
        for number in corps_rows:
            others = "、".join(str(n) for n in corps_rows if n != number)
            problems.append((number, "kind", f"全省只设一个总队，与第{others}行重复"))
    for number, row in rows:
        if row.parent_name is None:
            continue
        if row.parent_name == row.profile.name:
            problems.append((number, "parent_name", "上级组织不能是本组织"))
            continue
        parent_kind = kinds.get(row.parent_name)
        if parent_kind is not None:
            try:
                check_parent(row.profile.kind, parent_kind)
            except ValidationFailedError as failed:
                problems.extend((number, "parent_name", e.message) for e in failed.errors)
    return problems


ORGANISATIONS: Final = FormSpec[OrganisationRow](
    kind=FormKind.ORGANISATIONS,
    code="附件1",
    title="河北省科技志愿服务组织集体注册信息表",
    sheet_name="组织集体注册信息表",
    columns=ORGANISATION_COLUMNS,
    example=OrganisationRow(
        profile=UnitProfile(
            name="石家庄市科技志愿者支队",
            kind=UnitKind.CITY_DETACHMENT,
            city="shijiazhuang",
            credit_code="51130100MJ0000125T",
            phone="0311-87654321",
            address="石家庄市富强大街92号",
            founded_on=date(2020, 4, 1),
            declared_members=300,
            leaders=[
                Leader(name="李四", role=LeaderRole.DETACHMENT_CHIEF, mobile="13900139000"),
                Leader(name="王五", role=LeaderRole.DETACHMENT_DEPUTY),
                Leader(name="赵六", role=LeaderRole.SECRETARY_GENERAL),
            ],
        ),
        parent_name=CORPS_NAME,
    ),
    read_row=_organisation_read,
    write_row=_organisation_write,
    unique_key="name",
    unique_value=lambda cells: _text(cells.get("name")),
    duplicate_message="组织名称与第{rows}行重复",
    check_rows=_organisation_checks,
    notes=(
        "每行填写一个科技志愿服务组织（总队、支队、队或分队）。",
        "上级组织可以是已在平台注册的组织，也可以是本表中的另一行。",
        "负责人职务须与组织类型相符：总队设总队长、副总队长；支队设支队长、副支队长（市级支队另设秘书长、"
        "副秘书长）；县（市、区）队设队长、副队长；分队设分队负责人。",
    ),
)

# --- 附件2 volunteers -----------------------------------------------------------------------------------

VOLUNTEER_COLUMNS: Final = (
    Column("name", "姓名", True),
    Column("gender", "性别", True, Gender.labels(), width=8),
    Column("id_number", "身份证号码", True, note="18位，请设为文本格式，末位X大写", width=22),
    Column("mobile", "手机号码", True, width=14),
    Column("email", "电子邮箱", width=24),
    Column("employer", "工作单位", True, width=28),
    Column("title", "职称", note="如 高级农艺师、副教授；没有可不填"),
    Column("title_level", "职称级别", True, TitleLevel.labels(), width=10),
    Column("education", "学历", True, Education.labels(), width=12),
    Column("professional_field", "专业领域", True, note="如 作物栽培、临床医学、机械工程", width=20),
    Column("political_status", "政治面貌", True, PoliticalStatus.labels(), width=14),
    Column("unit_name", "所属队伍", note="加入的科技志愿服务组织全称；不填则为上传单位", width=30),
    Column("skills", "技能特长", note="多项用“、”分隔", width=28),
    Column("service_areas", "服务领域", note=f"可填：{'、'.join(ServiceArea.labels())}，多项用“、”分隔", width=30),
)

_ID_AS_NUMBER = "身份证号码被 Excel 存成了数字，末几位可能已丢失；请将该列设为文本格式后重新填写"


def _volunteer_read(cells: Cells, today: date | None) -> VolunteerRow:
    errors: list[FieldError] = []
    unit_name = _text(cells.get("unit_name"))
    if unit_name and len(unit_name) > TEXT_MAX:
        errors.append(FieldError("unit_name", f"所属队伍不能超过{TEXT_MAX}个字"))
    raw_id = cells.get("id_number")
    draft = VolunteerDraft(
        name=_text(cells.get("name")),
        gender=_text(cells.get("gender")),
        id_number=_text(raw_id),
        mobile=_text(cells.get("mobile")),
        email=_text(cells.get("email")),
        employer=_text(cells.get("employer")),
        title=_text(cells.get("title")),
        title_level=_text(cells.get("title_level")),
        education=_text(cells.get("education")),
        professional_field=_text(cells.get("professional_field")),
        political_status=_text(cells.get("political_status")),
        skills=_split(cells.get("skills")),
        service_areas=_split(cells.get("service_areas")),
    )
    # Excel keeps 15 significant digits: an 18-digit ID typed into a number cell has lost its last digits and
    # may still pass the check by chance, so it is never trusted.
    numeric_id = isinstance(raw_id, float | int) and not isinstance(raw_id, bool) and abs(raw_id) >= 1e15
    if numeric_id:
        errors.append(FieldError("id_number", _ID_AS_NUMBER))
    try:
        profile = validate_volunteer(draft, today=today)
    except ValidationFailedError as failed:
        errors.extend(e for e in failed.errors if not (numeric_id and e.field == "id_number"))
        raise ValidationFailedError(errors) from None
    if errors:
        raise ValidationFailedError(errors)
    return VolunteerRow(profile=profile, unit_name=unit_name)


def _id_key(value: Cell) -> str | None:
    text = _text(value)
    return "".join(unicodedata.normalize("NFKC", text).split()).upper() if text else None


def _volunteer_write(row: VolunteerRow) -> dict[str, Cell]:
    p = row.profile
    return {
        "name": p.name,
        "gender": p.gender.label,
        "id_number": p.id_number,
        "mobile": p.mobile,
        "email": p.email,
        "employer": p.employer,
        "title": p.title,
        "title_level": p.title_level.label,
        "education": p.education.label,
        "professional_field": p.professional_field,
        "political_status": p.political_status.label,
        "unit_name": row.unit_name,
        "skills": _join(p.skills),
        "service_areas": _join(a.label for a in p.service_areas),
    }


VOLUNTEERS: Final = FormSpec[VolunteerRow](
    kind=FormKind.VOLUNTEERS,
    code="附件2",
    title="河北省科技志愿者集体注册信息表",
    sheet_name="科技志愿者集体注册信息表",
    columns=VOLUNTEER_COLUMNS,
    example=VolunteerRow(
        profile=VolunteerProfile(
            name="张三",
            gender=Gender.MALE,
            id_number="130102198506151230",  # fictitious, but its check digit and birth date are valid
            mobile="13800138000",
            email="zhangsan@example.com",
            employer="河北农业大学",
            title="教授",
            title_level=TitleLevel.SENIOR,
            education=Education.DOCTORATE,
            professional_field="作物栽培",
            political_status=PoliticalStatus.CPC_MEMBER,
            skills=["小麦高产栽培", "病虫害防治"],
            service_areas=[ServiceArea.RURAL_REVITALISATION],
        ),
        unit_name="河北农业大学科技志愿者支队",
    ),
    read_row=_volunteer_read,
    write_row=_volunteer_write,
    unique_key="id_number",
    unique_value=lambda cells: _id_key(cells.get("id_number")),
    duplicate_message="身份证号码与第{rows}行重复，同一人只能注册一次",
    notes=(
        "每行填写一位科技志愿者，信息须真实、准确、完整。",
        "身份证号码会校验位数、出生日期、校验位，并与性别核对；同一身份证号码只能注册一次。",
        "身份证号码等较长数字请设置为文本格式，以免 Excel 改写末几位。",
    ),
)

# --- 附件3 contacts -------------------------------------------------------------------------------------

CONTACT_COLUMNS: Final = (
    Column("unit_name", "单位名称", True, note="科技志愿服务组织全称", width=30),
    Column("name", "姓名", True),
    Column("post", "职务", True, width=18),
    Column("office_phone", "办公电话", note="区号-号码，如 0311-87654321", width=16),
    Column("mobile", "手机号码", True, width=14),
    Column("email", "电子邮箱", True, width=24),
)


def _contact_read(cells: Cells, today: date | None) -> ContactRow:
    errors: list[FieldError] = []
    unit_name = _text(cells.get("unit_name")) or ""
    if not unit_name:
        errors.append(FieldError("unit_name", "请填写单位名称"))
    elif len(unit_name) > TEXT_MAX:
        errors.append(FieldError("unit_name", f"单位名称不能超过{TEXT_MAX}个字"))
    draft = ContactDraft(
        name=_text(cells.get("name")),
        post=_text(cells.get("post")),
        office_phone=_text(cells.get("office_phone")),
        mobile=_text(cells.get("mobile")),
        email=_text(cells.get("email")),
    )
    try:
        contact = validate_contact(draft)
    except ValidationFailedError as failed:
        raise ValidationFailedError([*errors, *failed.errors]) from None
    if errors:
        raise ValidationFailedError(errors)
    return ContactRow(unit_name=unit_name, contact=contact)


def _contact_write(row: ContactRow) -> dict[str, Cell]:
    c = row.contact
    return {
        "unit_name": row.unit_name,
        "name": c.name,
        "post": c.post,
        "office_phone": c.office_phone,
        "mobile": c.mobile,
        "email": c.email,
    }


CONTACTS: Final = FormSpec[ContactRow](
    kind=FormKind.CONTACTS,
    code="附件3",
    title="河北省科技志愿服务工作联系人情况表",
    sheet_name="工作联系人情况表",
    columns=CONTACT_COLUMNS,
    example=ContactRow(
        unit_name="石家庄市科技志愿者支队",
        contact=ContactPerson(
            name="王五",
            post="科普部部长",
            office_phone="0311-87654321",
            mobile="13700137000",
            email="wangwu@example.com",
        ),
    ),
    read_row=_contact_read,
    write_row=_contact_write,
    unique_key="unit_name",
    unique_value=lambda cells: _text(cells.get("unit_name")),
    duplicate_message="该单位的联系人与第{rows}行重复，每个单位填写一位联系人",
    notes=("每个科技志愿服务组织确定一位工作联系人，用于接收通知和提醒，请于4月20日前报送。",),
)

FORMS: Final[Mapping[FormKind, FormSpec[Any]]] = {
    FormKind.ORGANISATIONS: ORGANISATIONS,
    FormKind.VOLUNTEERS: VOLUNTEERS,
    FormKind.CONTACTS: CONTACTS,
}


def find_form(kind: FormKind | str) -> FormSpec[Any]:
    """The form spec for a kind (`organisations`, `volunteers`, `contacts`)."""
    return FORMS[FormKind(kind)]
