"""What the domain tests share: an activity starting at a fixed moment, its draft, a secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.activities.domain import (
    Activity,
    ActivityDraft,
    ActivityStatus,
    create_activity,
)

T0 = datetime(2026, 5, 16, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
T_END = T0 + timedelta(hours=3)
SECRET = b"test-secret"


def at(hours: float) -> datetime:
    """A moment relative to the activity's start."""
    return T0 + timedelta(hours=hours)


def draft_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "社区应急救护培训",
        "description": "为社区居民讲解心肺复苏与常见急症处置",
        "unit_id": "unit-1",
        "line_of_work": "community_school",
        "themes": ["poverty_health", "women_youth"],
        "target_groups": ["社区居民"],
        "place": "裕华区东苑街道社区服务中心",
        "county": "裕华区",
        "starts_at": T0,
        "ends_at": T_END,
        "capacity": 2,
        "skills_wanted": ["急救"],
        "signup_opens_at": T0 - timedelta(days=7),
        "signup_closes_at": T0,
    }
    data.update(overrides)
    return data


def make_activity(status: ActivityStatus = ActivityStatus.PUBLISHED, **overrides: Any) -> Activity:
    activity = create_activity(ActivityDraft.model_validate(draft_data(**overrides)), activity_id="act-1")
    return activity.model_copy(update={"status": status})
