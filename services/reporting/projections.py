"""Read models built from every stream (units, volunteers, activities, reports), a consumer poll at a time, by
atomic upserts in MongoDB transactions: correct with any number of replicas in one consumer group.

A poll is applied in chunks; each chunk is one transaction (:func:`shared.aggregates.in_transaction`) that

1. reads, in the transaction's snapshot, what the decision needs: which of its activity events were applied
   already (``applied_events``), the volunteers' membership and the units' snapshot versions;
2. decides in memory (pure code): every event's effects, merged per target document (``$inc`` summed, ``$set``
   later wins);
3. writes them as one ``bulk_write`` of upserts per collection, with the ids of the activity events it applied.

A chunk is written whole or not at all. When two members apply the same events — a rebalance hands a partition to
another member while its old owner is still writing the poll — both transactions write the same documents (the
``applied_events`` ids first of all): MongoDB aborts one of them with a ``TransientTransactionError``, it runs again
on a fresh snapshot, finds the events applied and writes nothing for them. Nothing counts twice, nothing is lost,
and no per-process lock or memory decides anything.

What makes each kind of event idempotent (a redelivery, or a second copy the producer's outbox published):

- ``ActivityCompleted``, ``ServiceHoursCorrected``, ``PublicityPublished``: their event id in ``applied_events``,
  written in the same transaction as their counters and removed by a TTL index after :data:`APPLIED_RETENTION` —
  longer than any copy can come back (a dead letter stays 30 days on its topic; a replay drops the projections
  first).
- Volunteer events: the volunteer's ``membership_version`` (the registry's version): an event not newer than it
  changes nothing, whenever it comes; the unit headcounts move in the same transaction as the membership.
- Unit snapshots: only a newer ``version`` is applied.
- Submissions: ``$set`` of the submission's facts (repeating them changes nothing).

Order independence: every write is an upsert, so an ``ActivityCompleted`` naming a volunteer (or a unit) the
projection has not seen yet counts for them, and the later registration fills in the rest.

Membership: the volunteer's document remembers the units it is counted in (``counted_units``); every volunteer
event recomputes that set and moves the unit counters by the difference (:class:`Membership`, pure).
"""

from __future__ import annotations

import functools
import logging
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import ConsumerRecord
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.aggregates import backoff, in_transaction
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
    PublicityPublished,
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
from shared.messaging.outbox import Outbox, Transaction
from shared.metrics import CONSUMED
from shared.service import Service
from shared.storage import Doc, utcnow

from .settings import ReportingSettings
from .store import (
    APPLIED,
    APPLIED_RETENTION,
    MONTH_STATS,
    UNIT_STATS,
    VOLUNTEER_BUCKETS,
    VOLUNTEER_HOURS,
    VOLUNTEER_STATS,
    centi,
)
from .store import UNITS as UNITS_COL

log = logging.getLogger("stvs.reporting.projections")
tracer = trace.get_tracer("stvs.reporting.projections")

STREAMS = [UNITS, VOLUNTEERS, ACTIVITIES, REPORTS]
VOLUNTEER_EVENTS = (VolunteerRegistered, VolunteerUpdated, VolunteerJoinedUnit, VolunteerLeftUnit)
# deduplicated by their id in ``applied_events``
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
)
# Bound of one transaction, counted before merging (an activity counts one per participant): a full poll of
# 5,000 activities (~65,000 participations) fits, so that its bucket writes merge into ~1,000; a bigger poll is
# split, so that a transaction stays well inside MongoDB's transaction lifetime (60 s by default).
CHUNK_WRITES = 100_000
# Written last in a transaction: the documents many events share, so that the window in which another member's
# transaction can conflict with them is short.
# How long a poll waits for events (and FastStream then sleeps, when none came): the freshness of an idle service.
POLL_WAIT_MS = 20
WRITE_ORDER = (VOLUNTEER_STATS, VOLUNTEER_HOURS, MONTH_STATS, UNIT_STATS, UNITS_COL)


RACES = 8  # a chunk decided again after losing an insert race to another member, at most this often


def _duplicate_only(exc: DuplicateKeyError | BulkWriteError) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    errors = exc.details.get("writeErrors") or []
    return bool(errors) and all(e.get("code") == 11000 for e in errors)


def field_key(value: str) -> str:
    """An id usable as a field name ("." and a leading "$" would be read as paths and operators)."""
    return value.replace(".", "_").replace("$", "_")


def hours_bucket(volunteer_id: str) -> str:
    """``_id`` of the ``volunteer_hours`` document holding this volunteer's service record."""
    return f"b{zlib.crc32(volunteer_id.encode()) % VOLUNTEER_BUCKETS:04d}"


def hours_field(volunteer_id: str) -> str:
    return f"v.{field_key(volunteer_id)}"


# ---------------------------------------------------------------- updates and their merge (pure)


@dataclass
class Update:
    """The merged update of one document: ``$inc`` summed, ``$set`` later wins, ``$min`` the least (whatever the
    order the events come in)."""

    inc: dict[str, int] = field(default_factory=dict)
    set: Doc = field(default_factory=dict)
    min: Doc = field(default_factory=dict)

    def least(self, path: str, value: Any) -> None:
        self.min[path] = min(self.min[path], value) if path in self.min else value

    def operators(self) -> Doc:
        out: Doc = {}
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
        self.inserts: dict[str, list[Doc]] = {}

    def update(self, collection: str, doc_id: str) -> Update:
        return self.docs.setdefault((collection, doc_id), Update())

    def inc(self, collection: str, doc_id: str, inc: Mapping[str, int], sets: Mapping[str, Any] = {}) -> None:
        update = self.update(collection, doc_id)
        for path, value in inc.items():
            update.inc[path] = update.inc.get(path, 0) + value
        update.set.update(sets)

    def writes(self, collection: str) -> list[UpdateOne]:
        return [
            UpdateOne({"_id": doc_id}, update.operators(), upsert=True)
            for (name, doc_id), update in self.docs.items()
            if name == collection and update.operators()
        ]


# ---------------------------------------------------------------- volunteer membership (a pure step)

MEMBERSHIP_FIELDS = {"membership_version": 1, "status": 1, "unit_ids": 1, "counted_units": 1}


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

    def doc_fields(self) -> Doc:
        return {
            **self.fields,
            "membership_version": self.version,
            "unit_ids": sorted(self.unit_ids),
            "counted_units": sorted(self.counted),
        }


# ---------------------------------------------------------------- unit snapshots (a pure step)

UNIT_FIELDS = {"version": 1, "contact_given_at": 1}


def unit_fields(data: UnitSnapshot) -> Doc:
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


def apply_snapshots(current: Mapping[str, Any], envs: Iterable[Envelope[Any]]) -> Doc:
    """The ``$set`` that brings a unit document from ``current`` to the newest of these snapshots (may be empty)."""
    version = int(current.get("version") or 0)
    contact_given = bool(current.get("contact_given_at"))
    sets: Doc = {}
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
        path = hours_field(person.volunteer_id)
        batch.inc(
            VOLUNTEER_HOURS, hours_bucket(person.volunteer_id), {f"{path}.h": centi(person.hours), f"{path}.a": 1}
        )
        batch.update(VOLUNTEER_HOURS, hours_bucket(person.volunteer_id)).least(f"{path}.n", person.display_name)


def corrected_effects(data: ServiceHoursCorrected, batch: Batch) -> None:
    when = to_shanghai(data.starts_at)
    year, quarter, month = when.year, quarter_of(when), month_key(when)
    delta = centi(data.hours) - centi(data.previous_hours)
    batch.inc(VOLUNTEER_HOURS, hours_bucket(data.volunteer_id), {f"{hours_field(data.volunteer_id)}.h": delta})
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


def publicity_effects(data: PublicityPublished, batch: Batch) -> None:
    """People served, as the unit's publicity says after the activity (again when it corrects the figure)."""
    if data.starts_at is None:  # published before the contract carried the start: no month to count it in
        log.warning("publicity of activity %s without its start: people served not counted", data.activity_id)
        return
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


# ---------------------------------------------------------------- the projections


class Projections:
    """The event handlers, over one database (used by the service and by the replay command)."""

    def __init__(self, db: AsyncDatabase[Doc], *, chunk_writes: int = CHUNK_WRITES) -> None:
        self.db = db
        self.outbox = Outbox(db, None)  # no events of its own: only for its transactions
        self.chunk_writes = chunk_writes

    def register(self, consumer: EventConsumer) -> None:
        consumer.on(*HANDLED)(self.handle)

    async def handle(self, env: Envelope[Any]) -> None:
        """One event (the consumer's per-event path, used when a batch failed)."""
        await self.apply([env])

    async def apply(self, envs: Sequence[Envelope[Any]]) -> None:
        """Apply events (in delivery order): idempotent, whoever else applies them too, whenever."""
        unique: dict[str, Envelope[Any]] = {}
        for env in envs:
            if isinstance(env.data, HANDLED):
                unique.setdefault(env.id, env)  # the same event twice in one poll counts once
        for chunk in chunks(list(unique.values()), self.chunk_writes):
            for attempt in range(RACES):
                try:
                    await in_transaction(self.outbox, functools.partial(self._apply, chunk))
                    break
                except (DuplicateKeyError, BulkWriteError) as exc:
                    # Another member inserted a document this transaction inserts (a volunteer, an applied id)
                    # and committed first: a server may say so by a duplicate key rather than a write conflict.
                    # Decided again on a fresh snapshot, the chunk finds it there.
                    if not _duplicate_only(exc) or attempt == RACES - 1:
                        raise
                    await backoff(attempt)

    async def _apply(self, envs: Sequence[Envelope[Any]], tx: Transaction) -> None:
        """One chunk in one transaction: read what deciding needs, decide, write every upsert."""
        session = tx.session
        marked = [e.id for e in envs if isinstance(e.data, MARKED)]
        applied: set[str] = set()
        if marked:
            cursor = self.db[APPLIED].find({"_id": {"$in": marked}}, {"_id": 1}, session=session)
            applied = {str(d["_id"]) async for d in cursor}
        batch = Batch()
        await self._volunteers([e for e in envs if isinstance(e.data, VOLUNTEER_EVENTS)], batch, session)
        await self._units([e for e in envs if isinstance(e.data, UnitRegistered | UnitUpdated)], batch, session)
        fresh: list[str] = []
        for env in envs:
            data = env.data
            if isinstance(data, MARKED):
                if env.id in applied:
                    continue
                fresh.append(env.id)
                if isinstance(data, ActivityCompleted):
                    completed_effects(data, batch)
                elif isinstance(data, PublicityPublished):
                    publicity_effects(data, batch)
                else:
                    corrected_effects(data, batch)
            elif isinstance(data, ActionPlanSubmitted | MonthlyReportSubmitted):
                submission_effects(data, batch)
        if fresh:
            now = utcnow()
            await self.db[APPLIED].insert_many([{"_id": i, "at": now} for i in fresh], ordered=False, session=session)
        for collection in WRITE_ORDER:
            if batch.inserts.get(collection):
                await self.db[collection].insert_many(batch.inserts[collection], ordered=False, session=session)
            writes = batch.writes(collection)
            if writes:
                await self.db[collection].bulk_write(writes, ordered=False, session=session)

    async def _volunteers(self, envs: Sequence[Envelope[Any]], batch: Batch, session: Any) -> None:
        if not envs:
            return
        per_volunteer: dict[str, list[Envelope[Any]]] = {}
        for env in envs:
            per_volunteer.setdefault(env.data.volunteer_id, []).append(env)
        cursor = self.db[VOLUNTEER_STATS].find(
            {"_id": {"$in": list(per_volunteer)}}, MEMBERSHIP_FIELDS, session=session
        )
        current = {str(d["_id"]): d async for d in cursor}
        for vid, events in per_volunteer.items():
            state = Membership.of(current.get(vid) or {})
            changed = False
            for env in sorted(events, key=lambda e: int(e.data.version)):
                effects = state.step(env)
                if effects is None:
                    continue
                changed = True
                for unit, inc in effects:
                    batch.inc(UNITS_COL, unit, inc)
            if changed and vid in current:
                batch.update(VOLUNTEER_STATS, vid).set.update(state.doc_fields())
            elif changed:  # new (a registration wave: most of them): an insert costs less than an upsert
                batch.inserts.setdefault(VOLUNTEER_STATS, []).append({"_id": vid, **state.doc_fields()})

    async def _units(self, envs: Sequence[Envelope[Any]], batch: Batch, session: Any) -> None:
        if not envs:
            return
        per_unit: dict[str, list[Envelope[Any]]] = {}
        for env in envs:
            per_unit.setdefault(env.data.unit_id, []).append(env)
        cursor = self.db[UNITS_COL].find({"_id": {"$in": list(per_unit)}}, UNIT_FIELDS, session=session)
        current = {str(d["_id"]): d async for d in cursor}
        for uid, events in per_unit.items():
            sets = apply_snapshots(current.get(uid) or {}, sorted(events, key=lambda e: int(e.data.version)))
            if sets:
                batch.update(UNITS_COL, uid).set.update(sets)


# ---------------------------------------------------------------- the consumer


class BatchConsumer(EventConsumer):
    """The shared consumer, handing a whole poll to :meth:`Projections.apply`.

    Poison messages go to the dead-letter topic as usual; if applying the poll fails for another reason than an
    infrastructure outage, it is handled event by event through the shared path (retries, dead letters), which the
    projections' idempotency makes safe. Offsets are committed once the poll is applied (at least once).
    """

    def __init__(self, *, projections: Projections, **kwargs: Any) -> None:
        # an idle service sees an event within POLL_WAIT_MS (FastStream sleeps as long as it waited on an empty poll)
        super().__init__(poll_wait_ms=POLL_WAIT_MS, **kwargs)
        self.projections = projections
        self.batches = 0  # polls applied as a batch, and their events (figures for the benchmark)
        self.batched_events = 0

    async def handle_records(self, records: Iterable[ConsumerRecord[Any, Any]]) -> None:
        records = list(records)
        envs: list[Envelope[Any]] = []
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
            await self._apply(records, envs)

    async def _apply(self, records: list[ConsumerRecord[Any, Any]], envs: list[Envelope[Any]]) -> None:
        try:
            await self.projections.apply(envs)
        except TRANSIENT as exc:
            await self._sleep(0.5)
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
    batch_size = settings.consumer_batch_size
    if isinstance(settings, ReportingSettings):
        batch_size = settings.projections_batch_size
    projections = Projections(service.db)
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


__all__ = ["APPLIED_RETENTION", "Projections", "register"]
