"""Every event the platform publishes: the single source of the public contract.

Rules that keep consumers working (enforced by tests/contracts): a published field is never removed, renamed or
retyped, and a new field is optional. A breaking change is a new event type (``….v2``) beside the old one.
No personal data beyond what a consumer needs: never an ID-card number or a volunteer's phone number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

# Event streams: one Kafka topic per aggregate stream (the namespace prefix is added by the settings).
UNITS = "stvs.registry.units"
VOLUNTEERS = "stvs.registry.volunteers"
ACTIVITIES = "stvs.activities.activities"
DEMANDS = "stvs.activities.demands"
REPORTS = "stvs.reporting.reports"
DEADLINES = "stvs.notifier.deadlines"
STREAMS: tuple[str, ...] = (UNITS, VOLUNTEERS, ACTIVITIES, DEMANDS, REPORTS, DEADLINES)

EVENT_TYPES: dict[str, type[Event]] = {}


class Event(BaseModel):
    """Base of every event's ``data``. Consumers ignore fields they do not know (forward compatible)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    stream: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("event_type")
        if event_type is not None:
            if event_type in EVENT_TYPES:
                raise TypeError(f"event type {event_type} declared twice")
            EVENT_TYPES[event_type] = cls


def event_class(event_type: str) -> type[Event] | None:
    """The data model of an event type, or None when the type is unknown."""
    return EVENT_TYPES.get(event_type)


# ---------------------------------------------------------------- units (队伍)

UnitKind = Literal[
    "province_corps",
    "city_detachment",
    "society_detachment",
    "university_detachment",
    "enterprise_detachment",
    "county_team",
    "sub_team",
]
UnitStatus = Literal["pending", "active", "rejected"]


class ContactRef(BaseModel):
    """The unit's work contact (附件3) as far as reminders need it."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    email: str | None = None


class UnitSnapshot(Event):
    """Public state of a unit after the change; consumers keep their own copy from it."""

    unit_id: str
    name: str
    kind: UnitKind
    parent_id: str | None = Field(description="None only for the province corps")
    ancestors: list[str] = Field(description="Ids from the province corps down to the parent")
    city: str | None = Field(None, description="City (市) the unit belongs to, when it has one")
    status: UnitStatus
    registered_at: datetime
    leader_counts: dict[str, int] = Field(default_factory=dict, description="Leaders in place per role (中文职务)")
    contact: ContactRef | None = None
    version: int = Field(ge=1, description="Increases with every change of the unit")


class UnitRegistered(UnitSnapshot):
    event_type: ClassVar[str] = "stvs.unit.registered.v1"
    stream: ClassVar[str] = UNITS


class UnitUpdated(UnitSnapshot):
    event_type: ClassVar[str] = "stvs.unit.updated.v1"
    stream: ClassVar[str] = UNITS
    changed: list[str] = Field(
        default_factory=list,
        description="Names of the fields that changed. A move to another parent (POST /units/{id}/move) is an update "
        "naming parent_id and ancestors (and city when it changes) for the moved unit, then ancestors (and city) for "
        "each unit below it: a copy that follows `ancestors` follows the move",
    )


# ---------------------------------------------------------------- volunteers (科技志愿者)


class VolunteerSnapshot(Event):
    """Public state of a volunteer: identified by id and platform number, never by ID-card number."""

    volunteer_id: str
    platform_number: str = Field(description="e.g. HB2026000123; used everywhere instead of the ID number")
    display_name: str
    status: Literal["active", "inactive"]
    unit_ids: list[str] = Field(description="Units the volunteer is an active member of")
    professional_field: str | None = None
    title: str | None = None
    skills: list[str] = Field(default_factory=list)
    registered_at: datetime
    version: int = Field(ge=1)


class VolunteerRegistered(VolunteerSnapshot):
    event_type: ClassVar[str] = "stvs.volunteer.registered.v1"
    stream: ClassVar[str] = VOLUNTEERS


class VolunteerUpdated(VolunteerSnapshot):
    event_type: ClassVar[str] = "stvs.volunteer.updated.v1"
    stream: ClassVar[str] = VOLUNTEERS
    changed: list[str] = Field(default_factory=list)


class VolunteerJoinedUnit(Event):
    event_type: ClassVar[str] = "stvs.volunteer.joined_unit.v1"
    stream: ClassVar[str] = VOLUNTEERS
    volunteer_id: str
    unit_id: str
    joined_at: datetime
    version: int = Field(ge=1)


class VolunteerLeftUnit(Event):
    event_type: ClassVar[str] = "stvs.volunteer.left_unit.v1"
    stream: ClassVar[str] = VOLUNTEERS
    volunteer_id: str
    unit_id: str
    left_at: datetime
    reason: str | None = None
    version: int = Field(ge=1)


# ---------------------------------------------------------------- activities (科技志愿服务活动)

LineOfWork = Literal["community_school", "enterprise_park", "rural_revitalization"]
Theme = Literal["national_key_event", "poverty_health", "women_youth", "enterprise_innovation"]


class ActivityPublished(Event):
    event_type: ClassVar[str] = "stvs.activity.published.v1"
    stream: ClassVar[str] = ACTIVITIES
    activity_id: str
    unit_id: str
    title: str
    line_of_work: LineOfWork
    themes: list[Theme]
    county: str | None = None
    starts_at: datetime
    ends_at: datetime
    capacity: int = Field(ge=1)
    signup_closes_at: datetime | None = None
    published_at: datetime


class VolunteerSignedUp(Event):
    event_type: ClassVar[str] = "stvs.activity.volunteer_signed_up.v1"
    stream: ClassVar[str] = ACTIVITIES
    activity_id: str
    volunteer_id: str
    status: Literal["confirmed", "waitlisted", "pending_approval"]
    signed_up_at: datetime


class SignUpConfirmed(Event):
    """A waitlisted or pending sign-up became confirmed (promotion from the waitlist, or approval)."""

    event_type: ClassVar[str] = "stvs.activity.signup_confirmed.v1"
    stream: ClassVar[str] = ACTIVITIES
    activity_id: str
    volunteer_id: str
    confirmed_at: datetime
    reason: Literal["promoted", "approved"]


class SignUpCancelled(Event):
    event_type: ClassVar[str] = "stvs.activity.signup_cancelled.v1"
    stream: ClassVar[str] = ACTIVITIES
    activity_id: str
    volunteer_id: str
    cancelled_at: datetime
    by: Literal["volunteer", "admin"]


class AttendanceRecorded(Event):
    event_type: ClassVar[str] = "stvs.activity.attendance_recorded.v1"
    stream: ClassVar[str] = ACTIVITIES
    activity_id: str
    volunteer_id: str
    check_in_at: datetime | None
    check_out_at: datetime | None
    hours: float | None = Field(None, ge=0, description="Hours so far; None while checked in")
    correction_reason: str | None = Field(None, description="Set when an administrator corrected the hours (补录)")


class Participation(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    volunteer_id: str
    display_name: str
    hours: float = Field(ge=0)


class ActivityCompleted(Event):
    event_type: ClassVar[str] = "stvs.activity.completed.v1"
    stream: ClassVar[str] = ACTIVITIES
    activity_id: str
    unit_id: str
    title: str
    line_of_work: LineOfWork
    themes: list[Theme]
    starts_at: datetime
    ends_at: datetime
    completed_at: datetime
    people_served: int | None = Field(None, ge=0)
    participants: list[Participation]
    total_hours: float = Field(ge=0)


class ServiceHoursCorrected(Event):
    """Hours of one participant corrected (补录) after the activity completed.

    ``ActivityCompleted`` already carried the old figure; consumers apply ``hours - previous_hours``. A correction
    before completion needs no such event: completion carries the corrected hours.
    """

    event_type: ClassVar[str] = "stvs.activity.hours_corrected.v1"
    stream: ClassVar[str] = ACTIVITIES
    activity_id: str
    unit_id: str
    volunteer_id: str
    starts_at: datetime = Field(description="The activity's start: the month and quarter the hours count in")
    previous_hours: float = Field(ge=0)
    hours: float = Field(ge=0)
    reason: str
    corrected_at: datetime


class ActivityCancelled(Event):
    event_type: ClassVar[str] = "stvs.activity.cancelled.v1"
    stream: ClassVar[str] = ACTIVITIES
    activity_id: str
    unit_id: str
    title: str
    starts_at: datetime
    reason: str
    cancelled_at: datetime
    signed_up_volunteer_ids: list[str] = Field(description="Volunteers to tell (confirmed, waitlisted, pending)")


class PublicityPublished(Event):
    """The unit's publicity record (宣传) after an activity, with the number of people served; published again when
    the unit corrects it."""

    event_type: ClassVar[str] = "stvs.activity.publicity_published.v1"
    stream: ClassVar[str] = ACTIVITIES
    activity_id: str
    unit_id: str
    summary: str
    people_served: int = Field(ge=0)
    links: list[str] = Field(default_factory=list)
    published_at: datetime
    starts_at: datetime | None = Field(
        None, description="The activity's start: the month and quarter the people served count in"
    )
    previous_people_served: int = Field(
        0,
        ge=0,
        description="People served as the unit's previous publicity of the activity said (0 the first time): "
        "consumers count people_served - previous_people_served, so a republished figure corrects the count",
    )


class DemandRecorded(Event):
    """An enterprise's technical problem in the innovation-demand library (企业创新难题需求库)."""

    event_type: ClassVar[str] = "stvs.demand.recorded.v1"
    stream: ClassVar[str] = DEMANDS
    demand_id: str
    unit_id: str
    enterprise: str
    title: str
    status: Literal["open", "matched", "solved"]
    recorded_at: datetime


# ---------------------------------------------------------------- reports (信息报送)


class ActionPlanSubmitted(Event):
    event_type: ClassVar[str] = "stvs.report.action_plan_submitted.v1"
    stream: ClassVar[str] = REPORTS
    unit_id: str
    year: int
    submitted_at: datetime
    submitted_by: str
    late: bool


class MonthlyReportSubmitted(Event):
    event_type: ClassVar[str] = "stvs.report.monthly_submitted.v1"
    stream: ClassVar[str] = REPORTS
    unit_id: str
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    submitted_at: datetime
    submitted_by: str
    late: bool


ReportKind = Literal["action_plan", "monthly"]


class ReportAmended(Event):
    """A new version of a submitted report (the action plan of a year, the monthly report of a month), while it is
    not accepted yet: it is awaiting the province office's review again. ``version`` counts from 1 (the first
    submission, announced by ActionPlanSubmitted / MonthlyReportSubmitted)."""

    event_type: ClassVar[str] = "stvs.report.amended.v1"
    stream: ClassVar[str] = REPORTS
    unit_id: str
    kind: ReportKind
    period: str = Field(description="年份（行动计划）或 YYYY-MM（月报）")
    version: int = Field(ge=2)
    amended_at: datetime


class ReportAccepted(Event):
    """The province office accepted this version of the report: it can no longer be amended."""

    event_type: ClassVar[str] = "stvs.report.accepted.v1"
    stream: ClassVar[str] = REPORTS
    unit_id: str
    kind: ReportKind
    period: str = Field(description="年份（行动计划）或 YYYY-MM（月报）")
    version: int = Field(ge=1)
    accepted_at: datetime


class ReportReturned(Event):
    """The province office returned this version of the report to the unit with a comment (read with the report:
    the comment is free text and stays out of events): the unit is to amend and submit it again."""

    event_type: ClassVar[str] = "stvs.report.returned.v1"
    stream: ClassVar[str] = REPORTS
    unit_id: str
    kind: ReportKind
    period: str = Field(description="年份（行动计划）或 YYYY-MM（月报）")
    version: int = Field(ge=1)
    returned_at: datetime


# ---------------------------------------------------------------- deadlines (截止提醒)

ObligationKind = Literal["registration", "contact_person", "action_plan", "monthly_report", "quarterly_activity"]


class DeadlineApproaching(Event):
    event_type: ClassVar[str] = "stvs.deadline.approaching.v1"
    stream: ClassVar[str] = DEADLINES
    deadline_id: str
    obligation: ObligationKind
    unit_id: str
    title: str
    due_at: datetime
    days_left: int = Field(ge=0)


class DeadlineMissed(Event):
    event_type: ClassVar[str] = "stvs.deadline.missed.v1"
    stream: ClassVar[str] = DEADLINES
    deadline_id: str
    obligation: ObligationKind
    unit_id: str
    title: str
    due_at: datetime
