"""Field validators: ID-card numbers, credit codes, phones, e-mail, names, dates (no I/O)."""

from __future__ import annotations

from datetime import date, timedelta

import email_validator
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.registry.domain.codes import Gender
from services.registry.domain.errors import FieldError
from services.registry.domain.fields import (
    CREDIT_CHARSET,
    PROVINCE_CODES,
    REGISTRATION_AUTHORITIES,
    credit_code_check_char,
    id_birth_date,
    id_check_char,
    id_gender,
    mask_id_number,
    parse_count,
    parse_date,
    validate_credit_code,
    validate_email,
    validate_id_number,
    validate_mobile,
    validate_office_phone,
    validate_person_name,
)

TODAY = date(2026, 4, 1)
ID_CHARS = "0123456789X"


@st.composite
def id_numbers(draw: st.DrawFn, *, until: date = TODAY) -> str:
    """A valid 18-character ID-card number: province code, area digits, real birth date, sequence, check."""
    province = draw(st.sampled_from(sorted(PROVINCE_CODES)))
    area = draw(st.integers(0, 9999))
    birth = draw(st.dates(min_value=date(1900, 1, 1), max_value=until))
    sequence = draw(st.integers(0, 999))
    first17 = f"{province:02d}{area:04d}{birth:%Y%m%d}{sequence:03d}"
    return first17 + id_check_char(first17)


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    authority = draw(st.sampled_from(sorted(REGISTRATION_AUTHORITIES)))
    kind = draw(st.sampled_from(sorted(REGISTRATION_AUTHORITIES[authority])))
    division = draw(st.integers(0, 999_999))
    body = draw(st.text(alphabet=CREDIT_CHARSET, min_size=9, max_size=9))
    first17 = f"{authority}{kind}{division:06d}{body}"
    return first17 + credit_code_check_char(first17)


def reject(check: object, *args: object, **kwargs: object) -> FieldError:
    with pytest.raises(FieldError) as caught:
        check(*args, **kwargs)  # type: ignore[operator]
    return caught.value


# --- ID-card numbers ---------------------------------------------------------------------------------


@given(id_numbers())
def test_generated_id_numbers_validate(number: str) -> None:
    assert validate_id_number(number, today=TODAY) == number


@given(id_numbers(), st.integers(0, 17), st.sampled_from(ID_CHARS))
def test_changing_any_single_character_is_rejected(number: str, position: int, replacement: str) -> None:
    assume(number[position] != replacement)
    assume(position == 17 or replacement != "X")  # X can only be the check character: a different refusal
    changed = number[:position] + replacement + number[position + 1 :]
    with pytest.raises(FieldError):
        validate_id_number(changed, today=TODAY)


@given(id_numbers())
def test_lower_case_x_and_spaces_are_normalised(number: str) -> None:
    typed = f" {number[:6]} {number[6:14]} {number[14:].lower()} "
    assert validate_id_number(typed, today=TODAY) == number


@given(id_numbers())
def test_gender_digit_must_agree_with_stated_gender(number: str) -> None:
    coded = id_gender(number)
    other = Gender.FEMALE if coded is Gender.MALE else Gender.MALE
    assert validate_id_number(number, gender=coded, today=TODAY) == number
    error = reject(validate_id_number, number, gender=other, today=TODAY)
    assert error.field == "id_number"
    assert error.message == f"身份证号码显示性别为{coded.label}，与填写的性别“{other.label}”不一致"


@given(id_numbers())
def test_mask_shows_only_the_province(number: str) -> None:
    masked = mask_id_number(number)
    assert masked == number[:2] + "*" * 16
    assert mask_id_number(masked) == masked  # a masked number (also one stored with the former mask) stays put


@given(st.text(max_size=40))
def test_mask_never_reveals_more_than_two_characters_nor_the_length(text: str) -> None:
    masked = mask_id_number(text)
    assert masked.endswith("*" * 16) and len(masked) in (16, 18)
    kept = len(masked) - 16
    assert masked[:kept] == text[:kept]
    assert kept <= len(text) // 4


def candidates(masked: str, region: str, birth: date) -> list[str]:
    """Every valid number consistent with a masked display and a region and birth date known from elsewhere."""
    found = []
    for sequence in range(1000):
        first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
        number = first17 + id_check_char(first17)
        shown = [(i, c) for i, c in enumerate(masked) if c != "*"]
        if all(number[i] == c for i, c in shown):
            found.append(number)
    return found


@given(id_numbers())
def test_masked_number_with_region_and_birth_date_known_leaves_a_thousand_candidates(number: str) -> None:
    found = candidates(mask_id_number(number), number[:6], id_birth_date(number))
    assert number in found
    assert len(found) >= 1_000


def test_the_former_mask_left_one_or_two_candidates() -> None:
    number = "13010219900307123X"
    former = number[:4] + "*" * 10 + number[-4:]
    assert len(candidates(former, number[:6], id_birth_date(number))) <= 2
    assert len(candidates(mask_id_number(number), number[:6], id_birth_date(number))) == 1_000


def test_mask_example_from_the_design() -> None:
    assert mask_id_number("13010219900307123X") == "13****************"


def test_birth_date_and_gender_helpers() -> None:
    number = "130102198506151230"
    assert id_birth_date(number) == date(1985, 6, 15)
    assert id_gender(number) is Gender.MALE  # 17th digit 3 is odd
    assert id_gender("130102198506151222"[:16] + "2" + "2") is Gender.FEMALE


def with_check(first17: str) -> str:
    return first17 + id_check_char(first17)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "请填写身份证号码"),
        ("13010219850615123", "身份证号码应为18位，当前为17位"),
        ("130102850615123", "不支持15位旧身份证号码，请填写18位身份证号码"),
        ("1301021985061512A3", "身份证号码前17位应为数字，最后一位应为数字或X"),
        (with_check("99010219850615123"), "身份证号码前两位“99”不是有效的省级行政区划代码"),
        (with_check("13010219850230123"), "身份证号码中的出生日期（第7–14位）不是有效日期"),
        (with_check("13010218991231123"), "身份证号码中的出生日期早于1900年"),
        (with_check("13010220270101123"), "身份证号码中的出生日期晚于今天"),
        ("130102198506151231", "身份证号码校验位不正确，请核对号码"),
    ],
)
def test_id_number_errors_are_explained_in_chinese(value: str, message: str) -> None:
    error = reject(validate_id_number, value, today=TODAY)
    assert (error.field, error.message) == ("id_number", message)


def test_birth_date_may_be_today_but_not_tomorrow() -> None:
    assert validate_id_number(with_check(f"130102{TODAY:%Y%m%d}123"), today=TODAY)
    tomorrow = TODAY + timedelta(days=1)
    reject(validate_id_number, with_check(f"130102{tomorrow:%Y%m%d}123"), today=TODAY)


def test_field_name_is_the_callers() -> None:
    assert reject(validate_id_number, "x", field="leaders[0].id").field == "leaders[0].id"


def test_full_width_digits_are_accepted() -> None:
    full_width = "１３０１０２１９８５０６１５１２３０"
    assert validate_id_number(full_width, today=TODAY) == "130102198506151230"


# --- unified social credit codes ---------------------------------------------------------------------


@given(credit_codes())
def test_generated_credit_codes_validate(code: str) -> None:
    assert validate_credit_code(code) == code
    assert validate_credit_code(code.lower()) == code


@given(credit_codes(), st.integers(0, 17), st.sampled_from(CREDIT_CHARSET))
def test_changing_any_single_credit_code_character_is_rejected(code: str, position: int, replacement: str) -> None:
    assume(code[position] != replacement)
    changed = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(FieldError):
        validate_credit_code(changed)


def test_known_real_credit_code_validates() -> None:
    assert validate_credit_code("91350100M000100Y43") == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9135010", "统一社会信用代码应为18位，当前为7位"),
        ("91350100M000100I43", "统一社会信用代码含有无效字符“I”（只用数字和除I、O、Z、S、V外的大写字母）"),
        ("C1350100M000100Y43", "统一社会信用代码第1位（登记管理部门代码）“C”无效"),
        ("97350100M000100Y43", "统一社会信用代码第2位（机构类别代码）“7”无效"),
        ("913501A0M000100Y43", "统一社会信用代码第3–8位应为行政区划代码（6位数字）"),
        ("91350100M000100Y44", "统一社会信用代码校验位不正确，请核对代码"),
    ],
)
def test_credit_code_errors_are_explained_in_chinese(value: str, message: str) -> None:
    error = reject(validate_credit_code, value)
    assert (error.field, error.message) == ("credit_code", message)


# --- phones and e-mail ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["13800138000", "+86 138 0013 8000", "+86-138-0013-8000", "8613800138000", "0086 13800138000"]
)
def test_mobile_numbers_are_normalised(value: str) -> None:
    assert validate_mobile(value) == "13800138000"


@given(st.sampled_from("3456789"), st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_every_mainland_mobile_prefix_is_accepted(second: str, rest: str) -> None:
    assert validate_mobile(f"1{second}{rest}") == f"1{second}{rest}"


@pytest.mark.parametrize("value", ["12800138000", "1380013800", "138001380001", "23800138000", "1380013800a"])
def test_bad_mobile_numbers_are_refused(value: str) -> None:
    error = reject(validate_mobile, value)
    assert error.message == "手机号码应为11位中国大陆手机号，如 13800138000"


def test_empty_mobile_asks_for_one() -> None:
    assert reject(validate_mobile, "  ").message == "请填写手机号码"


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("0311-87654321", "0311-87654321"),
        ("(0311)87654321", "0311-87654321"),
        ("0311 8765 4321", "0311-87654321"),
        ("031187654321", "0311-87654321"),
        ("010-62345678", "010-62345678"),
        ("01062345678", "010-62345678"),
        ("0312-5123456", "0312-5123456"),
        ("0311-87654321-123", "0311-87654321-123"),
        ("0311-87654321转8001", "0311-87654321-8001"),
        ("0311-87654321 ext. 12", "0311-87654321-12"),
        ("138 0013 8000", "13800138000"),
    ],
)
def test_office_phones_are_normalised(value: str, normalised: str) -> None:
    assert validate_office_phone(value) == normalised


@pytest.mark.parametrize("value", ["87654321", "0311-0765432", "0311-876", "phone", "1234-87654321"])
def test_bad_office_phones_are_refused(value: str) -> None:
    error = reject(validate_office_phone, value)
    assert error.message == "电话号码格式不正确，应为“区号-号码”（如 0311-87654321）或11位手机号"


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("zhangsan@example.com", "zhangsan@example.com"),
        (" Zhang.San@QQ.COM ", "Zhang.San@qq.com"),
        ("user+tag@mail.hebust.edu.cn", "user+tag@mail.hebust.edu.cn"),
        ("张三@例子.中国", "张三@例子.中国"),
    ],
)
def test_email_addresses_are_normalised(value: str, normalised: str) -> None:
    assert validate_email(value) == normalised


@pytest.mark.parametrize("value", ["abc", "a@b", "a@@b.com", "a b@c.com", "a@b.test", "@qq.com", "a@-qq.com"])
def test_bad_email_addresses_are_refused(value: str) -> None:
    error = reject(validate_email, value)
    assert (error.field, error.message) == ("email", "电子邮箱格式不正确，如 name@example.com")


@given(st.emails() | st.text(alphabet="abcXYZ09._+-@", max_size=30))
def test_email_fast_path_agrees_with_email_validator(value: str) -> None:
    try:
        expected: str | None = email_validator.validate_email(value.strip(), check_deliverability=False).normalized
    except email_validator.EmailNotValidError:
        expected = None
    try:
        actual: str | None = validate_email(value)
    except FieldError:
        actual = None
    if value.strip():
        assert actual == expected


# --- names, dates, counts -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["张三", "欧阳娜娜", "阿依古丽·买买提", "John Smith", "  李  四 "])
def test_person_names(value: str) -> None:
    assert validate_person_name(value) == " ".join(value.split())


@pytest.mark.parametrize("value", ["张3", "张三@", "张\u200b三", "张三１"])
def test_names_with_digits_or_symbols_are_refused(value: str) -> None:
    assert reject(validate_person_name, value).message == "姓名不能包含数字或特殊符号"


@pytest.mark.parametrize(
    "value", [date(2020, 4, 1), "2020-04-01", "2020/4/1", "2020.4.1", "2020年4月1日", "20200401", 43922]
)
def test_dates_in_common_forms(value: date | str | int) -> None:
    assert parse_date(value, field="founded_on", what="成立日期", today=TODAY) == date(2020, 4, 1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2020-02-30", "成立日期不是有效日期，请按 2020-04-20 的格式填写"),
        ("明天", "成立日期不是有效日期，请按 2020-04-20 的格式填写"),
        ("2030-01-01", "成立日期不能晚于今天"),
        ("1899-01-01", "成立日期不能早于1900年"),
    ],
)
def test_bad_dates(value: str, message: str) -> None:
    assert reject(parse_date, value, field="founded_on", what="成立日期", today=TODAY).message == message


@pytest.mark.parametrize(("value", "expected"), [(300, 300), (300.0, 300), ("1,200", 1200), (" 50 ", 50)])
def test_counts(value: int | float | str, expected: int) -> None:
    assert parse_count(value, field="n", what="成员人数") == expected


@pytest.mark.parametrize("value", [-1, 2.5, "五十", "30人", True])
def test_bad_counts(value: int | float | str) -> None:
    assert reject(parse_count, value, field="n", what="成员人数").message.startswith("成员人数应为")
