"""Activities (科技志愿服务活动): the draft and its rules, the life cycle, the publicity record."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, Field, HttpUrl, TypeAdapter, ValidationError

from shared.calendar import to_shanghai
from shared.programme import LineOfWork, Theme

from .errors import (
    ActivityNotEditable,
    ActivityValidationError,
    CancelReasonRequired,
    InvalidTransition,
    PublicityBeforeCompletion,
    Violation,
)
from .values import MODEL_CONFIG as _MODEL_CONFIG
from .values import ActivityStatus, Id, LongText, Tag, Text


class PublicityRecord(BaseModel):
    """What the unit publishes after the activity (宣传): what was done, for how many, where to see it."""

    model_config = _MODEL_CONFIG

    summary: LongText
    people_served: int = Field(ge=0)
    links: tuple[HttpUrl, ...] = ()
    photo_urls: tuple[HttpUrl, ...] = ()


class ActivityDraft(BaseModel):
    """An activity as its unit's administrator writes it; cross-field rules are in `draft_violations`."""

    model_config = _MODEL_CONFIG

    title: Text
    description: LongText
    unit_id: Id
    line_of_work: LineOfWork
    themes: frozenset[Theme] = frozenset()
    target_groups: tuple[Tag, ...] = ()
    place: Text
    county: Text
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: int = Field(ge=1)
    skills_wanted: tuple[Tag, ...] = ()
    signup_opens_at: AwareDatetime
    signup_closes_at: AwareDatetime
    requires_approval: bool = False
    demand_ids: tuple[Id, ...] = ()

    def signup_window_open(self, now: datetime) -> bool:
        return self.signup_opens_at <= now < self.signup_closes_at

    @property
    def span(self) -> timedelta:
        return self.ends_at - self.starts_at


class Activity(ActivityDraft):
    """A stored activity: the draft plus its identity, life-cycle state and publicity record."""

    id: Id
    status: ActivityStatus = ActivityStatus.DRAFT
    cancel_reason: str | None = None
    publicity: PublicityRecord | None = None


# Chinese field names for messages.
_FIELD_LABELS: dict[str, str] = {
    "title": "活动名称",
    "description": "活动内容",
    "unit_id": "组织单位",
    "line_of_work": "工作方向",
    "themes": "活动主题",
    "target_groups": "服务对象",
    "place": "活动地点",
    "county": "所在县（市、区）",
    "starts_at": "开始时间",
    "ends_at": "结束时间",
    "capacity": "招募人数",
    "skills_wanted": "所需技能",
    "signup_opens_at": "报名开始时间",
    "signup_closes_at": "报名截止时间",
    "requires_approval": "报名是否需审核",
    "demand_ids": "对接需求",
    "summary": "活动总结",
    "people_served": "服务人数",
    "links": "宣传链接",
    "photo_urls": "图片链接",
}


def _schedule_violations(
    starts_at: datetime | None,
    ends_at: datetime | None,
    signup_opens_at: datetime | None,
    signup_closes_at: datetime | None,
) -> list[Violation]:
    found: list[Violation] = []
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        found.append(Violation(field="ends_at", message="结束时间必须晚于开始时间"))
    if signup_closes_at is not None and ends_at is not None and signup_closes_at > ends_at:
        found.append(Violation(field="signup_closes_at", message="报名截止时间不能晚于活动结束时间"))
    if signup_opens_at is not None and signup_closes_at is not None and signup_opens_at >= signup_closes_at:
        found.append(Violation(field="signup_opens_at", message="报名开始时间必须早于报名截止时间"))
    return found


def _capacity_violations(capacity: int | None, confirmed_count: int) -> list[Violation]:
    if capacity is not None and capacity < confirmed_count:
        return [
            Violation(
                field="capacity",
                message=f"招募人数（{capacity}）不能少于已确认报名人数（{confirmed_count}）",
            )
        ]
    return []


def draft_violations(draft: ActivityDraft, *, confirmed_count: int = 0) -> tuple[Violation, ...]:
    """Every cross-field rule the draft breaks (empty when valid); `confirmed_count` matters on update."""
    return tuple(
        _schedule_violations(draft.starts_at, draft.ends_at, draft.signup_opens_at, draft.signup_closes_at)
        + _capacity_violations(draft.capacity, confirmed_count)
    )


def _translate(error: Mapping[str, Any]) -> Violation:
    loc = tuple(str(part) for part in error.get("loc", ()))
    field = ".".join(loc) or "__root__"
    label = _FIELD_LABELS.get(loc[0], loc[0]) if loc else "活动信息"
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        message = f"{label}为必填项"
    elif kind == "string_too_short":
        message = f"{label}不能为空"
    elif kind == "string_too_long":
        message = f"{label}过长（最多{ctx.get('max_length')}个字符）"
    elif kind in {"greater_than_equal", "greater_than"}:
        message = f"{label}不能小于{ctx.get('ge', ctx.get('gt'))}"
    elif kind == "timezone_aware":
        message = f"{label}必须包含时区"
    elif kind.startswith("url"):
        message = f"{label}必须是有效的 http 或 https 网址"
    elif kind.startswith(("datetime", "date")):
        message = f"{label}不是有效的时间"
    elif kind.startswith("int"):
        message = f"{label}必须是整数"
    elif kind == "enum":
        message = f"{label}取值无效"
    elif kind == "extra_forbidden":
        message = f"不支持的字段：{field}"
    else:
        message = f"{label}格式不正确"
    return Violation(field=field, message=message)


def violations_from_validation_error(exc: ValidationError) -> tuple[Violation, ...]:
    """Chinese violations for pydantic's field errors (for the API's problem details)."""
    return tuple(_translate(error) for error in exc.errors())


_SCHEDULE_FIELDS = ("starts_at", "ends_at", "signup_opens_at", "signup_closes_at")
_AWARE = TypeAdapter(AwareDatetime)
_INT = TypeAdapter(int)
_T = TypeVar("_T")


def _try(adapter: TypeAdapter[_T], value: Any) -> _T | None:
    if value is None:
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def parse_draft(data: Mapping[str, Any], *, confirmed_count: int = 0) -> ActivityDraft:
    """Raw input → valid draft, or `ActivityValidationError` with field and cross-field violations at once."""
    try:
        draft = ActivityDraft.model_validate(data)
    except ValidationError as exc:
        found = list(violations_from_validation_error(exc))
        # The cross-field rules still run on whatever parts did parse, so the user sees everything at once.
        times = [_try(_AWARE, data.get(name)) for name in _SCHEDULE_FIELDS]
        found += _schedule_violations(*times)
        found += _capacity_violations(_try(_INT, data.get("capacity")), confirmed_count)
        raise ActivityValidationError(found) from exc
    found_cross = draft_violations(draft, confirmed_count=confirmed_count)
    if found_cross:
        raise ActivityValidationError(found_cross)
    return draft


def parse_publicity(data: Mapping[str, Any]) -> PublicityRecord:
    """Raw input → publicity record, or `ActivityValidationError` with Chinese messages."""
    try:
        return PublicityRecord.model_validate(data)
    except ValidationError as exc:
        raise ActivityValidationError(violations_from_validation_error(exc)) from exc


def create_activity(draft: ActivityDraft, *, activity_id: str) -> Activity:
    """A new activity in draft state; refused with every broken rule at once."""
    found = draft_violations(draft)
    if found:
        raise ActivityValidationError(found)
    return Activity(id=activity_id, **draft.model_dump())


_EDITABLE = frozenset({ActivityStatus.DRAFT, ActivityStatus.PUBLISHED, ActivityStatus.ONGOING})


def revise_activity(activity: Activity, draft: ActivityDraft, *, confirmed_count: int) -> Activity:
    """Replace the activity's details; capacity may not fall below the confirmed sign-ups."""
    if activity.status not in _EDITABLE:
        raise ActivityNotEditable(activity.status)
    found = list(draft_violations(draft, confirmed_count=confirmed_count))
    if draft.unit_id != activity.unit_id:
        found.append(Violation(field="unit_id", message="不能更改活动的组织单位"))
    if found:
        raise ActivityValidationError(found)
    return activity.model_copy(update=draft.model_dump())


# Life cycle: draft → published → ongoing → completed; anything not yet completed may be cancelled.
_TRANSITIONS: dict[ActivityStatus, frozenset[ActivityStatus]] = {
    ActivityStatus.DRAFT: frozenset({ActivityStatus.PUBLISHED, ActivityStatus.CANCELLED}),
    ActivityStatus.PUBLISHED: frozenset({ActivityStatus.ONGOING, ActivityStatus.CANCELLED}),
    ActivityStatus.ONGOING: frozenset({ActivityStatus.COMPLETED, ActivityStatus.CANCELLED}),
    ActivityStatus.COMPLETED: frozenset(),
    ActivityStatus.CANCELLED: frozenset(),
}


def can_transition(current: ActivityStatus, requested: ActivityStatus) -> bool:
    return requested in _TRANSITIONS[current]


def _move(activity: Activity, requested: ActivityStatus, **changes: Any) -> Activity:
    if not can_transition(activity.status, requested):
        raise InvalidTransition(activity.status, requested)
    return activity.model_copy(update={"status": requested, **changes})


def publish(activity: Activity) -> Activity:
    return _move(activity, ActivityStatus.PUBLISHED)


def start(activity: Activity) -> Activity:
    return _move(activity, ActivityStatus.ONGOING)


def complete(activity: Activity) -> Activity:
    return _move(activity, ActivityStatus.COMPLETED)


def cancel(activity: Activity, reason: str) -> Activity:
    """Cancel with a required reason (signed-up volunteers are told through `ActivityCancelled`)."""
    reason = reason.strip()
    if not reason:
        raise CancelReasonRequired()
    return _move(activity, ActivityStatus.CANCELLED, cancel_reason=reason)


def publicise(activity: Activity, record: PublicityRecord) -> Activity:
    """Attach (or replace) the publicity record; only once the activity is completed."""
    if activity.status is not ActivityStatus.COMPLETED:
        raise PublicityBeforeCompletion(activity.status)
    return activity.model_copy(update={"publicity": record})


def quarter_of(moment: datetime) -> tuple[int, int]:
    """(year, quarter) of an aware moment in Asia/Shanghai, where the quotas are counted."""
    local = to_shanghai(moment)
    return local.year, (local.month - 1) // 3 + 1
