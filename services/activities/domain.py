"""Rules of the activities service (科技志愿服务活动), free of I/O.

Activities and their life cycle, sign-up decisions, check-in codes and service hours (服务时长).
Every refusal is an `ActivityError` subclass with a stable `code` and a Chinese `message`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from shared.calendar import to_shanghai
from shared.programme import LineOfWork, Theme

CHECKIN_GRACE = timedelta(minutes=60)
HOURS_STEP = Decimal("0.1")

# ---- Enumerations (each with the Chinese label shown to users) ----


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

# ---- Errors ----


class ActivityError(Exception):
    """A refusal by the activities domain: `code` is stable for machines, `message` is Chinese for people."""

    code: ClassVar[str] = "activity_error"
    default_message: ClassVar[str] = "活动操作失败"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class Violation(BaseModel):
    """One broken rule of an activity's data: the field (dotted path) and a Chinese message."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str


class ActivityValidationError(ActivityError):
    code = "activity_invalid"
    default_message = "活动信息有误"

    def __init__(self, violations: Iterable[Violation]) -> None:
        self.violations = tuple(violations)
        super().__init__("活动信息有误：" + "；".join(v.message for v in self.violations))


class InvalidTransition(ActivityError):
    code = "invalid_transition"

    def __init__(self, current: ActivityStatus, requested: ActivityStatus) -> None:
        self.current = current
        self.requested = requested
        super().__init__(f"活动当前状态为“{current.label}”，不能变更为“{requested.label}”")


class CancelReasonRequired(ActivityError):
    code = "cancel_reason_required"
    default_message = "取消活动必须填写原因"


class ActivityNotEditable(ActivityError):
    code = "activity_not_editable"

    def __init__(self, status: ActivityStatus) -> None:
        self.status = status
        super().__init__(f"活动状态为“{status.label}”，不能再修改活动信息")


class PublicityBeforeCompletion(ActivityError):
    code = "publicity_before_completion"

    def __init__(self, status: ActivityStatus) -> None:
        self.status = status
        super().__init__(f"活动状态为“{status.label}”，活动结束后才能发布宣传信息")


class SignUpRefused(ActivityError):
    """Base of every refused sign-up."""

    code = "signup_refused"
    default_message = "报名失败"


class VolunteerUnknown(SignUpRefused):
    code = "volunteer_unknown"
    default_message = "未找到该志愿者，请先完成志愿者注册"


class VolunteerInactive(SignUpRefused):
    code = "volunteer_inactive"
    default_message = "该志愿者当前不在册（未激活或已离开所属队伍），不能报名"


class AlreadySignedUp(SignUpRefused):
    code = "already_signed_up"
    default_message = "您已报名该活动，请勿重复报名"


class ActivityIsDraft(SignUpRefused):
    code = "activity_not_published"
    default_message = "活动尚未发布，暂不能报名"


class ActivityIsCancelled(SignUpRefused):
    code = "activity_cancelled"
    default_message = "活动已取消，不能报名"


class ActivityIsCompleted(SignUpRefused):
    code = "activity_completed"
    default_message = "活动已结束，不能报名"


class OutsideSignUpWindow(SignUpRefused):
    code = "signup_window_closed"
    default_message = "不在报名时间内"


class SignUpNotYetOpen(OutsideSignUpWindow):
    code = "signup_not_yet_open"
    default_message = "报名尚未开始"


class SignUpClosed(OutsideSignUpWindow):
    code = "signup_closed"
    default_message = "报名已截止"


class SignUpNotActive(ActivityError):
    code = "signup_not_active"

    def __init__(self, status: SignUpStatus) -> None:
        self.status = status
        super().__init__(f"该报名状态为“{status.label}”，不能进行此操作")


class CheckInRefused(ActivityError):
    code = "checkin_refused"
    default_message = "签到失败"


class CheckInCodeMismatch(CheckInRefused):
    code = "checkin_code_mismatch"
    default_message = "签到码无效或不属于本活动"


class OutsideCheckInWindow(CheckInRefused):
    code = "checkin_outside_window"

    def __init__(self, grace: timedelta) -> None:
        minutes = int(grace.total_seconds() // 60)
        super().__init__(f"不在本活动的签到时间内（活动开始前{minutes}分钟至结束后{minutes}分钟）")


class NotCheckedIn(ActivityError):
    code = "not_checked_in"
    default_message = "尚未签到，不能签退"


class AlreadyCheckedIn(ActivityError):
    code = "already_checked_in"
    default_message = "已签到，请勿重复签到"


class AlreadyCheckedOut(ActivityError):
    code = "already_checked_out"
    default_message = "已签退，请勿重复签退"


class CheckOutBeforeCheckIn(ActivityError):
    code = "checkout_before_checkin"
    default_message = "签退时间不能早于签到时间"


class InvalidCorrection(ActivityError):
    code = "invalid_correction"
    default_message = "补录服务时长失败"


class CorrectionReasonRequired(InvalidCorrection):
    code = "correction_reason_required"
    default_message = "补录服务时长必须填写原因"


class CorrectionHoursOutOfRange(InvalidCorrection):
    code = "correction_hours_out_of_range"

    def __init__(self, hours: Decimal, span: Decimal) -> None:
        self.hours = hours
        self.span = span
        super().__init__(f"补录的服务时长（{hours}小时）必须在0到活动时长（{span}小时）之间")


class InvalidDemandTransition(ActivityError):
    code = "invalid_demand_transition"

    def __init__(self, current: DemandStatus, requested: DemandStatus) -> None:
        self.current = current
        self.requested = requested
        super().__init__(f"需求当前状态为“{current.label}”，不能变更为“{requested.label}”")


# ---- Activities ----

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

_MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid")


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


# ---- Sign-up ----


class SignUp(BaseModel):
    """One volunteer's sign-up; `sequence` is the per-activity order of arrival (the waitlist's order)."""

    model_config = _MODEL_CONFIG

    activity_id: Id
    volunteer_id: Id
    sequence: int = Field(ge=1)
    status: SignUpStatus
    signed_up_at: AwareDatetime


def decide_signup(
    activity: Activity,
    *,
    now: datetime,
    volunteer_known: bool,
    volunteer_active: bool,
    already_signed: bool,
    confirmed_count: int,
    waitlisted_count: int = 0,
) -> SignUpStatus:
    """Confirmed, waitlisted or pending approval — or a `SignUpRefused` naming why.

    `already_signed` means the volunteer holds an active sign-up (pending, confirmed or waitlisted);
    after cancelling they may sign up again. A free place goes to the waitlist first: a newcomer is confirmed only
    when a place is free and nobody waits (first come, first served).
    """
    if not volunteer_known:
        raise VolunteerUnknown()
    if not volunteer_active:
        raise VolunteerInactive()
    if activity.status is ActivityStatus.CANCELLED:
        raise ActivityIsCancelled()
    if activity.status is ActivityStatus.COMPLETED:
        raise ActivityIsCompleted()
    if activity.status is ActivityStatus.DRAFT:
        raise ActivityIsDraft()
    if already_signed:
        raise AlreadySignedUp()
    if now < activity.signup_opens_at:
        raise SignUpNotYetOpen()
    if now >= activity.signup_closes_at:
        raise SignUpClosed()
    if activity.requires_approval:
        return SignUpStatus.PENDING_APPROVAL
    return place_or_waitlist(activity.capacity, confirmed_count, waitlisted_count)


def place_or_waitlist(capacity: int, confirmed_count: int, waitlisted_count: int) -> SignUpStatus:
    """Confirmed when a place is free and nobody is waiting for one, else waitlisted."""
    if confirmed_count < capacity and waitlisted_count == 0:
        return SignUpStatus.CONFIRMED
    return SignUpStatus.WAITLISTED


def approve_signup(signup: SignUp, *, capacity: int, confirmed_count: int, waitlisted_count: int = 0) -> SignUp:
    """An approved sign-up takes a place if one is free (and nobody waits for it), else joins the waitlist."""
    if signup.status is not SignUpStatus.PENDING_APPROVAL:
        raise SignUpNotActive(signup.status)
    status = place_or_waitlist(capacity, confirmed_count, waitlisted_count)
    return signup.model_copy(update={"status": status})


def reject_signup(signup: SignUp) -> SignUp:
    if signup.status is not SignUpStatus.PENDING_APPROVAL:
        raise SignUpNotActive(signup.status)
    return signup.model_copy(update={"status": SignUpStatus.REJECTED})


def cancel_signup(signup: SignUp) -> SignUp:
    if not signup.status.is_active:
        raise SignUpNotActive(signup.status)
    return signup.model_copy(update={"status": SignUpStatus.CANCELLED})


def waitlist_order(signups: Iterable[SignUp]) -> list[SignUp]:
    """Waitlisted sign-ups, first come first served (by sign-up sequence)."""
    return sorted((s for s in signups if s.status is SignUpStatus.WAITLISTED), key=lambda s: s.sequence)


def promotions(signups: Iterable[SignUp], capacity: int) -> list[SignUp]:
    """The waitlisted sign-ups that move up to fill the free places, already marked confirmed, in order."""
    signups = list(signups)
    confirmed = sum(1 for s in signups if s.status is SignUpStatus.CONFIRMED)
    free = max(capacity - confirmed, 0)
    return [s.model_copy(update={"status": SignUpStatus.CONFIRMED}) for s in waitlist_order(signups)[:free]]


# ---- Check-in codes ----

_CHECKIN_DOMAIN = b"stvs.activities.checkin.v1:"
_CHECKIN_BYTES = 12  # 96 bits → 16 url-safe characters


def checkin_code(activity_id: str, secret: bytes | str) -> str:
    """The activity's check-in code (the QR code's content): a short url-safe HMAC-SHA256 of its id."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, _CHECKIN_DOMAIN + activity_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:_CHECKIN_BYTES]).decode().rstrip("=")


def checkin_window(
    starts_at: datetime, ends_at: datetime, *, grace: timedelta = CHECKIN_GRACE
) -> tuple[datetime, datetime]:
    """When the code works: from `grace` before the start to `grace` after the end."""
    return starts_at - grace, ends_at + grace


def verify_checkin(
    code: str,
    *,
    activity_id: str,
    secret: bytes | str,
    now: datetime,
    starts_at: datetime,
    ends_at: datetime,
    grace: timedelta = CHECKIN_GRACE,
) -> None:
    """Accept the code for this activity inside its window, or refuse with a distinct error."""
    if not hmac.compare_digest(code.strip().encode(), checkin_code(activity_id, secret).encode()):
        raise CheckInCodeMismatch()
    opens, closes = checkin_window(starts_at, ends_at, grace=grace)
    if not opens <= now <= closes:
        raise OutsideCheckInWindow(grace)


# ---- Service hours ----


def _hours(delta: timedelta) -> Decimal:
    micros = delta // timedelta(microseconds=1)
    return (Decimal(max(micros, 0)) / Decimal(3_600_000_000)).quantize(HOURS_STEP, rounding=ROUND_HALF_UP)


def span_hours(starts_at: datetime, ends_at: datetime) -> Decimal:
    """The activity's length in hours, rounded to 0.1 h: the most anyone can serve in it."""
    return _hours(ends_at - starts_at)


def compute_hours(check_in: datetime, check_out: datetime | None, starts_at: datetime, ends_at: datetime) -> Decimal:
    """Hours served, rounded to 0.1 h, counted only inside the activity's span.

    Early check-in counts from the start, late check-out until the end, and a forgotten check-out closes at
    the end; a check-out before the check-in is refused.
    """
    if check_out is not None and check_out < check_in:
        raise CheckOutBeforeCheckIn()
    begin = max(check_in, starts_at)
    end = ends_at if check_out is None else min(check_out, ends_at)
    return _hours(end - begin)


def _quantize(hours: Decimal | float | int | str) -> Decimal:
    return Decimal(str(hours)).quantize(HOURS_STEP, rounding=ROUND_HALF_UP)


class Correction(BaseModel):
    """An administrator's correction of a volunteer's hours (补录); every one is kept."""

    model_config = _MODEL_CONFIG

    hours: Decimal
    reason: str
    by: Id
    at: AwareDatetime


def make_correction(
    hours: Decimal | float | int | str,
    *,
    reason: str,
    by: str,
    at: datetime,
    starts_at: datetime,
    ends_at: datetime,
) -> Correction:
    """A correction with a reason and hours between 0 and the activity's span, or an `InvalidCorrection`."""
    reason = reason.strip()
    if not reason:
        raise CorrectionReasonRequired()
    value = _quantize(hours)
    span = span_hours(starts_at, ends_at)
    if not Decimal(0) <= value <= span:
        raise CorrectionHoursOutOfRange(value, span)
    return Correction(hours=value, reason=reason, by=by, at=at)


class Attendance(BaseModel):
    """One volunteer's presence at one activity: check-in/out and the history of corrections."""

    model_config = _MODEL_CONFIG

    activity_id: Id
    volunteer_id: Id
    check_in: AwareDatetime | None = None
    check_out: AwareDatetime | None = None
    corrections: tuple[Correction, ...] = ()

    def computed_hours(self, starts_at: datetime, ends_at: datetime) -> Decimal:
        """Hours from the check-in/out alone (0 when never checked in)."""
        if self.check_in is None:
            return Decimal("0.0")
        return compute_hours(self.check_in, self.check_out, starts_at, ends_at)

    def effective_hours(self, starts_at: datetime, ends_at: datetime) -> Decimal:
        """The last correction if any, else the computed hours."""
        return effective_hours(self.computed_hours(starts_at, ends_at), self.corrections)


def effective_hours(computed: Decimal, corrections: Iterable[Correction]) -> Decimal:
    last: Decimal | None = None
    for correction in corrections:
        last = correction.hours
    return computed if last is None else last


def record_check_in(attendance: Attendance, at: datetime) -> Attendance:
    if attendance.check_in is not None:
        raise AlreadyCheckedIn()
    return attendance.model_copy(update={"check_in": at})


def record_check_out(attendance: Attendance, at: datetime) -> Attendance:
    if attendance.check_in is None:
        raise NotCheckedIn()
    if attendance.check_out is not None:
        raise AlreadyCheckedOut()
    if at < attendance.check_in:
        raise CheckOutBeforeCheckIn()
    return attendance.model_copy(update={"check_out": at})


def correct_hours(attendance: Attendance, correction: Correction) -> Attendance:
    """Append a correction; earlier ones stay in the history."""
    return attendance.model_copy(update={"corrections": (*attendance.corrections, correction)})


# ---- Enterprise innovation-demand library (企业创新难题需求库) ----


class Demand(BaseModel):
    """An enterprise's technical problem recorded by a unit; activities name the demands they address."""

    model_config = _MODEL_CONFIG

    id: Id
    unit_id: Id
    enterprise: Text
    title: Text
    description: LongText
    status: DemandStatus = DemandStatus.OPEN


_DEMAND_TRANSITIONS: dict[DemandStatus, frozenset[DemandStatus]] = {
    DemandStatus.OPEN: frozenset({DemandStatus.MATCHED, DemandStatus.SOLVED}),
    DemandStatus.MATCHED: frozenset({DemandStatus.OPEN, DemandStatus.SOLVED}),
    DemandStatus.SOLVED: frozenset(),
}


def change_demand_status(demand: Demand, requested: DemandStatus) -> Demand:
    if requested not in _DEMAND_TRANSITIONS[demand.status]:
        raise InvalidDemandTransition(demand.status, requested)
    return demand.model_copy(update={"status": requested})


# ---- Calendar ----


def quarter_of(moment: datetime) -> tuple[int, int]:
    """(year, quarter) of an aware moment in Asia/Shanghai, where the quotas are counted."""
    local = to_shanghai(moment)
    return local.year, (local.month - 1) // 3 + 1
