"""Read models built incrementally from every stream (units, volunteers, activities, reports).

Idempotent under duplicate delivery: each ``$inc`` goes through :func:`shared.storage.apply_once` (the event id is
recorded in the document it changes); snapshots carry a version and only a newer one is applied. Independent of
the order of different streams: every write is an upsert, so an ``ActivityCompleted`` naming a volunteer (or a
unit) the projection has not seen yet counts for them, and the later snapshot fills in the rest.

Membership: the volunteer's document remembers the units it is counted in (``counted_units``); every volunteer
event recomputes that set and moves the unit counters by the difference (one ``apply_once`` per unit, written
before the volunteer document, so a redelivery after a crash repeats exactly the missing part).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.calendar import month_key, quarter_of, to_shanghai
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    ACTIVITIES,
    REPORTS,
    UNITS,
    VOLUNTEERS,
    ActionPlanSubmitted,
    ActivityCompleted,
    MonthlyReportSubmitted,
    UnitRegistered,
    UnitSnapshot,
    UnitUpdated,
    VolunteerJoinedUnit,
    VolunteerLeftUnit,
    VolunteerRegistered,
    VolunteerSnapshot,
    VolunteerUpdated,
)
from shared.messaging.consumer import EventConsumer
from shared.service import Service
from shared.storage import Doc, apply_once, doc_locks

from .store import MONTH_STATS, UNIT_STATS, VOLUNTEER_STATS, centi
from .store import UNITS as UNITS_COL

STREAMS = [UNITS, VOLUNTEERS, ACTIVITIES, REPORTS]


def field_key(value: str) -> str:
    """An id usable as a field name ("." and a leading "$" would be read as paths and operators)."""
    return value.replace(".", "_").replace("$", "_")


class Projections:
    """The event handlers, over one database (used by the service and by the replay command)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db

    def register(self, consumer: EventConsumer) -> None:
        consumer.on(UnitRegistered, UnitUpdated)(self.on_unit)
        consumer.on(VolunteerRegistered, VolunteerUpdated, VolunteerJoinedUnit, VolunteerLeftUnit)(self.on_volunteer)
        consumer.on(ActivityCompleted)(self.on_activity_completed)
        consumer.on(ActionPlanSubmitted)(self.on_action_plan)
        consumer.on(MonthlyReportSubmitted)(self.on_monthly_report)

    # ---- units
    async def on_unit(self, env: Envelope[Any]) -> None:
        data: UnitSnapshot = env.data
        col = self.db[UNITS_COL]
        async with doc_locks.hold(col, data.unit_id):
            current = await col.find_one({"_id": data.unit_id}, {"version": 1, "contact_given_at": 1})
            if current is not None and int(current.get("version") or 0) >= data.version:
                return  # stale or repeated snapshot
            fields: Doc = {
                "name": data.name,
                "kind": data.kind,
                "parent_id": data.parent_id,
                "ancestors": list(data.ancestors),
                "city": data.city,
                "status": data.status,
                "registered_at": data.registered_at,
                "leader_counts": dict(data.leader_counts),
                "contact": data.contact.model_dump() if data.contact else None,
                "version": data.version,
            }
            if data.contact is not None and not (current or {}).get("contact_given_at"):
                # The contract has no "given at": the first snapshot naming a contact is when it was given.
                fields["contact_given_at"] = env.time
            await col.update_one({"_id": data.unit_id}, {"$set": fields}, upsert=True)

    # ---- volunteers and membership
    async def on_volunteer(self, env: Envelope[Any]) -> None:
        data = env.data
        vid: str = data.volunteer_id
        col = self.db[VOLUNTEER_STATS]
        current = await col.find_one(
            {"_id": vid}, {"membership_version": 1, "counted_units": 1, "status": 1, "unit_ids": 1}
        )
        current = current or {}
        if int(current.get("membership_version") or 0) >= data.version:
            return  # stale or repeated
        old = set(current.get("counted_units") or [])
        fields: Doc = {"membership_version": data.version}
        if isinstance(data, VolunteerSnapshot):
            new = set(data.unit_ids) if data.status == "active" else set()
            joined_at: datetime = data.registered_at if isinstance(data, VolunteerRegistered) else env.time
            fields.update(
                display_name=data.display_name,
                platform_number=data.platform_number,
                status=data.status,
                unit_ids=sorted(data.unit_ids),
                registered_at=data.registered_at,
                version=data.version,
            )
        elif isinstance(data, VolunteerJoinedUnit):
            members = set(current.get("unit_ids") or []) | {data.unit_id}
            new = old | {data.unit_id} if current.get("status", "active") == "active" else old
            joined_at = data.joined_at
            fields["unit_ids"] = sorted(members)
        else:
            assert isinstance(data, VolunteerLeftUnit)
            new = old - {data.unit_id}
            joined_at = data.left_at
            fields["unit_ids"] = sorted(set(current.get("unit_ids") or []) - {data.unit_id})
        month = month_key(joined_at)
        for unit in sorted(new - old):
            await apply_once(self.db[UNITS_COL], unit, env.id, {"$inc": {"volunteers": 1}})
            await apply_once(
                self.db[MONTH_STATS],
                f"{unit}:{month}",
                env.id,
                {"$inc": {"new_volunteers": 1}, "$set": {"unit_id": unit, "month": month}},
            )
        for unit in sorted(old - new):
            await apply_once(self.db[UNITS_COL], unit, env.id, {"$inc": {"volunteers": -1}})
        fields["counted_units"] = sorted(new)
        async with doc_locks.hold(col, vid):
            await col.update_one({"_id": vid}, {"$set": fields}, upsert=True)

    # ---- activities
    async def on_activity_completed(self, env: Envelope[Any]) -> None:
        data: ActivityCompleted = env.data
        when = to_shanghai(data.starts_at)
        year, quarter, month = when.year, quarter_of(when), month_key(when)
        served = data.people_served or 0
        hours_c = centi(data.total_hours)
        inc: dict[str, int] = {
            "activities": 1,
            f"quarters.{quarter}": 1,
            f"lines.{data.line_of_work}": 1,
            "hours_c": hours_c,
            "people_served": served,
            "participations": len(data.participants),
        }
        for theme in sorted(set(data.themes)):
            inc[f"themes.{theme}"] = 1
        await apply_once(
            self.db[UNIT_STATS],
            f"{data.unit_id}:{year}",
            env.id,
            {"$inc": inc, "$set": {"unit_id": data.unit_id, "year": year}},
        )
        await apply_once(
            self.db[MONTH_STATS],
            f"{data.unit_id}:{month}",
            env.id,
            {
                "$inc": {
                    "activities": 1,
                    "hours_c": hours_c,
                    "people_served": served,
                    f"lines.{data.line_of_work}": 1,
                },
                "$set": {
                    "unit_id": data.unit_id,
                    "month": month,
                    # what was carried out, for the monthly report (keyed by activity: idempotent, any order)
                    f"done.{field_key(data.activity_id)}": {
                        "activity_id": data.activity_id,
                        "title": data.title,
                        "starts_at": data.starts_at,
                        "line_of_work": data.line_of_work,
                        "themes": list(data.themes),
                        "hours_c": hours_c,
                        "people_served": served,
                        "participants": len(data.participants),
                    },
                },
            },
        )
        for person in data.participants:
            # Upsert: the registration may not have arrived yet; it fills in name, number and units later.
            await apply_once(
                self.db[VOLUNTEER_STATS],
                person.volunteer_id,
                env.id,
                {
                    "$inc": {"hours_c": centi(person.hours), "activities": 1},
                    "$setOnInsert": {"display_name": person.display_name},
                },
            )

    # ---- reports
    async def on_action_plan(self, env: Envelope[Any]) -> None:
        data: ActionPlanSubmitted = env.data
        await apply_once(
            self.db[UNIT_STATS],
            f"{data.unit_id}:{data.year}",
            env.id,
            {
                "$set": {
                    "unit_id": data.unit_id,
                    "year": data.year,
                    "action_plan_submitted_at": data.submitted_at,
                    "action_plan_late": data.late,
                }
            },
        )

    async def on_monthly_report(self, env: Envelope[Any]) -> None:
        data: MonthlyReportSubmitted = env.data
        year = int(data.month[:4])
        await apply_once(
            self.db[UNIT_STATS],
            f"{data.unit_id}:{year}",
            env.id,
            {
                "$set": {
                    "unit_id": data.unit_id,
                    "year": year,
                    f"monthly_reports.{data.month}": data.submitted_at,
                    f"monthly_late.{data.month}": data.late,
                }
            },
        )


def register(service: Service, consumer_name: str = "projections") -> Projections:
    """One consumer group on the four streams feeding the projections."""
    projections = Projections(service.db)
    projections.register(service.consumer(consumer_name, STREAMS))
    return projections
