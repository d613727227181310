"""Use cases of an activity's own life: create, revise, publish, start, complete, cancel, publicity, read (the
listing and search are in :mod:`.search`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from services.activities import domain
from services.activities.domain import (
    Activity,
    ActivityDraft,
    ActivityNotEditable,
    ActivityNotFound,
    ActivityStatus,
    ActivityValidationError,
    SignUpStatus,
    Violation,
    WithinCapacity,
)
from shared import clock
from shared.contracts.events import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityPublished,
    Participation,
    PublicityPublished,
)
from shared.identity import Identity

from .common import Decision, change_activity, roster_unchanged
from .ports import Record, Storage
from .records import (
    ROSTER_V,
    VERSION,
    ActivityRecord,
    SignUpEntry,
    activity_fields,
    activity_record,
    attendance_of,
    confirmed_count,
    envelope,
    no_counts,
    plain,
    signup_entry,
    to_activity,
)
from .scope import can_see, require_admin_of
from .signups import fill


def terms_of(activity: Activity) -> list[str]:
    """The keyword terms the activity is found by (kept beside it by the storage, see :mod:`.search`)."""
    return domain.search_terms(activity.title, activity.description, activity.place)


async def check_demands(storage: Storage, demand_ids: tuple[str, ...]) -> None:
    missing = [d for d in demand_ids if await storage.demand(d) is None]
    if missing:
        raise ActivityValidationError([Violation(field="demand_ids", message=f"对接需求不存在：{'、'.join(missing)}")])


async def create(storage: Storage, body: Mapping[str, Any], identity: Identity) -> ActivityRecord:
    """A new activity in draft state, for a unit the caller manages."""
    draft = domain.parse_draft(body)
    require_admin_of(await storage.reach(identity), draft.unit_id)
    await check_demands(storage, draft.demand_ids)
    activity = domain.create_activity(draft, activity_id=str(uuid.uuid4()))
    now = clock.now()
    record: Record = {
        "_id": activity.id,
        **activity_fields(activity),
        "next_seq": 0,
        "counts": no_counts(),
        "created_at": now,
        "created_by": identity.subject,
        "updated_at": now,
        VERSION: 1,
        ROSTER_V: 0,
    }
    await storage.save_terms(activity.id, terms_of(activity))
    await storage.insert_activity(record)
    return activity_record(record)


async def revise(storage: Storage, activity_id: str, body: Mapping[str, Any], identity: Identity) -> ActivityRecord:
    """New details; new places go to the waitlist first, earliest first."""
    if "demand_ids" in body and isinstance(body["demand_ids"], list):
        await check_demands(storage, tuple(str(d) for d in body["demand_ids"]))
    grew = False

    async def decide(doc: Record, activity: Activity) -> Decision:
        nonlocal grew
        if activity.status not in (ActivityStatus.DRAFT, ActivityStatus.PUBLISHED, ActivityStatus.ONGOING):
            raise ActivityNotEditable(activity.status)
        confirmed = confirmed_count(doc)
        current = activity.model_dump(include=set(ActivityDraft.model_fields))
        draft = domain.parse_draft({**current, **body}, confirmed_count=confirmed)
        revised = domain.revise_activity(activity, draft, confirmed_count=confirmed)
        grew = revised.capacity > activity.capacity
        return Decision(activity_fields(revised), places=WithinCapacity(revised.capacity))

    doc = await change_activity(storage, activity_id, identity, decide)
    await storage.save_terms(activity_id, terms_of(to_activity(doc)))
    if grew:
        await fill(storage, activity_id)
        doc = await storage.activity(activity_id, pending=False) or doc
    return activity_record(doc)


async def publish(storage: Storage, activity_id: str, identity: Identity) -> ActivityRecord:
    async def decide(doc: Record, activity: Activity) -> Decision:
        published, now = domain.publish(activity), clock.now()
        data = ActivityPublished(
            activity_id=activity.id,
            unit_id=activity.unit_id,
            title=activity.title,
            line_of_work=activity.line_of_work.value,
            themes=sorted(t.value for t in activity.themes),
            county=activity.county,
            starts_at=activity.starts_at,
            ends_at=activity.ends_at,
            capacity=activity.capacity,
            signup_closes_at=activity.signup_closes_at,
            published_at=now,
        )
        return Decision({"status": published.status.value, "published_at": now}, [envelope(data, activity.id)])

    return activity_record(await change_activity(storage, activity_id, identity, decide))


async def start(storage: Storage, activity_id: str, identity: Identity) -> ActivityRecord:
    async def decide(doc: Record, activity: Activity) -> Decision:
        return Decision({"status": domain.start(activity).status.value, "started_at": clock.now()})

    return activity_record(await change_activity(storage, activity_id, identity, decide))


def participants(roster: list[Record], activity: Activity) -> list[Participation]:
    """Everyone with an attendance record (checked in, or hours corrected), with effective hours."""
    out = []
    for entry in roster:
        if entry.get("attendance"):
            attendance = attendance_of(entry, activity.id, entry["volunteer_id"])
            hours = attendance.effective_hours(activity.starts_at, activity.ends_at)
            name = entry.get("display_name") or entry["volunteer_id"]
            out.append(Participation(volunteer_id=entry["volunteer_id"], display_name=name, hours=float(hours)))
    return out


async def complete(storage: Storage, activity_id: str, identity: Identity) -> ActivityRecord:
    """Completed, with everyone's service hours in ``ActivityCompleted`` (decided on the roster as read)."""

    async def decide(doc: Record, activity: Activity) -> Decision:
        completed, now = domain.complete(activity), clock.now()
        people = participants(await storage.roster(doc), activity)
        total = sum((Decimal(str(p.hours)) for p in people), Decimal("0"))
        data = ActivityCompleted(
            activity_id=activity.id,
            unit_id=activity.unit_id,
            title=activity.title,
            line_of_work=activity.line_of_work.value,
            themes=sorted(t.value for t in activity.themes),
            starts_at=activity.starts_at,
            ends_at=activity.ends_at,
            completed_at=now,
            people_served=activity.publicity.people_served if activity.publicity else None,
            participants=people,
            total_hours=float(total),
        )
        sets = {
            "status": completed.status.value,
            "completed_at": now,
            "total_hours": str(total),
            "participants": len(people),
        }
        return Decision(sets, [envelope(data, activity.id)], roster_unchanged(doc))

    return activity_record(await change_activity(storage, activity_id, identity, decide))


async def cancel(storage: Storage, activity_id: str, reason: str, identity: Identity) -> ActivityRecord:
    """Cancelled with a reason; everyone holding or waiting for a place is named in ``ActivityCancelled``."""

    async def decide(doc: Record, activity: Activity) -> Decision:
        cancelled, now = domain.cancel(activity, reason), clock.now()
        told = sorted(d["volunteer_id"] for d in await storage.roster(doc) if SignUpStatus(d["status"]).is_active)
        data = ActivityCancelled(
            activity_id=activity.id,
            unit_id=activity.unit_id,
            title=activity.title,
            starts_at=activity.starts_at,
            reason=cancelled.cancel_reason,
            cancelled_at=now,
            signed_up_volunteer_ids=told,
        )
        sets = {"status": cancelled.status.value, "cancel_reason": cancelled.cancel_reason, "cancelled_at": now}
        return Decision(sets, [envelope(data, activity.id)], roster_unchanged(doc))

    return activity_record(await change_activity(storage, activity_id, identity, decide))


async def publicise(storage: Storage, activity_id: str, body: Mapping[str, Any], identity: Identity) -> ActivityRecord:
    """The publicity record of a completed activity (replacing an earlier one)."""
    record = domain.parse_publicity(body)

    async def decide(doc: Record, activity: Activity) -> Decision:
        publicised, now = domain.publicise(activity, record), clock.now()
        data = PublicityPublished(
            activity_id=activity.id,
            unit_id=activity.unit_id,
            summary=record.summary,
            people_served=record.people_served,
            links=[str(u) for u in (*record.links, *record.photo_urls)],
            published_at=now,
            starts_at=activity.starts_at,
            previous_people_served=activity.publicity.people_served if activity.publicity else 0,
        )
        sets = {"publicity": plain(publicised.publicity), "publicity_published_at": now}
        return Decision(sets, [envelope(data, activity.id)])

    return activity_record(await change_activity(storage, activity_id, identity, decide))


async def get(storage: Storage, activity_id: str, identity: Identity) -> tuple[ActivityRecord, SignUpEntry | None]:
    """The activity as the caller may see it, and the caller's own sign-up to it (a volunteer's)."""
    doc = await storage.activity(activity_id)
    if doc is None or not can_see(await storage.reach(identity), doc):
        raise ActivityNotFound()
    mine = await storage.signup(doc, identity.volunteer_id) if identity.volunteer_id else None
    return activity_record(doc), None if mine is None else signup_entry(mine)
