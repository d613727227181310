"""Field validators for registration data: each returns the normalised value or raises FieldError (Chinese); and the
collector that runs them over a whole form, so a form reports every problem at once.

ID-card numbers (GB 11643-1999), unified social credit codes (GB 32100-2015), mainland mobile and office
phone numbers, e-mail addresses, person names, dates and counts. Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from operator import mul
from typing import Final, Protocol, TypeVar

from email_validator import EmailNotValidError
from email_validator import validate_email as _email_validator

from services.registry.domain.codes import Gender
from services.registry.domain.errors import FieldError, ValidationFailedError, coded_error
from shared import clock
from shared.vocabulary import CodedEnum, lookup_key

NAME_MAX = 50
TEXT_MAX = 100
ADDRESS_MAX = 200
LIST_MAX = 20

__all__ = ["lookup_key"]  # re-exported: the registry's domain matches free text with it

# --------------------------------------------------------------------------------------------------
# Chinese resident ID-card number (公民身份号码, GB 11643-1999)
# --------------------------------------------------------------------------------------------------

ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS: Final = "10X98765432"  # indexed by the weighted sum mod 11 (ISO 7064 MOD 11-2)
PROVINCE_CODES: Final = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_SPACES = re.compile(r"\s+")


def _compact(value: str) -> str:
    """Full-width characters to ASCII (NFKC) and every whitespace removed."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", value))


def id_check_char(first17: str) -> str:
    """The check character of the first 17 digits of an ID-card number."""
    if len(first17) != 17:
        raise ValueError("17 digits expected")
    total = sum(map(mul, map(int, first17), ID_WEIGHTS))
    return ID_CHECK_CHARS[total % 11]


def _embedded_birth_date(number: str) -> date | None:
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def id_birth_date(number: str) -> date:
    """The birth date embedded in a (valid) 18-character ID-card number."""
    birth = _embedded_birth_date(number)
    if birth is None:
        raise ValueError("no valid birth date in this ID-card number")
    return birth


def id_gender(number: str) -> Gender:
    """The gender coded by the 17th character: odd is male, even is female."""
    return Gender.MALE if int(number[16]) % 2 else Gender.FEMALE


MASK_KEEP: Final = 2  # the province (2 digits): shared by millions of people
MASK_STARS: Final = 16


def mask_id_number(number: str) -> str:
    """Masked for display: the first 2 digits (the province) and 16 `*` (`13****************`).

    An 18-digit number is region (6) + birth date (8) + sequence (3, the last one odd for men) + a check digit
    computed from the other 17. Someone who knows a person's county and birth date from elsewhere still lacks the
    sequence: 1,000 candidates, each with its own check digit. Showing the check digit would cut them to about 91
    (1,000 / 11), showing a sequence digit to 100, and the former mask (first 4 + last 4) to one or two; so the
    mask shows neither, and the province it shows is part of the region already known (tests/registry/
    test_validation.py counts the candidates). Idempotent: masking a masked number (or one stored with the former
    mask) gives the same text, and short or odd input shows nothing, never its length."""
    keep = MASK_KEEP if len(number) >= 4 * MASK_KEEP else 0
    return number[:keep] + "*" * MASK_STARS


def validate_id_number(
    value: str, *, gender: Gender | None = None, today: date | None = None, field: str = "id_number"
) -> str:
    """An 18-character ID-card number, upper-case X. Checks shape, province code, birth date (real, not in the
    future, from 1900), the MOD 11-2 check character and, when `gender` is given, the gender digit."""
    # the common case (plain ASCII, no spaces) skips Unicode normalisation: bulk imports check 50,000 of these
    number = value.upper() if value.isascii() and value.isalnum() else _compact(value).upper()
    if not number:
        raise FieldError(field, "请填写身份证号码")
    if len(number) == 15 and number.isdigit():
        raise FieldError(field, "不支持15位旧身份证号码，请填写18位身份证号码")
    if len(number) != 18:
        raise FieldError(field, f"身份证号码应为18位，当前为{len(number)}位")
    if not _ID_SHAPE.fullmatch(number):
        raise FieldError(field, "身份证号码前17位应为数字，最后一位应为数字或X")
    if int(number[:2]) not in PROVINCE_CODES:
        raise FieldError(field, f"身份证号码前两位“{number[:2]}”不是有效的省级行政区划代码")
    birth = _embedded_birth_date(number)
    if birth is None:
        raise FieldError(field, "身份证号码中的出生日期（第7–14位）不是有效日期")
    if birth.year < 1900:
        raise FieldError(field, "身份证号码中的出生日期早于1900年")
    if birth > (today or clock.today()):
        raise FieldError(field, "身份证号码中的出生日期晚于今天")
    if number[17] != id_check_char(number[:17]):
        raise FieldError(field, "身份证号码校验位不正确，请核对号码")
    if gender is not None:
        coded = id_gender(number)
        if coded is not gender:
            raise FieldError(field, f"身份证号码显示性别为{coded.label}，与填写的性别“{gender.label}”不一致")
    return number


# --------------------------------------------------------------------------------------------------
# Unified social credit code (统一社会信用代码, GB 32100-2015)
# --------------------------------------------------------------------------------------------------

CREDIT_CHARSET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
CREDIT_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUE: Final = {char: i for i, char in enumerate(CREDIT_CHARSET)}

# Position 1: registration authority (登记管理部门); position 2: the organisation types it registers
# (机构类别), as published with the standard. 1 机构编制, 5 民政, 9 工商 and Y 其他 are the usual ones;
# the others (2 外交, 3 司法行政, 4 文化, 6 旅游, 7 宗教, 8 工会, A 中央军委改革和编制办公室, N 农业) are
# accepted too so that a real code is never refused.
REGISTRATION_AUTHORITIES: Final[dict[str, frozenset[str]]] = {
    "1": frozenset("1239"),
    "2": frozenset("19"),
    "3": frozenset("1234569"),
    "4": frozenset("19"),
    "5": frozenset("1239"),
    "6": frozenset("129"),
    "7": frozenset("129"),
    "8": frozenset("19"),
    "9": frozenset("123"),
    "A": frozenset("19"),
    "N": frozenset("1239"),
    "Y": frozenset("1"),
}


def credit_code_check_char(first17: str) -> str:
    """The check character of the first 17 characters of a unified social credit code (mod 31)."""
    if len(first17) != 17:
        raise ValueError("17 characters expected")
    total = sum(map(mul, map(_CREDIT_VALUE.__getitem__, first17), CREDIT_WEIGHTS))
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def validate_credit_code(value: str, *, field: str = "credit_code") -> str:
    """An 18-character unified social credit code, upper case. Checks the character set, the registration
    authority and organisation type (positions 1–2), the 6-digit division code (3–8) and the check character.
    The organisation code's own GB 11714 check (9–17) is not verified."""
    code = _compact(value).upper()
    if not code:
        raise FieldError(field, "请填写统一社会信用代码")
    if len(code) != 18:
        raise FieldError(field, f"统一社会信用代码应为18位，当前为{len(code)}位")
    bad = sorted({char for char in code if char not in _CREDIT_VALUE})
    if bad:
        raise FieldError(
            field, f"统一社会信用代码含有无效字符“{'、'.join(bad)}”（只用数字和除I、O、Z、S、V外的大写字母）"
        )
    types = REGISTRATION_AUTHORITIES.get(code[0])
    if types is None:
        raise FieldError(field, f"统一社会信用代码第1位（登记管理部门代码）“{code[0]}”无效")
    if code[1] not in types:
        raise FieldError(field, f"统一社会信用代码第2位（机构类别代码）“{code[1]}”无效")
    if not code[2:8].isdigit():
        raise FieldError(field, "统一社会信用代码第3–8位应为行政区划代码（6位数字）")
    if code[17] != credit_code_check_char(code[:17]):
        raise FieldError(field, "统一社会信用代码校验位不正确，请核对代码")
    return code


# --------------------------------------------------------------------------------------------------
# Phones and e-mail
# --------------------------------------------------------------------------------------------------

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_PHONE_NOISE = re.compile(r"[\s\-()（）]")
# Area codes: 010 and 02x have three digits, all others four (0311 石家庄). Local numbers: 7–8 digits, not
# starting with 0 or 1. Extension after -, 转, ext or #.
_LANDLINE = re.compile(r"(0(?:10|2[0-9]|[3-9][0-9]{2}))-?([2-9][0-9]{6,7})(?:(?:-|转|ext\.?|x|#)([0-9]{1,6}))?")


def _mobile_digits(value: str) -> str:
    digits = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", value))
    if digits.startswith("+86"):
        return digits[3:]
    if digits.startswith("0086"):
        return digits[4:]
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    return digits


def validate_mobile(value: str, *, field: str = "mobile") -> str:
    """A mainland mobile number as 11 digits; +86, spaces and hyphens are accepted and removed."""
    if not value.strip():
        raise FieldError(field, "请填写手机号码")
    digits = _mobile_digits(value)
    if not _MOBILE.fullmatch(digits):
        raise FieldError(field, "手机号码应为11位中国大陆手机号，如 13800138000")
    return digits


def validate_office_phone(value: str, *, field: str = "office_phone") -> str:
    """An office phone: area code and number (`0311-87654321`, `0311-87654321-123` with an extension),
    or a mobile number (11 digits)."""
    if not value.strip():
        raise FieldError(field, "请填写办公电话")
    digits = _mobile_digits(value)
    if _MOBILE.fullmatch(digits):
        return digits
    text = re.sub(r"[\s()（）]", "", unicodedata.normalize("NFKC", value)).lower()
    match = _LANDLINE.fullmatch(text)
    if match is None:
        raise FieldError(field, "电话号码格式不正确，应为“区号-号码”（如 0311-87654321）或11位手机号")
    area, number, extension = match.groups()
    return f"{area}-{number}-{extension}" if extension else f"{area}-{number}"


# A plain ASCII address that email_validator certainly accepts, normalised the same way (domain lower-cased).
# Anything else goes to email_validator itself; the fast path only saves time on bulk imports.
_SIMPLE_EMAIL = re.compile(
    r"([A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*)@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})"
)
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def validate_email(value: str, *, field: str = "email") -> str:
    """An e-mail address (syntax only, no DNS lookup), normalised as email_validator does."""
    text = value.strip()
    if not text:
        raise FieldError(field, "请填写电子邮箱")
    simple = _SIMPLE_EMAIL.fullmatch(text)
    if (
        simple is not None
        and len(simple[1]) <= 64
        and len(text) <= 254
        and simple[2].rsplit(".", 1)[1].lower() not in _SPECIAL_USE_TLDS
    ):
        return f"{simple[1]}@{simple[2].lower()}"
    try:
        return _email_validator(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise FieldError(field, "电子邮箱格式不正确，如 name@example.com") from None


# --------------------------------------------------------------------------------------------------
# Names, dates, counts
# --------------------------------------------------------------------------------------------------

# digits, symbols, control and invisible formatting characters
_NAME_FORBIDDEN = re.compile(
    r"[0-9@#$%^&*_=+<>/\\|{}\[\]~`!?;:\"\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\uff10-\uff19]"
)


def validate_person_name(value: str, *, field: str = "name") -> str:
    """A person's name: 1–50 characters, no digits or symbols (the middle dot of minority names is fine)."""
    name = " ".join(value.split())
    if not name:
        raise FieldError(field, "请填写姓名")
    if len(name) > NAME_MAX:
        raise FieldError(field, f"姓名不能超过{NAME_MAX}个字")
    if _NAME_FORBIDDEN.search(name):
        raise FieldError(field, "姓名不能包含数字或特殊符号")
    return name


_DATE_TEXT = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_EXCEL_EPOCH = date(1899, 12, 30)


def parse_date(value: date | str | float, *, field: str, what: str, today: date | None = None) -> date:
    """A date from a date cell, an Excel serial number or text (2020-04-01, 2020/4/1, 2020年4月1日, 20200401);
    not in the future, not before 1900."""
    result: date | None = None
    if isinstance(value, datetime):
        result = value.date()
    elif isinstance(value, date):
        result = value
    elif isinstance(value, int | float):
        if 1 <= value < 2_958_466:  # Excel's serial range
            result = _EXCEL_EPOCH + timedelta(days=int(value))
    else:
        text = unicodedata.normalize("NFKC", value).strip()
        match = _DATE_TEXT.fullmatch(text)
        parts = match.groups() if match else (text[:4], text[4:6], text[6:]) if re.fullmatch(r"\d{8}", text) else None
        if parts is not None:
            try:
                result = date(int(parts[0]), int(parts[1]), int(parts[2]))
            except ValueError:
                result = None
    if result is None:
        raise FieldError(field, f"{what}不是有效日期，请按 2020-04-20 的格式填写")
    if result.year < 1900:
        raise FieldError(field, f"{what}不能早于1900年")
    if result > (today or clock.today()):
        raise FieldError(field, f"{what}不能晚于今天")
    return result


def parse_count(value: int | float | str, *, field: str, what: str) -> int:
    """A non-negative whole number (a number cell or digits)."""
    if isinstance(value, bool):
        raise FieldError(field, f"{what}应为非负整数")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise FieldError(field, f"{what}应为非负整数")
        number = int(value)
    elif isinstance(value, str):
        text = _compact(value).replace(",", "")
        if not (text.isascii() and text.isdigit()):
            raise FieldError(field, f"{what}应为非负整数")
        number = int(text)
    else:
        raise FieldError(field, f"{what}应为非负整数")
    if number < 0 or number > 10_000_000:
        raise FieldError(field, f"{what}应为0到10000000之间的整数")
    return number


_E = TypeVar("_E", bound=CodedEnum)


class Collector:
    """Runs field checks and keeps every FieldError, so a form reports all its problems at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, error: FieldError) -> None:
        self.errors.append(error)

    def required(self, value: str | None, field: str, what: str, max_len: int = TEXT_MAX) -> str:
        text = (value or "").strip()
        if not text:
            self.errors.append(FieldError(field, f"请填写{what}"))
        elif len(text) > max_len:
            self.errors.append(FieldError(field, f"{what}不能超过{max_len}个字"))
        return text

    def optional(self, value: str | None, field: str, what: str, max_len: int = TEXT_MAX) -> str | None:
        text = (value or "").strip()
        if len(text) > max_len:
            self.errors.append(FieldError(field, f"{what}不能超过{max_len}个字"))
        return text or None

    def coded(self, cls: type[_E], value: str | None, field: str, what: str) -> _E | None:
        text = (value or "").strip()
        if not text:
            self.errors.append(FieldError(field, f"请选择{what}"))
            return None
        member = cls.lookup(text)
        if member is None:
            self.errors.append(coded_error(cls, text, field=field, what=what))
        return member

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailedError(self.errors)


def checked(out: Collector, check: Validator, value: str | None, field: str, what: str) -> str:
    text = (value or "").strip()
    if not text:
        out.add(FieldError(field, f"请填写{what}"))
        return ""
    try:
        return check(text, field=field)
    except FieldError as error:
        out.add(error)
        return ""


class Validator(Protocol):
    def __call__(self, value: str, *, field: str) -> str: ...


def optional_checked(out: Collector, check: Validator, value: str | None, field: str) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        return check(text, field=field)
    except FieldError as error:
        out.add(error)
        return None


def text_list(values: Iterable[str], field: str, what: str, out: Collector) -> list[str]:
    items = list(dict.fromkeys(v.strip() for v in values if v and v.strip()))
    if len(items) > LIST_MAX:
        out.add(FieldError(field, f"{what}最多填写{LIST_MAX}项"))
    for item in items:
        if len(item) > NAME_MAX:
            out.add(FieldError(field, f"{what}“{item[:10]}…”过长，每项不超过{NAME_MAX}个字"))
    return items
