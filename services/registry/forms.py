"""The collective-registration spreadsheets (附件1 organisations, 附件2 volunteers, 附件3 contacts).

Column layouts as data, blank templates and exports written with XlsxWriter, uploads read with python-calamine
and checked row by row with the domain's validators. Works on bytes in memory; no other I/O.
"""

from __future__ import annotations

import gc
import io
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final, Generic, Literal, TypeVar

import xlsxwriter
from pydantic import BaseModel, ConfigDict
from python_calamine import CalamineWorkbook, PasswordError

from services.registry.domain.codes import Education, Gender, PoliticalStatus, ServiceArea, TitleLevel
from services.registry.domain.contact import ContactDraft, ContactPerson, validate_contact
from services.registry.domain.errors import FieldError, ValidationFailedError
from services.registry.domain.fields import TEXT_MAX
from services.registry.domain.leaders import Leader, LeaderDraft
from services.registry.domain.units import CORPS_NAME, UnitDraft, UnitProfile, check_parent, validate_unit
from services.registry.domain.volunteers import VolunteerDraft, VolunteerProfile, validate_volunteer
from services.registry.xlsx_guard import Limits, XlsxRefused, check_xlsx
from shared import clock
from shared.programme import CITY_LEVEL_AREAS
from shared.vocabulary import LeaderRole, UnitKind

MAX_ROWS: Final = 100_000
MAX_UPLOAD_BYTES: Final = 20 * 1024 * 1024
MAX_COLUMNS: Final = 64  # the widest form has 14 columns
MAX_XML_BYTES: Final = 400 * 1024 * 1024  # decompressed; a full 20 MB upload of the widest form is about 150 MB
BLANK_ROWS_ALLOWED: Final = 1_000  # blank rows between the data rows, on top of the data rows and a title
INSTRUCTIONS_SHEET: Final = "说明"

Cell = str | float | int | bool | date | datetime | time | timedelta | None
"""A cell value as python-calamine returns it ('' for an empty cell)."""

# ----------------------------------------------------------------------------------------------------
# Results and refusals
# ----------------------------------------------------------------------------------------------------


class FormKind(StrEnum):
    ORGANISATIONS = "organisations"  # 附件1
    VOLUNTEERS = "volunteers"  # 附件2
    CONTACTS = "contacts"  # 附件3


FormErrorKind = Literal[
    "not_xlsx", "empty", "protected", "wrong_header", "too_many_rows", "too_many_columns", "too_large"
]


class FormError(Exception):
    """The whole file is refused (not a row): `kind` for machines, `message` in Chinese for people."""

    def __init__(
        self,
        kind: FormErrorKind,
        message: str,
        *,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.kind: FormErrorKind = kind
        self.message = message
        self.missing = tuple(missing)
        self.unexpected = tuple(unexpected)


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in one cell: 1-based Excel row (the header is row 1), the column's Chinese header
    (None for a whole-row problem) and a Chinese message."""

    sheet: str
    row: int
    column: str | None
    message: str


R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ParsedForm(Generic[R]):
    """The typed rows that passed every check (with their Excel row numbers) and every error found.
    Store nothing unless `ok`: a file is imported whole or not at all."""

    form: FormKind
    sheet: str
    rows: list[R]
    row_numbers: list[int]
    errors: list[RowError]
    total_rows: int  # non-blank data rows in the file

    @property
    def ok(self) -> bool:
        return not self.errors


# ----------------------------------------------------------------------------------------------------
# Row models: what a valid row turns into, ready to store
# ----------------------------------------------------------------------------------------------------


class OrganisationRow(BaseModel):
    """附件1: a unit and the name of its parent (resolved against stored units, or another row of the file).
    `profile.leaders[0]` is the principal leader (with mobile); the others come from 其他负责人."""

    model_config = ConfigDict(frozen=True)

    profile: UnitProfile
    parent_name: str | None = None


class VolunteerRow(BaseModel):
    """附件2: a volunteer and the unit (by name) they join; no unit means the uploading unit."""

    model_config = ConfigDict(frozen=True)

    profile: VolunteerProfile
    unit_name: str | None = None


class ContactRow(BaseModel):
    """附件3: a unit's work contact person; one per unit."""

    model_config = ConfigDict(frozen=True)

    unit_name: str
    contact: ContactPerson


# ----------------------------------------------------------------------------------------------------
# Column layouts
# ----------------------------------------------------------------------------------------------------

ColumnType = Literal["text", "date", "count"]


@dataclass(frozen=True, slots=True)
class Column:
    """One spreadsheet column: field key, Chinese header, whether it must be filled, the coded values offered
    as a drop-down list (empty: free input), its width and the instruction shown on the 说明 sheet."""

    key: str
    header: str
    required: bool = False
    choices: tuple[str, ...] = ()
    note: str = ""
    width: int = 16
    type: ColumnType = "text"


Cells = Mapping[str, Cell]


@dataclass(frozen=True)
class FormSpec(Generic[R]):
    """Everything about one form: layout, the example row, how a row is read and written, and which column
    must be unique within a file."""

    kind: FormKind
    code: str  # 附件1
    title: str
    sheet_name: str
    columns: tuple[Column, ...]
    example: R
    read_row: Callable[[Cells, date | None], R]  # raises ValidationFailedError with column keys as fields
    write_row: Callable[[R], dict[str, Cell]]
    unique_key: str  # the column whose value must not repeat within a file
    unique_value: Callable[[Cells], str | None]  # read from the cells: rows with other errors count too
    duplicate_message: str  # "{rows}" is replaced by the other rows' numbers
    check_rows: Callable[[Sequence[tuple[int, R]]], list[tuple[int, str, str]]] | None = None
    notes: tuple[str, ...] = ()
    _by_key: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {c.key: c for c in self.columns})

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(c.header for c in self.columns)

    def header_of(self, key: str) -> str | None:
        column = self._by_key.get(key)
        return column.header if column else None


LIST_SEPARATORS: Final = re.compile(r"[、,，;；\n]+")


def _split(value: Cell) -> list[str]:
    text = _text(value)
    return [item.strip() for item in LIST_SEPARATORS.split(text) if item.strip()] if text else []


def _join(items: Iterable[str]) -> str | None:
    return "、".join(items) or None


def _text(value: Cell) -> str | None:
    """A cell as text. Numbers typed into text columns come back from Excel as floats: 13800138000.0 is
    '13800138000'."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _date_cell(value: Cell) -> date | str | None:
    """A date column: date cells as dates, Excel serial numbers (a date typed into a number cell) as dates."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, float | int) and not isinstance(value, bool) and 1 <= value < 2_958_466:
        return _EXCEL_EPOCH + timedelta(days=int(value))
    return _text(value)


def _count_cell(value: Cell) -> int | str | None:
    """A count column: whole numbers as int, anything else as text (refused by the validator)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _text(value)


_EXCEL_EPOCH: Final = date(1899, 12, 30)


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

# ----------------------------------------------------------------------------------------------------
# Writing: templates and exports share one layout
# ----------------------------------------------------------------------------------------------------

_DROPDOWN_LAST_ROW: Final = MAX_ROWS  # 0-based: data validation covers Excel rows 2 … MAX_ROWS + 1


def build_template(form: FormSpec[R]) -> bytes:
    """A blank form: Chinese headers (bold, first row frozen), drop-down lists on coded columns, one valid
    example row and an instructions sheet (说明)."""
    return _write_workbook(form, [form.example], template=True)


def export_form(form: FormSpec[R], rows: Iterable[R]) -> bytes:
    """The rows in the form's layout; `parse_upload` reads them back unchanged."""
    return _write_workbook(form, rows, template=False)


def _write_workbook(form: FormSpec[R], rows: Iterable[R], *, template: bool) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    )
    header = workbook.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True})
    required = workbook.add_format(
        {"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True, "font_color": "#C00000"}
    )
    text = workbook.add_format({"num_format": "@"})
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    count = workbook.add_format({"num_format": "0"})
    sheet = workbook.add_worksheet(form.sheet_name)
    sheet.freeze_panes(1, 0)
    for index, column in enumerate(form.columns):
        column_format = {"date": day, "count": count}.get(column.type, text)
        sheet.set_column(index, index, column.width, column_format)
        sheet.write_string(0, index, column.header, required if column.required else header)
        if column.choices:
            sheet.data_validation(
                1,
                index,
                _DROPDOWN_LAST_ROW,
                index,
                {
                    "validate": "list",
                    "source": list(column.choices),
                    "error_title": "输入值无效",
                    "error_message": f"请从下拉列表中选择{column.header}",
                },
            )
        if column.note:
            sheet.write_comment(0, index, column.note)
    row_index = 0
    for row_index, row in enumerate(rows, start=1):
        cells = form.write_row(row)
        for index, column in enumerate(form.columns):
            value = cells.get(column.key)
            if value is None or value == "":
                continue
            if isinstance(value, str):
                sheet.write_string(row_index, index, value, text)
            elif isinstance(value, date):
                sheet.write_datetime(row_index, index, value, day)
            elif isinstance(value, int | float):
                sheet.write_number(row_index, index, value, count)
            else:
                sheet.write_string(row_index, index, str(value), text)
    if row_index:
        sheet.autofilter(0, 0, row_index, len(form.columns) - 1)
    _write_instructions(workbook, form, template=template)
    workbook.close()
    return buffer.getvalue()


def _write_instructions(workbook: Any, form: FormSpec[R], *, template: bool) -> None:
    sheet = workbook.add_worksheet(INSTRUCTIONS_SHEET)
    title = workbook.add_format({"bold": True, "font_size": 14})
    bold = workbook.add_format({"bold": True, "border": 1, "bg_color": "#D9E1F2"})
    wrap = workbook.add_format({"text_wrap": True, "valign": "top", "border": 1})
    sheet.set_column(0, 0, 20)
    sheet.set_column(1, 1, 10)
    sheet.set_column(2, 2, 50)
    sheet.set_column(3, 3, 50)
    sheet.write_string(0, 0, f"{form.code} {form.title} 填写说明", title)
    lines = [
        f"1. 在“{form.sheet_name}”工作表中填写，第1行为表头，请勿修改、删除或调换；从第2行起每行一条记录。",
        "2. 红色表头为必填项；带下拉列表的列请从列表中选择。",
        f"3. 单个文件不超过{MAX_ROWS}行、20MB；请勿加密或设置打开密码。",
        "4. 上传后逐行校验，所有错误会一次列出（工作表、行号、列名、原因）；有任何错误时整个文件都不导入。",
    ]
    if template:
        lines.append("5. 第2行为虚构的填写示例，提交前请删除或覆盖。")
    lines.extend(f"· {note}" for note in form.notes)
    for offset, line in enumerate(lines, start=2):
        sheet.write_string(offset, 0, line)
    start = len(lines) + 3
    for index, caption in enumerate(("列名", "是否必填", "填写要求", "可选值")):
        sheet.write_string(start, index, caption, bold)
    for offset, column in enumerate(form.columns, start=start + 1):
        sheet.write_string(offset, 0, column.header, wrap)
        sheet.write_string(offset, 1, "必填" if column.required else "选填", wrap)
        sheet.write_string(offset, 2, column.note, wrap)
        sheet.write_string(offset, 3, "、".join(column.choices), wrap)


# ----------------------------------------------------------------------------------------------------
# Reading uploads
# ----------------------------------------------------------------------------------------------------

_OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC: Final = b"PK\x03\x04"
_ENCRYPTION_STREAM: Final = "EncryptionInfo".encode("utf-16-le")
_HEADER_SEARCH_ROWS: Final = 10


def _reader_failed(exc: BaseException) -> bool:
    """Whether the reader failed on the file: any error, and also a panic in its Rust code (pyo3's PanicException
    derives from BaseException), so a file the guard let through still cannot take the worker down."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _header_key(value: Cell) -> str:
    text = unicodedata.normalize("NFKC", _text(value) or "")
    text = "".join(text.split()).replace("*", "")
    return text.removesuffix("(必填)").removesuffix("(选填)")


def _open_sheet(
    data: bytes, form: FormSpec[R], max_bytes: int, max_rows: int = MAX_ROWS
) -> tuple[str, Sequence[Sequence[Cell]]]:
    if len(data) > max_bytes:
        raise FormError("too_large", f"文件超过{max_bytes // (1024 * 1024)}MB，请拆分后分批上传")
    if not data:
        raise FormError("empty", "上传的文件是空的")
    if data.startswith(_OLE2_MAGIC):
        if _ENCRYPTION_STREAM in data:
            raise FormError("protected", "文件设置了打开密码（已加密），请取消密码后重新上传")
        raise FormError("not_xlsx", "这是旧版 Excel（.xls）或其他 Office 文件，请另存为 .xlsx 格式后上传")
    if not data.startswith(_ZIP_MAGIC):
        raise FormError("not_xlsx", "文件不是 Excel（.xlsx）格式，请使用下载的模板填写")
    limits = Limits(max_rows + _HEADER_SEARCH_ROWS + BLANK_ROWS_ALLOWED, MAX_COLUMNS, MAX_XML_BYTES)
    try:
        check_xlsx(data, limits)  # before the reader: it allocates whatever rectangle the sheet claims
    except XlsxRefused as refused:
        raise FormError(refused.kind, refused.message) from None
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except PasswordError:
        raise FormError("protected", "文件设置了密码保护，请取消密码后重新上传") from None
    except BaseException as exc:
        if not _reader_failed(exc):
            raise
        raise FormError("not_xlsx", "文件不是有效的 Excel（.xlsx）文件，请使用下载的模板填写") from None
    names = list(workbook.sheet_names)
    name = form.sheet_name if form.sheet_name in names else next((n for n in names if n != INSTRUCTIONS_SHEET), None)
    if name is None:
        raise FormError("empty", "文件中没有工作表")
    try:
        rows: Sequence[Sequence[Cell]] = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except PasswordError:
        raise FormError("protected", "工作表设置了密码保护，请取消密码后重新上传") from None
    except BaseException as exc:
        if not _reader_failed(exc):
            raise
        raise FormError("not_xlsx", f"无法读取工作表“{name}”，请使用下载的模板填写") from None
    if not any(_filled(row) for row in rows):
        raise FormError("empty", f"工作表“{name}”中没有内容")
    return name, rows


def _filled(row: Sequence[Cell]) -> bool:
    return any(not (v is None or (isinstance(v, str) and not v.strip())) for v in row)


def _read_header(form: FormSpec[R], sheet: str, rows: Sequence[Sequence[Cell]]) -> tuple[int, list[Column | None]]:
    """The header row (row 1 normally; a title row above it is tolerated) and the column at each position."""
    wanted = {_header_key(c.header): c for c in form.columns}
    best, best_hits = 0, 0
    for index, row in enumerate(rows[:_HEADER_SEARCH_ROWS]):
        hits = sum(1 for value in row if _header_key(value) in wanted)
        if hits > best_hits:
            best, best_hits = index, hits
    positions: list[Column | None] = []
    seen: set[str] = set()
    unexpected: list[str] = []
    duplicated: list[str] = []
    for value in rows[best]:
        key = _header_key(value)
        column = wanted.get(key)
        if column is None:
            if key:
                unexpected.append(_text(value) or key)
        elif column.key in seen:
            duplicated.append(column.header)
            column = None
        else:
            seen.add(column.key)
        positions.append(column)
    missing = [c.header for c in form.columns if c.key not in seen]
    if missing or unexpected or duplicated:
        parts = []
        if missing:
            parts.append(f"缺少列：{'、'.join(missing)}")
        if unexpected:
            parts.append(f"无法识别的列：{'、'.join(unexpected)}")
        if duplicated:
            parts.append(f"重复的列：{'、'.join(duplicated)}")
        raise FormError(
            "wrong_header",
            f"“{sheet}”第{best + 1}行的表头与{form.code}《{form.title}》不符（{'；'.join(parts)}），请使用下载的模板",
            missing=missing,
            unexpected=unexpected,
        )
    return best, positions


def parse_upload(
    form: FormSpec[R],
    data: bytes,
    *,
    max_rows: int = MAX_ROWS,
    max_bytes: int = MAX_UPLOAD_BYTES,
    today: date | None = None,
) -> ParsedForm[R]:
    """Read an uploaded form and check every row; return the valid rows and every error found.

    Raises FormError when the file as a whole is refused (not xlsx, encrypted, empty, wrong header, too many
    rows or bytes). Blank rows are skipped, text is trimmed, numbers typed into text columns are read back as
    text, and duplicates inside the file are errors on every row involved.
    """
    today = today or clock.today()
    with _gc_paused():
        return _parse(form, data, max_rows=max_rows, max_bytes=max_bytes, today=today)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Bulk parsing allocates ~1M objects and creates no reference cycles: the cyclic collector's repeated
    scans of them would cost a fifth of the time. Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse(form: FormSpec[R], data: bytes, *, max_rows: int, max_bytes: int, today: date) -> ParsedForm[R]:
    sheet, rows = _open_sheet(data, form, max_bytes, max_rows)
    header_index, positions = _read_header(form, sheet, rows)
    data_rows = [(index + 1, row) for index, row in enumerate(rows) if index > header_index and _filled(row)]
    if not data_rows:
        raise FormError("empty", f"工作表“{sheet}”中只有表头，没有数据行")
    if len(data_rows) > max_rows:
        raise FormError("too_many_rows", f"数据行数为{len(data_rows)}行，超过上限{max_rows}行，请拆分为多个文件上传")
    columns = [(i, c.key) for i, c in enumerate(positions) if c is not None]
    errors: list[RowError] = []
    good: list[tuple[int, R]] = []
    keys: defaultdict[str, list[int]] = defaultdict(list)
    for number, row in data_rows:
        cells = {key: row[i] for i, key in columns}  # calamine rows are as wide as the sheet
        unique = form.unique_value(cells)
        if unique:
            keys[unique].append(number)
        try:
            good.append((number, form.read_row(cells, today)))
        except ValidationFailedError as failed:
            errors.extend(RowError(sheet, number, form.header_of(e.field), e.message) for e in failed.errors)
    problems = _duplicates(form, keys)
    if form.check_rows is not None:
        problems.extend(form.check_rows(good))
    if problems:
        errors.extend(RowError(sheet, number, form.header_of(key), message) for number, key, message in problems)
        failed_rows = {number for number, _, _ in problems}
        good = [(number, row) for number, row in good if number not in failed_rows]
    order = {c.header: i for i, c in enumerate(form.columns)}
    errors.sort(key=lambda e: (e.row, order.get(e.column or "", -1)))
    return ParsedForm(
        form=form.kind,
        sheet=sheet,
        rows=[row for _, row in good],
        row_numbers=[number for number, _ in good],
        errors=errors,
        total_rows=len(data_rows),
    )


def _duplicates(form: FormSpec[R], rows_by_key: Mapping[str, list[int]]) -> list[tuple[int, str, str]]:
    problems: list[tuple[int, str, str]] = []
    for numbers in rows_by_key.values():
        if len(numbers) > 1:
            for number in numbers:
                others = "、".join(str(n) for n in numbers if n != number)
                problems.append((number, form.unique_key, form.duplicate_message.format(rows=others)))
    return problems


def find_form(kind: FormKind | str) -> FormSpec[Any]:
    """The form spec for a kind (`organisations`, `volunteers`, `contacts`)."""
    return FORMS[FormKind(kind)]
