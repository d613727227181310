"""The activities' vocabulary: statuses with the Chinese labels shown to users, and the constrained texts."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, StringConstraints


class ActivityStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ONGOING = "ongoing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return _ACTIVITY_STATUS_LABELS[self]


_ACTIVITY_STATUS_LABELS: dict[ActivityStatus, str] = {
    ActivityStatus.DRAFT: "草稿",
    ActivityStatus.PUBLISHED: "已发布",
    ActivityStatus.ONGOING: "进行中",
    ActivityStatus.COMPLETED: "已结束",
    ActivityStatus.CANCELLED: "已取消",
}


class SignUpStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return _SIGNUP_STATUS_LABELS[self]

    @property
    def is_active(self) -> bool:
        """Whether the sign-up still holds or waits for a place (a second sign-up would be a duplicate)."""
        return self in _ACTIVE_SIGNUP_STATUSES


_SIGNUP_STATUS_LABELS: dict[SignUpStatus, str] = {
    SignUpStatus.PENDING_APPROVAL: "待审核",
    SignUpStatus.CONFIRMED: "报名成功",
    SignUpStatus.WAITLISTED: "候补中",
    SignUpStatus.CANCELLED: "已取消",
    SignUpStatus.REJECTED: "未通过",
}
_ACTIVE_SIGNUP_STATUSES = frozenset({SignUpStatus.PENDING_APPROVAL, SignUpStatus.CONFIRMED, SignUpStatus.WAITLISTED})


class DemandStatus(StrEnum):
    """Status of an enterprise innovation demand (企业创新难题需求)."""

    OPEN = "open"
    MATCHED = "matched"
    SOLVED = "solved"

    @property
    def label(self) -> str:
        return _DEMAND_STATUS_LABELS[self]


_DEMAND_STATUS_LABELS: dict[DemandStatus, str] = {
    DemandStatus.OPEN: "待对接",
    DemandStatus.MATCHED: "已对接",
    DemandStatus.SOLVED: "已解决",
}


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid")
PENDING = SignUpStatus.PENDING_APPROVAL
