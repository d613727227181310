"""A unit's work contact (工作联系人, 附件3)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from services.registry.domain import fields as v
from services.registry.domain.fields import NAME_MAX, Collector, checked, optional_checked


class ContactDraft(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: str | None = None
    post: str | None = None
    office_phone: str | None = None
    mobile: str | None = None
    email: str | None = None


class ContactPerson(BaseModel):
    """A unit's work contact (工作联系人, 附件3), reachable for reminders: mobile and e-mail required."""

    model_config = ConfigDict(frozen=True)

    name: str
    post: str
    office_phone: str | None = None
    mobile: str
    email: str


def validate_contact(draft: ContactDraft) -> ContactPerson:

    out = Collector()
    name = checked(out, v.validate_person_name, draft.name, "name", "联系人姓名")
    post = out.required(draft.post, "post", "职务", NAME_MAX)
    office_phone = optional_checked(out, v.validate_office_phone, draft.office_phone, "office_phone")
    mobile = checked(out, v.validate_mobile, draft.mobile, "mobile", "手机号码")
    email = checked(out, v.validate_email, draft.email, "email", "电子邮箱")
    out.raise_if_any()
    return ContactPerson(name=name, post=post, office_phone=office_phone, mobile=mobile, email=email)
