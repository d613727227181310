"""The typed requests and answers of the activities API, exactly the JSON the routes have always taken and given.

Times are written as Pydantic writes them (UTC as ``Z``), as the answers always were. Keys an answer
only sometimes carries (an activity's timestamps and totals, the caller's own sign-up, a waitlist position) are left
out when absent: the routes answer with ``response_model_exclude_unset``, and the builders here set every key that
is always there.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.activities.domain import DemandStatus
from services.activities.usecases.attendance import Attended
from services.activities.usecases.records import ActivityRecord, DemandRecord, SignUpEntry, plain
from shared.programme import LineOfWork, Theme

VOLUNTEER_ID = r"^[^.$\s]{1,64}$"


def _raw(description: str, **schema: Any) -> Any:
    """A field checked by the domain's own rules (every violation at once, in Chinese), not by the framework."""
    return Field(None, description=description, json_schema_extra=schema)


# ---------------------------------------------------------------- requests


class RawBody(BaseModel):
    """A JSON object whose fields the domain checks itself; anything but an object is refused as before (a
    ``dict_type`` validation problem)."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def an_object(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise PydanticCustomError("dict_type", "Input should be a valid dictionary")
        return data

    def given(self) -> dict[str, Any]:
        """The keys the caller sent (the domain tells a missing key from a null one)."""
        return self.model_dump(exclude_unset=True)


class ActivityBody(RawBody):
    """An activity's details (all of them to create one, any of them to revise one)."""

    title: Any = _raw("活动名称", type="string")
    description: Any = _raw("活动内容", type="string")
    unit_id: Any = _raw("组织单位 ID", type="string")
    line_of_work: Any = _raw("工作方向", enum=[v.value for v in LineOfWork])
    themes: Any = _raw("活动主题", type="array", items={"enum": [v.value for v in Theme]})
    target_groups: Any = _raw("服务对象", type="array", items={"type": "string"})
    place: Any = _raw("活动地点", type="string")
    county: Any = _raw("所在县（市、区）", type="string")
    starts_at: Any = _raw("开始时间（含时区）", type="string", format="date-time")
    ends_at: Any = _raw("结束时间（含时区）", type="string", format="date-time")
    capacity: Any = _raw("招募人数", type="integer", minimum=1)
    skills_wanted: Any = _raw("所需技能", type="array", items={"type": "string"})
    signup_opens_at: Any = _raw("报名开始时间", type="string", format="date-time")
    signup_closes_at: Any = _raw("报名截止时间", type="string", format="date-time")
    requires_approval: Any = _raw("报名是否需审核", type="boolean")
    demand_ids: Any = _raw("对接的需求 ID", type="array", items={"type": "string"})


class PublicityBody(RawBody):
    """What the unit publishes after the activity (宣传)."""

    summary: Any = _raw("活动总结", type="string")
    people_served: Any = _raw("服务人数", type="integer", minimum=0)
    links: Any = _raw("宣传链接", type="array", items={"type": "string", "format": "uri"})
    photo_urls: Any = _raw("图片链接", type="array", items={"type": "string", "format": "uri"})


class CancelBody(BaseModel):
    reason: str = Field("", max_length=500, description="取消原因（必填）")


class SignUpBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volunteer_id: str | None = Field(None, pattern=VOLUNTEER_ID, description="管理员代志愿者报名时填写")


class AttendanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volunteer_id: str | None = Field(None, pattern=VOLUNTEER_ID, description="管理员代签时填写")
    code: str | None = Field(None, max_length=100, description="志愿者扫码签到时的签到码")
    at: AwareDatetime | None = Field(None, description="管理员补记的签到/签退时刻（不晚于当前时间），缺省为当前时间")


class CorrectionBody(BaseModel):
    hours: Decimal = Field(description="更正后的服务时长（小时）")
    reason: str = Field("", max_length=500, description="补录原因（必填）")


class DemandBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit_id: str
    enterprise: str
    title: str
    description: str


class DemandStatusBody(BaseModel):
    status: DemandStatus


# ---------------------------------------------------------------- answers


class SignUpOut(BaseModel):
    """One volunteer's sign-up (``waitlist_position`` only while waitlisted, where the answer knows it)."""

    activity_id: str
    volunteer_id: str
    display_name: str | None
    sequence: int
    status: str
    status_label: str
    signed_up_at: datetime
    by: str | None
    waitlist_position: int | None = None

    @classmethod
    def of(cls, entry: SignUpEntry, waitlist_position: int | None = None, **more: Any) -> Self:
        signup = entry.signup
        fields: dict[str, Any] = {
            "activity_id": signup.activity_id,
            "volunteer_id": signup.volunteer_id,
            "display_name": entry.display_name,
            "sequence": signup.sequence,
            "status": signup.status.value,
            "status_label": signup.status.label,
            "signed_up_at": signup.signed_up_at,
            "by": entry.by,
            **more,
        }
        if waitlist_position is not None:
            fields["waitlist_position"] = waitlist_position
        return cls(**fields)


class CancelledSignUpOut(SignUpOut):
    promoted: list[str] = Field(description="因此递补成功的志愿者")


class RosterOut(BaseModel):
    items: list[SignUpOut]
    total: int
    counts: dict[str, int]


class PublicityOut(BaseModel):
    summary: str
    people_served: int
    links: list[str]
    photo_urls: list[str]


class ActivityOut(BaseModel):
    """An activity with its labels and sign-up counters (timestamps, totals and the caller's sign-up when known)."""

    id: str
    title: str
    description: str
    unit_id: str
    line_of_work: str
    themes: list[str]
    target_groups: list[str]
    place: str
    county: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    skills_wanted: list[str]
    signup_opens_at: datetime
    signup_closes_at: datetime
    requires_approval: bool
    demand_ids: list[str]
    status: str
    cancel_reason: str | None
    publicity: PublicityOut | None
    status_label: str
    line_of_work_label: str
    theme_labels: list[str]
    signup_counts: dict[str, int]
    created_at: datetime | None = None
    published_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    total_hours: str | None = Field(None, description="服务时长合计（活动结束后）")
    participants: int | None = Field(None, description="参与人数（活动结束后）")
    my_signup: SignUpOut | None = Field(None, description="当前志愿者本人的报名")
    open_to_me: bool | None = Field(
        None, description="（志愿者的活动列表）对本人开放报名：报名进行中、尚未报名、由本人所在单位或其上级单位组织"
    )

    @classmethod
    def of(cls, record: ActivityRecord, mine: SignUpEntry | None = None, open_to_me: bool | None = None) -> ActivityOut:
        activity = record.activity
        fields: dict[str, Any] = plain(activity.model_dump(exclude={"id"}))
        fields["id"] = activity.id
        fields["status_label"] = activity.status.label
        fields["line_of_work_label"] = activity.line_of_work.label
        fields["theme_labels"] = [Theme(t).label for t in fields["themes"]]
        fields["signup_counts"] = record.counts
        fields.update(record.changed_at)
        if record.total_hours is not None:
            # As ActivityCompleted carried them, with every later correction (ServiceHoursCorrected) applied.
            fields["total_hours"] = str(record.total_hours)
            fields["participants"] = record.participants
        if mine is not None:
            fields["my_signup"] = SignUpOut.of(mine)
        if open_to_me is not None:
            fields["open_to_me"] = open_to_me
        return cls(**fields)


class ActivityPage(BaseModel):
    items: list[ActivityOut]
    total: int
    offset: int
    limit: int


class CorrectionOut(BaseModel):
    hours: str
    reason: str
    by: str
    at: datetime


class AttendanceOut(BaseModel):
    activity_id: str
    volunteer_id: str
    check_in: datetime | None
    check_out: datetime | None
    computed_hours: str
    hours: str
    corrections: list[CorrectionOut]

    @classmethod
    def of(cls, attended: Attended) -> AttendanceOut:
        activity, attendance = attended.activity, attended.attendance
        return cls(
            activity_id=activity.id,
            volunteer_id=attendance.volunteer_id,
            check_in=attendance.check_in,
            check_out=attendance.check_out,
            computed_hours=str(attendance.computed_hours(activity.starts_at, activity.ends_at)),
            hours=str(attendance.effective_hours(activity.starts_at, activity.ends_at)),
            corrections=[
                CorrectionOut(hours=str(c.hours), reason=c.reason, by=c.by, at=c.at) for c in attendance.corrections
            ],
        )


class AttendancePage(BaseModel):
    items: list[AttendanceOut]
    total_hours: str


class CheckInCodeOut(BaseModel):
    activity_id: str
    code: str = Field(description="签到码（二维码内容）")
    valid_from: datetime
    valid_until: datetime


class DemandOut(BaseModel):
    id: str
    unit_id: str
    enterprise: str
    title: str
    description: str
    status: str
    status_label: str
    recorded_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, record: DemandRecord) -> DemandOut:
        demand = record.demand
        return cls(
            **demand.model_dump(mode="json"),
            status_label=demand.status.label,
            recorded_at=record.recorded_at,
            updated_at=record.updated_at,
        )


class DemandPage(BaseModel):
    items: list[DemandOut]
    total: int
    offset: int
    limit: int
