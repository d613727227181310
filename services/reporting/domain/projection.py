"""What the projections decide (pure): every event's effects on the read-model records, merged per record.

The records (stored by `adapters/mongo.py`, which keeps their documents, indexes and batching):

- ``units``: id = unit id; the latest snapshot (newer ``version`` wins) plus ``volunteers`` (active members),
  ``new_volunteers.<YYYY-MM>`` (who joined it that month) and ``contact_given_at`` (time of the first snapshot that
  named a contact person).
- ``unit_stats``: id = f"{unit}:{year}"; activities, per quarter / line of work / theme, hours (also per quarter),
  people served, and the unit's submissions of that campaign year.
- ``month_stats``: id = f"{unit}:{YYYY-MM}"; activities, hours, people served, what was carried out (``done``).
- ``volunteer_stats``: id = volunteer id; platform number, name, status, units (membership).
- ``volunteer_hours``: id = volunteer id; ``h`` hours in hundredths, ``a`` activities, ``n`` the name an activity
  gave (until the registration arrives).

What makes each kind of event idempotent: ``ActivityCompleted``, ``ServiceHoursCorrected`` and
``PublicityPublished`` by their event id among the applied ones (:data:`MARKED`); volunteer events by the
volunteer's ``membership_version``; unit snapshots by their ``version``; submissions are a ``$set`` of their facts.
Every write is an upsert, so an event naming a volunteer or a unit not seen yet counts for them (order independence).
Membership: the volunteer's record remembers the units it is counted in; every volunteer event recomputes that set
and moves the unit counters by the difference (:class:`Membership`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.calendar import month_key, quarter_of, to_shanghai
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    ActionPlanSubmitted,
    ActivityCompleted,
    MonthlyReportSubmitted,
    PublicityPublished,
    ReportAccepted,
    ReportAmended,
    ReportReturned,
    ServiceHoursCorrected,
    UnitRegistered,
    UnitSnapshot,
    UnitUpdated,
    VolunteerJoinedUnit,
    VolunteerLeftUnit,
    VolunteerRegistered,
    VolunteerSnapshot,
    VolunteerUpdated,
)

from .stars import centi

Record = dict[str, Any]

UNITS = "units"
UNIT_STATS = "unit_stats"
VOLUNTEER_STATS = "volunteer_stats"
MONTH_STATS = "month_stats"
VOLUNTEER_HOURS = "volunteer_hours"
PROJECTIONS: tuple[str, ...] = (UNITS, UNIT_STATS, VOLUNTEER_STATS, MONTH_STATS, VOLUNTEER_HOURS)

VOLUNTEER_EVENTS = (VolunteerRegistered, VolunteerUpdated, VolunteerJoinedUnit, VolunteerLeftUnit)
# deduplicated by their id among the applied events
MARKED = (ActivityCompleted, ServiceHoursCorrected, PublicityPublished)
HANDLED = (
    UnitRegistered,
    UnitUpdated,
    *VOLUNTEER_EVENTS,
    ActivityCompleted,
    ServiceHoursCorrected,
    PublicityPublished,
    ActionPlanSubmitted,
    MonthlyReportSubmitted,
    ReportAmended,
    ReportAccepted,
    ReportReturned,
)
# Bound of one transaction, counted before merging (an activity counts one per participant): a full poll of
# 5,000 activities (~65,000 participations) fits, so that its hours records merge into ~1,000 bucket writes
# (adapters/mongo.py); a bigger poll is split, so that a transaction stays well inside MongoDB's transaction
# lifetime (60 s by default).
CHUNK_WRITES = 100_000


def field_key(value: str) -> str:
    """An id usable as a field name ("." and a leading "$" would be read as paths and operators)."""
    return value.replace(".", "_").replace("$", "_")


# ---------------------------------------------------------------- updates and their merge


@dataclass
class Update:
    """The merged update of one document: ``$inc`` summed, ``$set`` later wins, ``$min`` the least (whatever the
    order the events come in)."""

    inc: dict[str, int] = field(default_factory=dict)
    set: Record = field(default_factory=dict)
    min: Record = field(default_factory=dict)

    def least(self, path: str, value: Any) -> None:
        self.min[path] = min(self.min[path], value) if path in self.min else value

    def operators(self) -> Record:
        out: Record = {}
        if self.inc:
            out["$inc"] = dict(self.inc)
        if self.set:
            out["$set"] = dict(self.set)
        least = {k: v for k, v in self.min.items() if k not in self.set and k not in self.inc}
        if least:
            out["$min"] = least
        return out


class Batch:
    """The updates a chunk of events makes, per target document (``(collection, _id)``), and the documents it
    inserts (known to be new: absent from the transaction's snapshot)."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], Update] = {}
        self.inserts: dict[str, list[Record]] = {}
        self._of: dict[str, dict[str, Update]] = {}  # the same updates by collection, then id

    def update(self, collection: str, doc_id: str) -> Update:
        found = self.docs.get((collection, doc_id))
        if found is None:
            found = self.docs[(collection, doc_id)] = self._of.setdefault(collection, {})[doc_id] = Update()
        return found

    def inc(self, collection: str, doc_id: str, inc: Mapping[str, int], sets: Mapping[str, Any] = {}) -> None:
        update = self.update(collection, doc_id)
        for path, value in inc.items():
            update.inc[path] = update.inc.get(path, 0) + value
        update.set.update(sets)

    def updates(self, collection: str) -> list[tuple[str, Update]]:
        """The non-empty updates of one collection's records, by record id."""
        return [(doc_id, u) for doc_id, u in self._of.get(collection, {}).items() if u.inc or u.set or u.min]


# ---------------------------------------------------------------- volunteer membership


@dataclass
class Membership:
    """What the projection keeps of a volunteer's membership (the part events change)."""

    version: int = 0
    status: str = "active"
    unit_ids: set[str] = field(default_factory=set)
    counted: set[str] = field(default_factory=set)
    fields: Record = field(default_factory=dict)

    def step(self, env: Envelope[Any]) -> list[tuple[str, dict[str, int]]] | None:
        """Apply one volunteer event: its effects on the unit counters (unit id, increments), None if stale."""
        data = env.data
        if self.version >= data.version:
            return None  # stale or repeated
        old = set(self.counted)
        if isinstance(data, VolunteerSnapshot):
            new = set(data.unit_ids) if data.status == "active" else set()
            joined_at: datetime = data.registered_at if isinstance(data, VolunteerRegistered) else env.time
            self.status = data.status
            self.unit_ids = set(data.unit_ids)
            self.fields.update(
                display_name=data.display_name,
                platform_number=data.platform_number,
                status=data.status,
                registered_at=data.registered_at,
                version=data.version,
            )
        elif isinstance(data, VolunteerJoinedUnit):
            self.unit_ids = self.unit_ids | {data.unit_id}
            new = old | {data.unit_id} if self.status == "active" else old
            joined_at = data.joined_at
        else:
            assert isinstance(data, VolunteerLeftUnit)
            new = old - {data.unit_id}
            self.unit_ids = self.unit_ids - {data.unit_id}
            joined_at = data.left_at
        self.version = data.version
        self.counted = new
        month = month_key(joined_at)
        effects: list[tuple[str, dict[str, int]]] = []
        for unit in sorted(new - old):
            # one document per unit for the headcount and who joined when (``new_volunteers.<YYYY-MM>``)
            effects.append((unit, {"volunteers": 1, f"new_volunteers.{month}": 1}))
        for unit in sorted(old - new):
            effects.append((unit, {"volunteers": -1}))
        return effects

    def doc_fields(self) -> Record:
        return {
            **self.fields,
            "membership_version": self.version,
            "unit_ids": sorted(self.unit_ids),
            "counted_units": sorted(self.counted),
        }


# ---------------------------------------------------------------- unit snapshots (a pure step)


@dataclass(frozen=True)
class UnitVersion:
    """What deciding on a unit snapshot needs of the unit's record: its version, whether a contact was given."""

    version: int = 0
    contact_given: bool = False


def unit_fields(data: UnitSnapshot) -> Record:
    return {
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


def apply_snapshots(current: UnitVersion, envs: Iterable[Envelope[Any]]) -> Record:
    """The ``$set`` that brings a unit record from ``current`` to the newest of these snapshots (may be empty)."""
    version = current.version
    contact_given = current.contact_given
    sets: Record = {}
    for env in envs:
        data: UnitSnapshot = env.data
        if data.version <= version:
            continue
        version = data.version
        sets.update(unit_fields(data))
        if data.contact is not None and not contact_given:
            # The contract has no "given at": the first snapshot naming a contact is when it was given.
            sets["contact_given_at"] = env.time
            contact_given = True
    return sets


# ---------------------------------------------------------------- effects of the other events (pure)


def completed_effects(data: ActivityCompleted, batch: Batch) -> None:
    when = to_shanghai(data.starts_at)
    year, quarter, month = when.year, quarter_of(when), month_key(when)
    served = data.people_served or 0
    hours_c = centi(data.total_hours)
    inc: dict[str, int] = {
        "activities": 1,
        f"quarters.{quarter}": 1,
        f"quarter_hours_c.{quarter}": hours_c,
        f"lines.{data.line_of_work}": 1,
        "hours_c": hours_c,
        "people_served": served,
        "participations": len(data.participants),
    }
    for theme in sorted(set(data.themes)):
        inc[f"themes.{theme}"] = 1
    batch.inc(UNIT_STATS, f"{data.unit_id}:{year}", inc, {"unit_id": data.unit_id, "year": year})
    done = f"done.{field_key(data.activity_id)}"
    batch.inc(
        MONTH_STATS,
        f"{data.unit_id}:{month}",
        {
            "activities": 1,
            "hours_c": hours_c,
            "people_served": served,
            f"lines.{data.line_of_work}": 1,
            # hours and people served by $inc (a later correction or publicity adds to them), the rest by $set
            f"{done}.hours_c": hours_c,
            f"{done}.people_served": served,
        },
        {
            "unit_id": data.unit_id,
            "month": month,
            f"{done}.activity_id": data.activity_id,
            f"{done}.title": data.title,
            f"{done}.starts_at": data.starts_at,
            f"{done}.line_of_work": data.line_of_work,
            f"{done}.themes": list(data.themes),
            f"{done}.participants": len(data.participants),
        },
    )
    for person in data.participants:
        # The registration may not have arrived yet: the name from an activity stands in until it does (the least
        # of the names given, so that a replay in another order keeps the same).
        batch.inc(VOLUNTEER_HOURS, person.volunteer_id, {"h": centi(person.hours), "a": 1})
        batch.update(VOLUNTEER_HOURS, person.volunteer_id).least("n", person.display_name)


def corrected_effects(data: ServiceHoursCorrected, batch: Batch) -> None:
    when = to_shanghai(data.starts_at)
    year, quarter, month = when.year, quarter_of(when), month_key(when)
    delta = centi(data.hours) - centi(data.previous_hours)
    batch.inc(VOLUNTEER_HOURS, data.volunteer_id, {"h": delta})
    batch.inc(
        UNIT_STATS,
        f"{data.unit_id}:{year}",
        {"hours_c": delta, f"quarter_hours_c.{quarter}": delta},
        {"unit_id": data.unit_id, "year": year},
    )
    batch.inc(
        MONTH_STATS,
        f"{data.unit_id}:{month}",
        {"hours_c": delta, f"done.{field_key(data.activity_id)}.hours_c": delta},
        {"unit_id": data.unit_id, "month": month},
    )


def publicity_effects(data: PublicityPublished, batch: Batch) -> bool:
    """People served, as the unit's publicity says after the activity (again when it corrects the figure); False
    when it cannot be counted (published before the contract carried the start: no month to count it in)."""
    if data.starts_at is None:
        return False
    when = to_shanghai(data.starts_at)
    year, month = when.year, month_key(when)
    delta = data.people_served - data.previous_people_served
    batch.inc(UNIT_STATS, f"{data.unit_id}:{year}", {"people_served": delta}, {"unit_id": data.unit_id, "year": year})
    batch.inc(
        MONTH_STATS,
        f"{data.unit_id}:{month}",
        {"people_served": delta, f"done.{field_key(data.activity_id)}.people_served": delta},
        {"unit_id": data.unit_id, "month": month},
    )
    return True


def submission_effects(data: ActionPlanSubmitted | MonthlyReportSubmitted, batch: Batch) -> None:
    if isinstance(data, ActionPlanSubmitted):
        batch.inc(
            UNIT_STATS,
            f"{data.unit_id}:{data.year}",
            {},
            {
                "unit_id": data.unit_id,
                "year": data.year,
                "action_plan_submitted_at": data.submitted_at,
                "action_plan_late": data.late,
            },
        )
        return
    year = int(data.month[:4])
    batch.inc(
        UNIT_STATS,
        f"{data.unit_id}:{year}",
        {},
        {
            "unit_id": data.unit_id,
            "year": year,
            f"monthly_reports.{data.month}": data.submitted_at,
            f"monthly_late.{data.month}": data.late,
        },
    )


REVIEW_STATE: dict[type[Any], str] = {
    ReportAmended: "submitted",
    ReportAccepted: "accepted",
    ReportReturned: "returned",
}


def review_effects(data: ReportAmended | ReportAccepted | ReportReturned, batch: Batch) -> None:
    """Where a submitted report stands in its review (``action_plan_review``, ``monthly_review.<month>``): the
    compliance rules count a returned report as not yet done."""
    year = int(data.period[:4])
    path = "action_plan_review" if data.kind == "action_plan" else f"monthly_review.{data.period}"
    sets = {"unit_id": data.unit_id, "year": year, path: REVIEW_STATE[type(data)]}
    batch.inc(UNIT_STATS, f"{data.unit_id}:{year}", {}, sets)


def chunks(envs: Sequence[Envelope[Any]], most_writes: int = CHUNK_WRITES) -> list[list[Envelope[Any]]]:
    """Consecutive runs of events writing at most about ``most_writes`` documents each (never empty)."""
    out: list[list[Envelope[Any]]] = []
    current: list[Envelope[Any]] = []
    weight = 0
    for env in envs:
        cost = 1 + (len(env.data.participants) if isinstance(env.data, ActivityCompleted) else 0)
        if current and weight + cost > most_writes:
            out.append(current)
            current, weight = [], 0
        current.append(env)
        weight += cost
    if current:
        out.append(current)
    return out


# ---------------------------------------------------------------- one chunk decided


@dataclass
class Known:
    """What deciding a chunk needs of the stored records (read in the chunk's transaction)."""

    applied: set[str] = field(default_factory=set)  # ids of MARKED events already applied
    memberships: dict[str, Membership] = field(default_factory=dict)  # volunteers with a record
    units: dict[str, UnitVersion] = field(default_factory=dict)  # units with a record


@dataclass
class Decision:
    """A chunk's effects: the merged updates, the MARKED events applied now, the publicities not countable."""

    batch: Batch
    fresh: list[str]
    uncounted: list[str]


def decide(envs: Sequence[Envelope[Any]], known: Known) -> Decision:
    """Every effect of a chunk of events (in delivery order), against what is already applied and stored."""
    batch = Batch()
    _volunteers([e for e in envs if isinstance(e.data, VOLUNTEER_EVENTS)], known.memberships, batch)
    _units([e for e in envs if isinstance(e.data, UnitRegistered | UnitUpdated)], known.units, batch)
    fresh: list[str] = []
    uncounted: list[str] = []
    for env in envs:
        data = env.data
        if isinstance(data, MARKED):
            if env.id in known.applied:
                continue
            fresh.append(env.id)
            if isinstance(data, ActivityCompleted):
                completed_effects(data, batch)
            elif isinstance(data, PublicityPublished):
                if not publicity_effects(data, batch):
                    uncounted.append(data.activity_id)
            else:
                corrected_effects(data, batch)
        elif isinstance(data, ActionPlanSubmitted | MonthlyReportSubmitted):
            submission_effects(data, batch)
        elif isinstance(data, ReportAmended | ReportAccepted | ReportReturned):
            review_effects(data, batch)
    return Decision(batch, fresh, uncounted)


def _volunteers(envs: Sequence[Envelope[Any]], current: Mapping[str, Membership], batch: Batch) -> None:
    per_volunteer: dict[str, list[Envelope[Any]]] = {}
    for env in envs:
        per_volunteer.setdefault(env.data.volunteer_id, []).append(env)
    for vid, events in per_volunteer.items():
        state = current.get(vid) or Membership()
        changed = False
        for env in sorted(events, key=lambda e: int(e.data.version)):
            effects = state.step(env)
            if effects is None:
                continue
            changed = True
            for unit, inc in effects:
                batch.inc(UNITS, unit, inc)
        if changed and vid in current:
            batch.update(VOLUNTEER_STATS, vid).set.update(state.doc_fields())
        elif changed:  # new (a registration wave: most of them): an insert costs less than an upsert
            batch.inserts.setdefault(VOLUNTEER_STATS, []).append({"_id": vid, **state.doc_fields()})


def _units(envs: Sequence[Envelope[Any]], current: Mapping[str, UnitVersion], batch: Batch) -> None:
    per_unit: dict[str, list[Envelope[Any]]] = {}
    for env in envs:
        per_unit.setdefault(env.data.unit_id, []).append(env)
    for uid, events in per_unit.items():
        sets = apply_snapshots(current.get(uid) or UnitVersion(), sorted(events, key=lambda e: int(e.data.version)))
        if sets:
            batch.update(UNITS, uid).set.update(sets)
