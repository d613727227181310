"""Helpers of the registry integration tests: identities, valid ID-card numbers, sample payloads."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from services.registry.domain.fields import id_check_char
from shared.identity import Identity, acting_as
from shared.settings import ServiceSettings


def headers(settings: ServiceSettings, role: str, *, unit_id: str | None = None, **extra: Any) -> dict[str, str]:
    identity = Identity(subject=extra.pop("subject", f"{role}:{unit_id or 'x'}"), role=role, unit_id=unit_id, **extra)
    return acting_as(identity)


def id_number(seq: int, *, male: bool = True, area: str = "130102") -> str:
    """A valid 18-digit ID-card number, distinct for each seq (< 180,000), with the gender digit set."""
    birth = date(1970, 1, 1) + timedelta(days=seq // 500)
    order = (seq % 500) * 2 + (1 if male else 0)
    first17 = f"{area}{birth:%Y%m%d}{order:03d}"
    return first17 + id_check_char(first17)


def volunteer_body(seq: int, *, male: bool = True, unit_id: str | None = None, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"志愿者{chr(0x4E00 + seq % 2000)}",
        "gender": "男" if male else "女",
        "id_number": id_number(seq, male=male),
        "mobile": f"139{seq:08d}",
        "email": f"v{seq}@example.com",
        "employer": "河北农业大学",
        "title": "副教授",
        "title_level": "副高级",
        "education": "博士研究生",
        "professional_field": "作物栽培",
        "political_status": "群众",
        "skills": ["病虫害防治"],
        "service_areas": ["助力乡村振兴"],
    }
    if unit_id is not None:
        body["unit_id"] = unit_id
    body.update(over)
    return body


CITY_LEADERS = [
    {"name": "李支队", "role": "支队长", "mobile": "13900139000"},
    {"name": "王副一", "role": "副支队长"},
    {"name": "王副二", "role": "副支队长"},
    {"name": "王副三", "role": "副支队长"},
    {"name": "赵秘书", "role": "秘书长"},
]

CONTACT = {
    "name": "王联系",
    "post": "科普部部长",
    "office_phone": "0311-87654321",
    "mobile": "13700137000",
    "email": "contact@example.com",
}
