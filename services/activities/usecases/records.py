"""The records the storage port hands out and takes, read as domain objects and written from them.

An activity record: its details and state (the fields of :class:`Activity`, enums as values, sets as sorted lists),
``counts`` (sign-ups per status), ``next_seq``, ``version`` (every change of the details or the state), ``roster_v``
(every change of a sign-up), timestamps, and once completed ``total_hours`` and ``participants``. A sign-up record:
activity and volunteer ids, ``sequence`` (order of arrival), ``status``, ``signed_up_at``, ``display_name``, ``by``,
``attendance``. A demand record: the fields of :class:`Demand`, ``recorded_at``, ``updated_at``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel

from services.activities.domain import (
    HOURS_STEP,
    Activity,
    ActivityStatus,
    Attendance,
    Correction,
    Demand,
    SignUp,
    SignUpStatus,
)
from shared.aggregates import VERSION
from shared.contracts.envelope import Envelope
from shared.contracts.events import Event

SOURCE = "/stvs/activities"
ROSTER_V = "roster_v"
__all__ = ["ROSTER_V", "SOURCE", "VERSION"]


def plain(value: Any) -> Any:
    """Domain values → stored values (enums as values, sets as sorted lists, Decimals and URLs as text)."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump())
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool | datetime):
        return value
    return str(value)


def envelope(data: Event, subject: str) -> Envelope[Any]:
    return Envelope.new(data, source=SOURCE, subject=subject)


def no_counts() -> dict[str, int]:
    return {s.value: 0 for s in SignUpStatus}


def activity_fields(activity: Activity) -> dict[str, Any]:
    """The stored fields of an activity's details and state (without id, sign-ups, attendance)."""
    out: dict[str, Any] = plain(activity.model_dump(exclude={"id"}))
    return out


def to_activity(doc: Mapping[str, Any]) -> Activity:
    data = {k: doc[k] for k in Activity.model_fields if k != "id" and k in doc}
    return Activity.model_validate({**data, "id": doc["_id"]})


def to_signup(doc: Mapping[str, Any]) -> SignUp:
    return SignUp(
        activity_id=doc["activity_id"],
        volunteer_id=doc["volunteer_id"],
        sequence=doc["sequence"],
        status=doc["status"],
        signed_up_at=doc["signed_up_at"],
    )


def to_demand(doc: Mapping[str, Any]) -> Demand:
    data = {k: doc[k] for k in Demand.model_fields if k != "id" and k in doc}
    return Demand.model_validate({**data, "id": doc["_id"]})


def count_of(doc: Mapping[str, Any], status: SignUpStatus) -> int:
    return int((doc.get("counts") or {}).get(status.value, 0))


def confirmed_count(doc: Mapping[str, Any]) -> int:
    return count_of(doc, SignUpStatus.CONFIRMED)


def attendance_of(signup: Mapping[str, Any] | None, activity_id: str, volunteer_id: str) -> Attendance:
    raw = ((signup or {}).get("attendance")) or {}
    return Attendance(
        activity_id=activity_id,
        volunteer_id=volunteer_id,
        check_in=raw.get("check_in"),
        check_out=raw.get("check_out"),
        corrections=tuple(Correction.model_validate(c) for c in raw.get("corrections", ())),
    )


def attendance_doc(attendance: Attendance) -> dict[str, Any]:
    out: dict[str, Any] = plain(attendance.model_dump(exclude={"activity_id", "volunteer_id"}))
    return out


def bump(*moves: tuple[str | None, SignUpStatus]) -> dict[str, int]:
    """Moves of the sign-up counters for status moves (old status or None for a new sign-up → new status), as
    deltas of the record's ``counts.<status>`` fields."""
    inc: dict[str, int] = {}
    for old, new in moves:
        if old is not None:
            inc[f"counts.{old}"] = inc.get(f"counts.{old}", 0) - 1
        inc[f"counts.{new.value}"] = inc.get(f"counts.{new.value}", 0) + 1
    return inc


# ---- what the use cases answer: domain objects with the bookkeeping their callers show

STATE_TIMES = ("created_at", "published_at", "started_at", "completed_at", "cancelled_at")


@dataclass(frozen=True)
class ActivityRecord:
    """An activity as the use cases answer it: the domain object, its sign-up counters (every status), when its state
    changed (the moments set so far), and once completed its participants and hours (later corrections included)."""

    activity: Activity
    counts: dict[str, int]
    changed_at: dict[str, datetime]
    total_hours: Decimal | None = None
    participants: int | None = None


def activity_record(doc: Mapping[str, Any]) -> ActivityRecord:
    activity = to_activity(doc)
    completed = activity.status is ActivityStatus.COMPLETED
    return ActivityRecord(
        activity=activity,
        counts={**no_counts(), **(doc.get("counts") or {})},
        changed_at={k: doc[k] for k in STATE_TIMES if doc.get(k) is not None},
        total_hours=Decimal(str(doc.get("total_hours") or "0")).quantize(HOURS_STEP) if completed else None,
        participants=int(doc.get("participants") or 0) if completed else None,
    )


@dataclass(frozen=True)
class SignUpEntry:
    """A sign-up with the volunteer's name as the caller may see it and who made it (the volunteer or an admin)."""

    signup: SignUp
    display_name: str | None
    by: str | None


def signup_entry(doc: Mapping[str, Any]) -> SignUpEntry:
    return SignUpEntry(to_signup(doc), doc.get("display_name"), doc.get("by"))


@dataclass(frozen=True)
class DemandRecord:
    demand: Demand
    recorded_at: datetime | None
    updated_at: datetime | None


def demand_record(doc: Mapping[str, Any]) -> DemandRecord:
    return DemandRecord(to_demand(doc), doc.get("recorded_at"), doc.get("updated_at"))
