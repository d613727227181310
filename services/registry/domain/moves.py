"""Moving a unit to another parent (调整上级组织): who may, where to, and what the move changes below it.

A unit keeps its id, its volunteers, activities and reports; its parent and ancestors change, then the ancestors of
every unit below it and the paths of its volunteers' memberships follow (see usecases/moves.py). Pure rules: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.registry.domain.codes import UnitStatus
from services.registry.domain.errors import (
    FieldError,
    ForbiddenError,
    InvalidParentError,
    ValidationFailedError,
)
from services.registry.domain.scope import Scope
from services.registry.domain.units import check_parent
from shared.vocabulary import UnitKind

REASON_MAX = 200


def checked_reason(reason: str | None) -> str:
    """A move's reason: required, at most REASON_MAX characters."""
    text = (reason or "").strip()
    if not text:
        raise ValidationFailedError([FieldError("reason", "请填写调整上级组织的原因")])
    if len(text) > REASON_MAX:
        raise ValidationFailedError([FieldError("reason", f"调整原因不能超过{REASON_MAX}个字")])
    return text


def may_move(scope: Scope, unit: Mapping[str, Any], new_parent: Mapping[str, Any]) -> None:
    """The level above moves a unit: the province, or the admin of a unit above it (strictly) who also manages the
    new parent — a city detachment moves its county teams among its own units; across cities it is the province."""
    if scope.identity.role == "system":
        raise ForbiddenError("系统账号不能调整队伍的上级组织")
    if scope.province:
        return
    own = scope.own_unit
    if own is None or own not in (unit.get("ancestors") or []):
        raise ForbiddenError("队伍的上级组织只能由其上级（省科协或上级队伍的管理员）调整")
    if not scope.manages_unit(new_parent):
        raise ForbiddenError("新的上级组织不在本账号的管理范围内，跨范围调整须由省科协办理")


def check_move(unit: Mapping[str, Any], new_parent: Mapping[str, Any]) -> None:
    """Refuse a move the hierarchy forbids: the corps, to itself or below itself, to its own parent, under a rejected
    unit, or under a parent its kind may not have."""
    kind = UnitKind(unit["kind"])
    if kind is UnitKind.PROVINCE_CORPS:
        raise InvalidParentError("总队是最高一级，不能调整上级组织", field="new_parent_id")
    if unit.get("status") == UnitStatus.REJECTED.value:
        raise InvalidParentError("该队伍的注册已被驳回，不能调整上级组织", field="new_parent_id")
    if new_parent["_id"] == unit["_id"] or unit["_id"] in (new_parent.get("ancestors") or []):
        raise InvalidParentError("不能把队伍调整到它自己或它的下级队伍之下", field="new_parent_id")
    if new_parent["_id"] == unit.get("parent_id"):
        raise InvalidParentError(f"该队伍已在“{new_parent['name']}”之下", field="new_parent_id")
    if new_parent.get("status") == UnitStatus.REJECTED.value:
        raise InvalidParentError("新的上级组织的注册已被驳回", field="new_parent_id")
    try:
        check_parent(kind, UnitKind(new_parent["kind"]))
    except InvalidParentError as refused:
        raise InvalidParentError(refused.message, field="new_parent_id") from None


def new_path(parent: Mapping[str, Any]) -> list[str]:
    """The ancestors of a unit placed directly under ``parent``."""
    return [*(parent.get("ancestors") or []), str(parent["_id"])]


def moved_ancestors(ancestors: Sequence[str], moved_id: str, moved_path: Sequence[str]) -> list[str]:
    """The ancestors of a unit below the moved one once the moved unit's own ancestors are ``moved_path``: the part
    below the moved unit is kept (idempotent: already moved ancestors come back unchanged)."""
    if moved_id not in ancestors:
        return list(ancestors)
    below = list(ancestors)[list(ancestors).index(moved_id) + 1 :]
    return [*moved_path, moved_id, *below]


def moved_city(current: str | None, old_city: str | None, new_city: str | None) -> str | None:
    """A unit's city after a move from a place in ``old_city`` to one in ``new_city`` (属地): a unit of the old city
    goes with it; one with its own other city keeps it."""
    if new_city and current == old_city:
        return new_city
    return current


def membership_paths(
    memberships: Mapping[str, Mapping[str, Any]], units: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """A volunteer's membership entries with each path taken again from its unit's current ancestors."""
    out: dict[str, dict[str, Any]] = {}
    for uid, entry in memberships.items():
        unit = units.get(uid)
        path = [*(unit.get("ancestors") or []), uid] if unit is not None else list(entry.get("path", []))
        out[uid] = {**entry, "path": path}
    return out
