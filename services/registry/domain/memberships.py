"""Memberships: a volunteer belongs to at most 5 units; pending → active | rejected, open → left (the record stays)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.registry.domain.codes import MembershipStatus
from services.registry.domain.errors import (
    AlreadyMemberError,
    FieldError,
    InvalidTransitionError,
    MembershipLimitError,
    ValidationFailedError,
)

MAX_UNITS_PER_VOLUNTEER = 5

_OPEN_MEMBERSHIP = frozenset({MembershipStatus.PENDING, MembershipStatus.ACTIVE})


class Membership(BaseModel):
    """A volunteer's place in one unit; leaving keeps the record (status `left`)."""

    model_config = ConfigDict(frozen=True)

    unit_id: str
    status: MembershipStatus
    requested_at: datetime
    joined_at: datetime | None = None
    left_at: datetime | None = None
    reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN_MEMBERSHIP


def request_membership(
    memberships: Sequence[Membership], unit_id: str, *, requires_approval: bool, at: datetime
) -> Membership:
    """A new membership in `unit_id`: pending when the unit approves its members, else active at once.

    Refused when the volunteer is already (or asking to be) in that unit, or already in five units.
    """
    open_ = [m for m in memberships if m.is_open]
    if any(m.unit_id == unit_id for m in open_):
        raise AlreadyMemberError("已加入该队伍或正在等待审核")
    if len(open_) >= MAX_UNITS_PER_VOLUNTEER:
        raise MembershipLimitError(f"每位志愿者最多加入{MAX_UNITS_PER_VOLUNTEER}支队伍")
    if requires_approval:
        return Membership(unit_id=unit_id, status=MembershipStatus.PENDING, requested_at=at)
    return Membership(unit_id=unit_id, status=MembershipStatus.ACTIVE, requested_at=at, joined_at=at)


def _refuse(membership: Membership, action: str) -> InvalidTransitionError:
    return InvalidTransitionError(f"成员状态为“{membership.status.label}”，不能{action}")


def approve_membership(membership: Membership, *, at: datetime) -> Membership:
    if membership.status is not MembershipStatus.PENDING:
        raise _refuse(membership, "通过审核")
    return membership.model_copy(update={"status": MembershipStatus.ACTIVE, "joined_at": at})


def reject_membership(membership: Membership, *, reason: str, at: datetime) -> Membership:
    if membership.status is not MembershipStatus.PENDING:
        raise _refuse(membership, "驳回")
    reason = reason.strip()
    if not reason:
        raise ValidationFailedError([FieldError("reason", "请填写驳回原因")])
    return membership.model_copy(update={"status": MembershipStatus.REJECTED, "reason": reason, "left_at": at})


def leave_unit(membership: Membership, *, at: datetime, reason: str | None = None) -> Membership:
    """Record leaving a unit (a pending request may also be withdrawn); the record stays."""
    if not membership.is_open:
        raise _refuse(membership, "退出")
    return membership.model_copy(
        update={"status": MembershipStatus.LEFT, "left_at": at, "reason": (reason or "").strip() or None}
    )
