"""Read models built incrementally from every stream (units, volunteers, activities, reports), a batch at a time.

Why batches: FerretDB v1 costs ~2 ms per update and pushes down nothing but ``{"_id": v}``, so one update per
event and per counter does not keep up with a province (100,000 registrations, 20,000 activities of 5–20 people).
A consumer poll is applied as one batch: every event is turned into *ops* on target documents, the ops of one
document are merged in memory (``$inc`` summed, ``$set`` later-wins), and each document gets one read and one
write per batch, written concurrently.

Idempotency: the write of a document records what it applied in the same update as its ``$inc`` — a crash leaves
both or neither. Before writing, the document is read and the ops already recorded are dropped, so a batch whose
writes partly happened applies exactly the missing part (no filter guard: a filter other than ``_id`` would scan
the whole collection on FerretDB). Two kinds of record, both under ``_applied``:

- ``unit_stats`` and volunteer documents: one marker per event id (few events per document).
- ``volunteer_hours``, ``units`` and ``month_stats`` (hit by very many events): the highest offset applied per
  topic partition (``_applied.hw~<topic>|<partition>``). A poll read again after a crash has the same offsets, so
  this is exact for redelivery and the documents stay small. A second *copy* of an event (the producer's outbox
  published it twice: a new offset) is caught by event id instead: activity events are dropped whole when their
  ``unit_stats`` document (written last in a batch) has their marker; a volunteer event finds its marker in the
  volunteer document, which recorded its effects *and where it was first read*, so repeating them is a no-op.
  Events applied without a position (the per-event fallback, tests) use event-id markers everywhere.
A document is only written by this process (single projections consumer; the per-document lock serializes the
read-modify-write within it). If a batch fails, it is retried event by event through the consumer's normal path
(retries, dead letters), which the markers make safe.

Marker retention: markers older than ``projection_marker_retention_hours`` are removed whenever their document is
written anyway. An event can reach the projection again only (a) as part of a poll that was not committed
(crash or rebalance: it is the first poll read after the restart, and a document's markers are checked before
they are pruned by that same write) or (b) as a second copy the producer's outbox sweeper published after a crash
(seconds to minutes later; longer only if the producer stays down). A replay drops the projections first. So a
window of days is safe; a duplicate older than the window would count twice — keep the window above the longest
outage a producer's outbox may have.

Order independence: every write is an upsert, so an ``ActivityCompleted`` naming a volunteer (or a unit) the
projection has not seen yet counts for them, and the later snapshot fills in the rest. Unit snapshots carry a
version and only a newer one is applied.

Membership: the volunteer's document remembers the units it is counted in (``counted_units``); every volunteer
event recomputes that set and moves the unit counters by the difference. The volunteer document is written first
and records each event's effects in its marker (``_applied.<id>.fx``); the unit and month counters are written
second with the same event id as marker. A redelivered volunteer event re-emits its recorded effects, so a crash
between the two writes is repaired exactly. Fresh volunteers (the bulk of a province's registration) are written
with one ``insert_many`` per batch; those that exist already (duplicate key) take the read-and-update path.

Service hours per volunteer live in ``volunteer_hours`` buckets (``VOLUNTEER_BUCKETS`` documents, the volunteer
id hashed): an activity of 15 people then costs at most 15 bucket updates per batch, however large the batch.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiokafka import ConsumerRecord
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.calendar import month_key, quarter_of, to_shanghai
from shared.contracts.envelope import Envelope, EnvelopeError, parse_envelope
from shared.contracts.events import (
    ACTIVITIES,
    REPORTS,
    UNITS,
    VOLUNTEERS,
    ActionPlanSubmitted,
    ActivityCompleted,
    MonthlyReportSubmitted,
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
from shared.messaging.consumer import TRANSIENT, EventConsumer, InfrastructureDown
from shared.metrics import CONSUMED
from shared.service import Service
from shared.storage import Doc, doc_locks, utcnow

from .settings import ReportingSettings
from .store import MONTH_STATS, UNIT_STATS, VOLUNTEER_HOURS, VOLUNTEER_STATS, centi
from .store import UNITS as UNITS_COL

log = logging.getLogger("stvs.reporting.projections")
tracer = trace.get_tracer("stvs.reporting.projections")

STREAMS = [UNITS, VOLUNTEERS, ACTIVITIES, REPORTS]
VOLUNTEER_EVENTS = (VolunteerRegistered, VolunteerUpdated, VolunteerJoinedUnit, VolunteerLeftUnit)
HANDLED = (
    UnitRegistered,
    UnitUpdated,
    *VOLUNTEER_EVENTS,
    ActivityCompleted,
    ServiceHoursCorrected,
    ActionPlanSubmitted,
    MonthlyReportSubmitted,
)
# Changing it needs a replay (the bucket of a volunteer is part of the stored layout).
VOLUNTEER_BUCKETS = 512
WRITE_CONCURRENCY = 16
HW = "hw~"  # marker of an offset high-water mark (an event id never starts so)
DEFAULT_RETENTION = timedelta(days=7)


def field_key(value: str) -> str:
    """An id usable as a field name ("." and a leading "$" would be read as paths and operators)."""
    return value.replace(".", "_").replace("$", "_")


def hours_bucket(volunteer_id: str) -> str:
    """``_id`` of the ``volunteer_hours`` document holding this volunteer's totals."""
    return f"b{zlib.crc32(volunteer_id.encode()) % VOLUNTEER_BUCKETS:03d}"


def hours_field(volunteer_id: str) -> str:
    return f"v.{field_key(volunteer_id)}"


# ---------------------------------------------------------------- ops and their merge


@dataclass
class Snapshot:
    """A unit snapshot: applied when its version is newer than the stored one."""

    version: int
    fields: Doc
    has_contact: bool
    time: datetime


@dataclass(frozen=True)
class Position:
    """Where an event was read: ``key`` names the topic partition (a field name), ``offset`` its offset."""

    key: str
    offset: int


@dataclass
class Op:
    """What one event does to one document (``position``: deduplicate by offset high-water mark, not by id)."""

    event_id: str | None
    position: Position | None = None
    inc: dict[str, int] = field(default_factory=dict)
    set: Doc = field(default_factory=dict)
    set_if_absent: Doc = field(default_factory=dict)
    snapshot: Snapshot | None = None


class Batch:
    """Ops of a batch per target document (``(collection, _id)``), one op per event and document."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Op]] = {}
        self._anonymous = itertools.count()

    def op(self, collection: str, doc_id: str, event_id: str | None, position: Position | None = None) -> Op:
        ops = self.docs.setdefault((collection, doc_id), {})
        key = event_id if event_id is not None else f"~{next(self._anonymous)}"
        return ops.setdefault(key, Op(event_id, position))

    def of(self, *collections: str) -> dict[tuple[str, str], dict[str, Op]]:
        return {key: ops for key, ops in self.docs.items() if key[0] in collections}

    def inc(
        self,
        collection: str,
        doc_id: str,
        event_id: str,
        inc: Mapping[str, int],
        sets: Mapping[str, Any],
        position: Position | None = None,
    ) -> None:
        op = self.op(collection, doc_id, event_id, position)
        for path, value in inc.items():
            op.inc[path] = op.inc.get(path, 0) + value
        op.set.update(sets)


def lookup(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def marker_time(value: Any) -> datetime | None:
    at = value.get("at") if isinstance(value, Mapping) else value
    return at if isinstance(at, datetime) else None


def _pruned(applied: Mapping[str, Any], now: datetime, retention: timedelta) -> dict[str, str]:
    cutoff = now - retention
    old = [eid for eid, value in applied.items() if (at := marker_time(value)) is not None and at < cutoff]
    return {f"_applied.{eid}": "" for eid in old}


def merge(current: Mapping[str, Any], ops: Iterable[Op], now: datetime, retention: timedelta) -> Doc | None:
    """The one update applying to ``current`` every op not applied yet (None: nothing to do)."""
    applied: Mapping[str, Any] = current.get("_applied") or {}
    inc: dict[str, int] = {}
    sets: Doc = {}
    version = int(current.get("version") or 0)
    contact_given = bool(current.get("contact_given_at"))
    changed = False
    for op in ops:
        if op.event_id is not None:
            if op.event_id in applied:
                continue
            if op.position is not None:
                mark = f"{HW}{op.position.key}"
                if op.position.offset <= applied.get(mark, -1):
                    continue  # read again after a crash: this document has it already
                # ops of a batch may come in any order: the new mark is the highest applied offset
                sets[f"_applied.{mark}"] = max(sets.get(f"_applied.{mark}", -1), op.position.offset)
            else:
                sets[f"_applied.{op.event_id}"] = now
        changed = True
        for path, value in op.inc.items():
            inc[path] = inc.get(path, 0) + value
        sets.update(op.set)
        for path, value in op.set_if_absent.items():
            if path not in sets and lookup(current, path) is None:
                sets[path] = value
        snap = op.snapshot
        if snap is not None and snap.version > version:
            version = snap.version
            sets.update(snap.fields)
            if snap.has_contact and not contact_given:
                # The contract has no "given at": the first snapshot naming a contact is when it was given.
                sets["contact_given_at"] = snap.time
                contact_given = True
    if not changed or (not inc and not sets):
        return None
    update: Doc = {}
    if inc:
        update["$inc"] = inc
    if sets:
        update["$set"] = sets
    unset = _pruned(applied, now, retention)
    if unset:
        update["$unset"] = unset
    return update


# ---------------------------------------------------------------- volunteer membership (a pure step)


def effect(collection: str, doc_id: str, inc: Mapping[str, int]) -> Doc:
    """An effect on a counter document, as recorded in the volunteer's marker (a stored key holds no ".": paths
    are kept with "/" instead)."""
    return {"c": collection, "d": doc_id, "i": {path.replace(".", "/"): n for path, n in inc.items()}}


@dataclass
class Membership:
    """What the projection keeps of a volunteer's membership (the part events change)."""

    version: int = 0
    status: str = "active"
    unit_ids: set[str] = field(default_factory=set)
    counted: set[str] = field(default_factory=set)
    fields: Doc = field(default_factory=dict)

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Membership:
        return cls(
            version=int(doc.get("membership_version") or 0),
            status=str(doc.get("status") or "active"),
            unit_ids=set(doc.get("unit_ids") or []),
            counted=set(doc.get("counted_units") or []),
        )

    def step(self, env: Envelope[Any]) -> list[Doc] | None:
        """Apply one volunteer event; its effects on the counters (see :func:`effect`), None if stale."""
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
        effects: list[Doc] = []
        for unit in sorted(new - old):
            # one document per unit for the headcount and who joined when (``new_volunteers.<YYYY-MM>``)
            effects.append(effect(UNITS_COL, unit, {"volunteers": 1, f"new_volunteers.{month}": 1}))
        for unit in sorted(old - new):
            effects.append(effect(UNITS_COL, unit, {"volunteers": -1}))
        return effects

    def doc_fields(self) -> Doc:
        return {
            **self.fields,
            "membership_version": self.version,
            "unit_ids": sorted(self.unit_ids),
            "counted_units": sorted(self.counted),
        }


# ---------------------------------------------------------------- the projections


class Projections:
    """The event handlers, over one database (used by the service and by the replay command)."""

    def __init__(self, db: AsyncDatabase[Doc], retention: timedelta = DEFAULT_RETENTION) -> None:
        self.db = db
        self.retention = retention

    def register(self, consumer: EventConsumer) -> None:
        consumer.on(*HANDLED)(self.handle)

    async def handle(self, env: Envelope[Any]) -> None:
        """One event (the consumer's per-event path, used when a batch failed)."""
        await self.apply([env])

    async def apply(self, envs: Sequence[Envelope[Any]], positions: Mapping[str, Position] | None = None) -> None:
        """Apply a batch of events (in delivery order); idempotent, also when partly applied before.

        ``positions`` (event id → where it was read) lets the hours buckets deduplicate by offset high-water mark
        instead of by event id (an activity touches many buckets: per-event markers would make them grow).
        """
        now = utcnow()
        positions = positions or {}
        unique: dict[str, Envelope[Any]] = {}
        for env in envs:
            if isinstance(env.data, HANDLED):
                unique.setdefault(env.id, env)  # the same event twice in one poll counts once
        # Activity events are complete once their unit_stats document (written last) has their marker: a second
        # copy of such an event (published twice) is dropped whole, before its bucket ops exist.
        hours_events = [e for e in unique.values() if isinstance(e.data, ActivityCompleted | ServiceHoursCorrected)]
        stats_ids = sorted({self._stats_id(e.data) for e in hours_events})
        stats_col = self.db[UNIT_STATS]
        async with doc_locks.hold(stats_col, *stats_ids):
            stats = await self._read(stats_col, stats_ids)
            for env in hours_events:
                if env.id in (stats[self._stats_id(env.data)].get("_applied") or {}):
                    del unique[env.id]
            batch = Batch()
            volunteer_events = [e for e in unique.values() if isinstance(e.data, VOLUNTEER_EVENTS)]
            await self._volunteers(volunteer_events, positions, batch, now)
            for env in unique.values():
                self._ops(env, batch, positions.get(env.id))
            # the counters (after the volunteer documents), then unit_stats: its marker says "this event is complete"
            await self._write(batch.of(VOLUNTEER_HOURS, UNITS_COL, MONTH_STATS), now)
            await self._write(batch.of(UNIT_STATS), now, prefetched=stats)

    @staticmethod
    def _stats_id(data: ActivityCompleted | ServiceHoursCorrected) -> str:
        return f"{data.unit_id}:{to_shanghai(data.starts_at).year}"

    @staticmethod
    async def _read(col: Any, ids: Sequence[str]) -> dict[str, Doc]:
        gate = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def one(doc_id: str) -> Doc:
            async with gate:
                found: Doc | None = await col.find_one({"_id": doc_id})
                return found or {}

        docs = await asyncio.gather(*(one(i) for i in ids))
        return dict(zip(ids, docs, strict=True))

    # ---- the write of a batch
    async def _write(
        self, docs: Mapping[tuple[str, str], Mapping[str, Op]], now: datetime, prefetched: Mapping[str, Doc] = {}
    ) -> None:
        gate = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def one(collection: str, doc_id: str, ops: Iterable[Op]) -> None:
            col = self.db[collection]
            async with gate:
                if doc_id in prefetched:  # read under the lock the caller holds
                    current = prefetched[doc_id]
                    update = merge(current, ops, now, self.retention)
                    if update is not None:
                        await col.update_one({"_id": doc_id}, update, upsert=True)
                    return
                async with doc_locks.hold(col, doc_id):
                    current = await col.find_one({"_id": doc_id}) or {}
                    update = merge(current, ops, now, self.retention)
                    if update is not None:
                        await col.update_one({"_id": doc_id}, update, upsert=True)

        await asyncio.gather(*(one(c, d, ops.values()) for (c, d), ops in docs.items()))

    # ---- volunteers: their own documents first, then the counters
    async def _volunteers(
        self, envs: Sequence[Envelope[Any]], positions: Mapping[str, Position], batch: Batch, now: datetime
    ) -> None:
        if not envs:
            return
        per_volunteer: dict[str, list[Envelope[Any]]] = {}
        for env in envs:
            per_volunteer.setdefault(env.data.volunteer_id, []).append(env)
        col = self.db[VOLUNTEER_STATS]
        # Optimistic: most volunteers of a batch are new (a registration wave); insert them in one call.
        fresh: dict[str, Doc] = {}
        fresh_fx: dict[str, list[tuple[str, list[Doc]]]] = {}
        for vid, events in per_volunteer.items():
            state = Membership()
            markers: Doc = {}
            done: list[tuple[str, list[Doc]]] = []
            for env in events:
                effects = state.step(env)
                if effects is not None:
                    markers[env.id] = self._marker(now, effects, positions.get(env.id))
                    done.append((env.id, effects))
            if markers:
                fresh[vid] = {"_id": vid, **state.doc_fields(), "_applied": markers}
                fresh_fx[vid] = done
        existing = set(per_volunteer) - set(fresh)
        if fresh:
            async with doc_locks.hold(col, *fresh):
                try:
                    await col.insert_many(list(fresh.values()), ordered=False)
                except BulkWriteError as exc:
                    errors = exc.details.get("writeErrors") or []
                    if any(e.get("code") != 11000 for e in errors):
                        raise
                    ids = list(fresh)
                    existing.update(ids[e["index"]] for e in errors)
        for vid, done in fresh_fx.items():
            if vid not in existing:
                for event_id, effects in done:
                    self._effects(batch, event_id, effects, positions.get(event_id))
        gate = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def one(vid: str) -> None:
            async with gate, doc_locks.hold(col, vid):
                current = await col.find_one({"_id": vid}) or {}
                applied: Mapping[str, Any] = current.get("_applied") or {}
                state = Membership.of(current)
                sets: Doc = {}
                for env in per_volunteer[vid]:
                    recorded = applied.get(env.id)
                    if isinstance(recorded, Mapping):
                        # written before (a crash, or a second copy of the event): repeat its effects where it was
                        # first read; the counters skip what they have
                        pos = recorded.get("pos")
                        where = Position(str(pos["k"]), int(pos["o"])) if isinstance(pos, Mapping) else None
                        self._effects(batch, env.id, recorded.get("fx"), where)
                        continue
                    effects = state.step(env)
                    if effects is not None:
                        sets[f"_applied.{env.id}"] = self._marker(now, effects, positions.get(env.id))
                        self._effects(batch, env.id, effects, positions.get(env.id))
                if sets:
                    update: Doc = {"$set": {**state.doc_fields(), **sets}}
                    unset = _pruned(applied, now, self.retention)
                    if unset:
                        update["$unset"] = unset
                    await col.update_one({"_id": vid}, update, upsert=True)

        await asyncio.gather(*(one(vid) for vid in sorted(existing)))

    @staticmethod
    def _marker(now: datetime, effects: list[Doc], position: Position | None) -> Doc:
        marker: Doc = {"at": now, "fx": effects}
        if position is not None:
            marker["pos"] = {"k": position.key, "o": position.offset}
        return marker

    @staticmethod
    def _effects(
        batch: Batch, event_id: str, effects: Iterable[Mapping[str, Any]] | None, position: Position | None
    ) -> None:
        for fx in effects or []:
            inc = {str(path).replace("/", "."): int(n) for path, n in (fx.get("i") or {}).items()}
            batch.inc(str(fx["c"]), str(fx["d"]), event_id, inc, {}, position)

    # ---- everything else: ops from the event alone
    def _ops(self, env: Envelope[Any], batch: Batch, position: Position | None) -> None:
        data = env.data
        if isinstance(data, UnitRegistered | UnitUpdated):
            self._unit(env, batch)
        elif isinstance(data, ActivityCompleted):
            self._completed(env.id, data, batch, position)
        elif isinstance(data, ServiceHoursCorrected):
            self._corrected(env.id, data, batch, position)
        elif isinstance(data, ActionPlanSubmitted):
            batch.inc(
                UNIT_STATS,
                f"{data.unit_id}:{data.year}",
                env.id,
                {},
                {
                    "unit_id": data.unit_id,
                    "year": data.year,
                    "action_plan_submitted_at": data.submitted_at,
                    "action_plan_late": data.late,
                },
            )
        elif isinstance(data, MonthlyReportSubmitted):
            year = int(data.month[:4])
            batch.inc(
                UNIT_STATS,
                f"{data.unit_id}:{year}",
                env.id,
                {},
                {
                    "unit_id": data.unit_id,
                    "year": year,
                    f"monthly_reports.{data.month}": data.submitted_at,
                    f"monthly_late.{data.month}": data.late,
                },
            )

    @staticmethod
    def _unit(env: Envelope[Any], batch: Batch) -> None:
        data: UnitSnapshot = env.data
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
        op = batch.op(UNITS_COL, data.unit_id, None)
        op.snapshot = Snapshot(data.version, fields, data.contact is not None, env.time)

    @staticmethod
    def _completed(event_id: str, data: ActivityCompleted, batch: Batch, position: Position | None) -> None:
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
        batch.inc(UNIT_STATS, f"{data.unit_id}:{year}", event_id, inc, {"unit_id": data.unit_id, "year": year})
        done = f"done.{field_key(data.activity_id)}"
        batch.inc(
            MONTH_STATS,
            f"{data.unit_id}:{month}",
            event_id,
            {
                "activities": 1,
                "hours_c": hours_c,
                "people_served": served,
                f"lines.{data.line_of_work}": 1,
                # hours by $inc (a later ServiceHoursCorrected adds to it), the rest by $set: idempotent, any order
                f"{done}.hours_c": hours_c,
            },
            {
                "unit_id": data.unit_id,
                "month": month,
                f"{done}.activity_id": data.activity_id,
                f"{done}.title": data.title,
                f"{done}.starts_at": data.starts_at,
                f"{done}.line_of_work": data.line_of_work,
                f"{done}.themes": list(data.themes),
                f"{done}.people_served": served,
                f"{done}.participants": len(data.participants),
            },
            position,
        )
        for person in data.participants:
            # The registration may not have arrived yet: the name from the activity stands in until it does.
            path = hours_field(person.volunteer_id)
            op = batch.op(VOLUNTEER_HOURS, hours_bucket(person.volunteer_id), event_id, position)
            op.inc[f"{path}.h"] = op.inc.get(f"{path}.h", 0) + centi(person.hours)
            op.inc[f"{path}.a"] = op.inc.get(f"{path}.a", 0) + 1
            op.set_if_absent.setdefault(f"{path}.n", person.display_name)

    @staticmethod
    def _corrected(event_id: str, data: ServiceHoursCorrected, batch: Batch, position: Position | None) -> None:
        when = to_shanghai(data.starts_at)
        year, quarter, month = when.year, quarter_of(when), month_key(when)
        delta = centi(data.hours) - centi(data.previous_hours)
        path = hours_field(data.volunteer_id)
        op = batch.op(VOLUNTEER_HOURS, hours_bucket(data.volunteer_id), event_id, position)
        op.inc[f"{path}.h"] = op.inc.get(f"{path}.h", 0) + delta
        batch.inc(
            UNIT_STATS,
            f"{data.unit_id}:{year}",
            event_id,
            {"hours_c": delta, f"quarter_hours_c.{quarter}": delta},
            {"unit_id": data.unit_id, "year": year},
        )
        batch.inc(
            MONTH_STATS,
            f"{data.unit_id}:{month}",
            event_id,
            {"hours_c": delta, f"done.{field_key(data.activity_id)}.hours_c": delta},
            {"unit_id": data.unit_id, "month": month},
            position,
        )


# ---------------------------------------------------------------- the consumer


class BatchConsumer(EventConsumer):
    """The shared consumer, handing a whole poll to :meth:`Projections.apply`.

    Poison messages go to the dead-letter topic as usual; if applying the batch fails for another reason than an
    infrastructure outage, the poll is handled event by event through the shared path (retries, dead letters),
    which the projections' markers make safe after a partial write. The shared ``_processed`` records are not
    written on the batch path: the projections' own markers de-duplicate (and cost no extra round trip).
    """

    def __init__(self, *, projections: Projections, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.projections = projections
        self.batches = 0  # polls applied as a batch, and their events (figures for the benchmark)
        self.batched_events = 0

    async def handle_records(self, records: Iterable[ConsumerRecord[Any, Any]]) -> None:
        records = list(records)
        envs: list[Envelope[Any]] = []
        positions: dict[str, Position] = {}
        contexts: list[Context] = []
        for record in records:
            headers = {k: (v.decode(errors="replace") if v else "") for k, v in (record.headers or ())}
            if "traceparent" in headers:
                contexts.append(propagate.extract(headers))
            try:
                env = parse_envelope(record.value or b"")
            except EnvelopeError as exc:
                await self.dead_letter(record, reason=exc.reason, error=exc.detail, attempts=0)
                continue
            if env.type not in self.handlers:
                CONSUMED.labels(self.group, env.type, "ignored").inc()
                continue
            envs.append(env)
            positions.setdefault(env.id, Position(field_key(f"{record.topic}|{record.partition}"), record.offset))
        if not envs:
            return
        # One span for the batch: a child of the first event's trace (a lone event — the usual case when the
        # projections keep up — continues its request's trace), linked to the traces of all the others.
        spans = [trace.get_current_span(ctx).get_span_context() for ctx in contexts]
        links = [trace.Link(span) for span in spans if span.is_valid]
        with tracer.start_as_current_span(
            f"{len(envs)} events process",
            context=contexts[0] if contexts else None,
            kind=trace.SpanKind.CONSUMER,
            links=links[1:],
            attributes={"messaging.consumer.group.name": self.group, "messaging.batch.message_count": len(envs)},
        ):
            await self._apply(records, envs, positions)

    async def _apply(
        self, records: list[ConsumerRecord[Any, Any]], envs: list[Envelope[Any]], positions: dict[str, Position]
    ) -> None:
        try:
            await self.projections.apply(envs, positions)
        except TRANSIENT as exc:
            await asyncio.sleep(0.5)
            raise InfrastructureDown(str(exc)) from exc
        except Exception as exc:
            log.warning("batch of %d events failed (%r); applying them one by one", len(envs), exc)
            for record in records:
                await self.handle_record(record)
            return
        self.batches += 1
        self.batched_events += len(envs)
        for env in envs:
            CONSUMED.labels(self.group, env.type, "ok").inc()


def register(service: Service, consumer_name: str = "projections") -> Projections:
    """One consumer group on the four streams feeding the projections, applying each poll as a batch."""
    settings = service.settings
    retention = DEFAULT_RETENTION
    batch_size = settings.consumer_batch_size
    if isinstance(settings, ReportingSettings):
        retention = timedelta(hours=settings.projection_marker_retention_hours)
        batch_size = settings.projections_batch_size
    projections = Projections(service.db, retention)
    consumer = BatchConsumer(
        projections=projections,
        service=service.name,
        name=consumer_name,
        settings=settings.model_copy(update={"consumer_batch_size": batch_size}),
        db=service.db,
        streams=STREAMS,
    )
    projections.register(consumer)
    consumer.attach(service.broker)
    service.consumers.append(consumer)
    return projections
