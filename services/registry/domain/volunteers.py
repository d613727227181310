"""Volunteers (科技志愿者, DOMAIN.md §3): the registration data (附件2) checked whole, and the platform number used
everywhere instead of the ID-card number."""

from __future__ import annotations

import re
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from services.registry.domain import fields as v
from services.registry.domain.codes import Education, Gender, PoliticalStatus, ServiceArea, TitleLevel
from services.registry.domain.errors import FieldError, parse_coded
from services.registry.domain.fields import NAME_MAX, Collector, checked, text_list


class VolunteerDraft(BaseModel):
    """Registration input as typed by a person or read from a spreadsheet row: raw text, checked by
    `validate_volunteer`. Coded fields take the code or the Chinese label."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str | None = None
    gender: str | None = None
    id_number: str | None = Field(default=None, repr=False)
    mobile: str | None = None
    email: str | None = None
    employer: str | None = None
    title: str | None = None
    title_level: str | None = None
    education: str | None = None
    professional_field: str | None = None
    political_status: str | None = None
    skills: list[str] = Field(default_factory=list)
    service_areas: list[str] = Field(default_factory=list)


class VolunteerProfile(BaseModel):
    """A volunteer's checked registration data. `id_number` is plain text here: the store encrypts it,
    it is never logged (hidden from repr) and never put in an event."""

    model_config = ConfigDict(frozen=True)

    name: str
    gender: Gender
    id_number: str = Field(repr=False)
    mobile: str
    email: str | None = None
    employer: str
    title: str | None = None
    title_level: TitleLevel
    education: Education
    professional_field: str
    political_status: PoliticalStatus
    skills: list[str] = Field(default_factory=list)
    service_areas: list[ServiceArea] = Field(default_factory=list)

    @property
    def masked_id_number(self) -> str:
        return v.mask_id_number(self.id_number)

    @property
    def birth_date(self) -> date:
        return v.id_birth_date(self.id_number)


def validate_volunteer(draft: VolunteerDraft, *, today: date | None = None) -> VolunteerProfile:
    """Check a registration and return the normalised profile, or raise ValidationFailedError with every
    field error (required fields, ID-card number agreeing with the gender, mobile, e-mail, coded values)."""

    out = Collector()
    name = checked(out, v.validate_person_name, draft.name, "name", "姓名")
    gender = out.coded(Gender, draft.gender, "gender", "性别")
    id_number = ""
    if not (draft.id_number or "").strip():
        out.add(FieldError("id_number", "请填写身份证号码"))
    else:
        try:
            id_number = v.validate_id_number(draft.id_number or "", gender=gender, today=today)
        except FieldError as error:
            out.add(error)
    mobile = checked(out, v.validate_mobile, draft.mobile, "mobile", "手机号码")
    email = None
    if (draft.email or "").strip():
        try:
            email = v.validate_email(draft.email or "")
        except FieldError as error:
            out.add(error)
    employer = out.required(draft.employer, "employer", "工作单位")
    title = out.optional(draft.title, "title", "职称", NAME_MAX)
    title_level = out.coded(TitleLevel, draft.title_level, "title_level", "职称级别")
    education = out.coded(Education, draft.education, "education", "学历")
    professional_field = out.required(draft.professional_field, "professional_field", "专业领域")
    political_status = out.coded(PoliticalStatus, draft.political_status, "political_status", "政治面貌")
    skills = text_list(draft.skills, "skills", "技能特长", out)
    areas: list[ServiceArea] = []
    for raw in dict.fromkeys(a.strip() for a in draft.service_areas if a and a.strip()):
        try:
            areas.append(parse_coded(ServiceArea, raw, field="service_areas", what="服务领域"))
        except FieldError as error:
            out.add(error)
    out.raise_if_any()
    # all set when no error was collected
    assert gender is not None
    assert title_level is not None
    assert education is not None
    assert political_status is not None
    return VolunteerProfile(
        name=name,
        gender=gender,
        id_number=id_number,
        mobile=mobile,
        email=email,
        employer=employer,
        title=title,
        title_level=title_level,
        education=education,
        professional_field=professional_field,
        political_status=political_status,
        skills=skills,
        service_areas=areas,
    )


PLATFORM_NUMBER_RE = re.compile(r"HB(\d{4})(\d{6})")


def format_platform_number(year: int, seq: int) -> str:
    """`HB` + four-digit year + six-digit sequence, e.g. HB2020000001."""
    if not 1000 <= year <= 9999:
        raise ValueError(f"year out of range: {year}")
    if not 1 <= seq <= 999_999:
        raise ValueError(f"sequence out of range: {seq}")
    return f"HB{year:04d}{seq:06d}"


def parse_platform_number(number: str) -> tuple[int, int]:
    """(year, sequence) of a platform number; ValueError when it is not one."""
    match = PLATFORM_NUMBER_RE.fullmatch(number.strip().upper())
    if match is None or int(match[2]) == 0:
        raise ValueError("not a platform number")
    return int(match[1]), int(match[2])
