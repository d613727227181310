"""The registry's refusals: a domain error type per kind of refusal (mapped once to an HTTP problem in api/errors.py).

`code` is stable for machines; `message` is the Chinese text a user reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.vocabulary import CodedEnum, E, UnitKind


class FieldError(Exception):
    """One invalid input field: `field` is the machine key, `message` the Chinese text shown to the user."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __repr__(self) -> str:
        return f"FieldError({self.field!r}, {self.message!r})"


class RegistryError(Exception):
    """Base of every refusal of the registry; `code` is stable for machines, `message` is Chinese."""

    code: str = "registry_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(RegistryError):
    code = "not_found"


class ConflictError(RegistryError):
    code = "conflict"


class DuplicateNameError(ConflictError):
    code = "duplicate_name"

    def __init__(self, name: str) -> None:
        super().__init__(f"名称“{name}”已被其他队伍使用")
        self.name = name


class DuplicatePersonError(ConflictError):
    """The same ID-card number is registered already: one person, one record.

    `unit_names` is what the caller may be shown; pass none when the caller may not see the units.
    """

    code = "duplicate_person"

    def __init__(
        self, *, platform_number: str | None = None, unit_names: Sequence[str] = (), elsewhere: bool = False
    ) -> None:
        # outside the caller's scope: that it is registered, and nothing more (not where, not under which number)
        text = "该身份证号码已在其他单位注册，不能重复注册" if elsewhere else "该身份证号码已注册，不能重复注册"
        if platform_number:
            text += f"（平台编号 {platform_number}）"
        if unit_names:
            text += f"，所在队伍：{'、'.join(unit_names)}"
        super().__init__(text)
        self.platform_number = None if elsewhere else platform_number
        self.unit_names = () if elsewhere else tuple(unit_names)
        self.elsewhere = elsewhere


class CorpsExistsError(ConflictError):
    code = "corps_exists"

    def __init__(self) -> None:
        super().__init__(f"{UnitKind.PROVINCE_CORPS.label}已存在，全省只设一个总队")


class AlreadyMemberError(ConflictError):
    code = "already_member"


class MembershipLimitError(ConflictError):
    code = "membership_limit"


class InvalidTransitionError(RegistryError):
    code = "invalid_transition"


class ValidationFailedError(RegistryError):
    """Input refused; `errors` holds every invalid field, not only the first one."""

    code = "validation_failed"

    def __init__(self, errors: Sequence[FieldError], message: str | None = None) -> None:
        self.errors = list(errors)
        if message is None:
            details = "；".join(e.message for e in self.errors[:5])
            more = f"等{len(self.errors)}处" if len(self.errors) > 5 else ""
            message = f"填写的信息有误：{details}{more}"
        super().__init__(message)


class InvalidParentError(ValidationFailedError):
    code = "invalid_parent"

    def __init__(self, message: str, *, field: str = "parent_id") -> None:
        super().__init__([FieldError(field, message)], message)


class NamePatternError(ValidationFailedError):
    """A unit name that does not follow the notice's pattern for its kind; `suggestion` is the standard name."""

    code = "name_pattern"

    def __init__(self, message: str, suggestion: str, *, field: str = "name") -> None:
        super().__init__([FieldError(field, message)], message)
        self.suggestion = suggestion


class InvalidLeaderRoleError(ValidationFailedError):
    code = "invalid_leader_role"


class ForbiddenError(RegistryError):
    """Outside the caller's scope (a read of it answers as if it did not exist: api/errors.py)."""

    code = "forbidden_scope"


def refuse(what: str = "该队伍") -> ForbiddenError:
    return ForbiddenError(f"无权访问{what}：只能管理本队伍及下级队伍的信息")


def coded_error(cls: type[CodedEnum], raw: str, *, field: str, what: str) -> FieldError:
    """The refusal of a value none of whose codes, labels or aliases is `raw`."""
    return FieldError(field, cls.unknown_message(raw, what))


def parse_coded(cls: type[E], raw: str, *, field: str, what: str) -> E:
    """The member of `cls` named by `raw` (code, label or alias), else a FieldError."""
    member = cls.lookup(raw)
    if member is None:
        raise coded_error(cls, raw, field=field, what=what)
    return member


class QuotaExceededError(RegistryError):
    """An account asked about more ID numbers registered elsewhere than its day allows (answered 429)."""

    code = "id_lookup_quota_exceeded"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"今日已有{limit}次查到身份证号码在其他单位注册，已达每日上限，请明天再试；如需核实请联系省科协"
        )


class ImportConflictError(ConflictError):
    """Another request took a name, a person or a number while a file was being imported: nothing of it is kept."""

    code = "form_conflict"


class UnavailableError(RegistryError):
    """The store could not finish the work; nothing of it is kept, the caller may try again (answered 503)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RowsInvalidError(RegistryError):
    """An uploaded file has row errors: it is imported whole or not at all. `errors` are the rows' problems."""

    code = "form_rows_invalid"

    def __init__(self, message: str, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(message)
        self.errors = [dict(e) for e in errors]
