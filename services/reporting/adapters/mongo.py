"""The read models and this service's own records in MongoDB: documents ↔ records, indexes, batched writes.

Projection collections (rebuilt by ``python -m services.reporting.replay``), one per record of
:mod:`..domain.projection`, with the same ``_id`` — except ``volunteer_hours``: its documents are buckets (``_id`` =
the volunteer id hashed, :func:`hours_bucket`) holding ``v.<id>`` = {h, a, n} per volunteer. Buckets, not a
document per volunteer: a poll of 5,000 activities (60,000 participations) is then about a thousand writes, not
60,000. ``applied_events``: _id = id of an activity event applied (written in the same transaction as its
effects), ``at``; a TTL index removes it after :data:`APPLIED_RETENTION`.

A chunk of the projection is one transaction (:func:`shared.aggregates.in_transaction`): its reads in the
transaction's snapshot, then one ``bulk_write`` of upserts per collection. When two members write the same
documents, MongoDB aborts one transaction (``TransientTransactionError``) or refuses its insert (duplicate key): it
is decided again on a fresh snapshot. Kept by this service, not rebuilt: ``submissions`` (outbox aggregate of
reports) and ``certificates``.
"""

from __future__ import annotations

import asyncio
import functools
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.reporting.domain.projection import (
    MONTH_STATS,
    PROJECTIONS,
    UNIT_STATS,
    UNITS,
    VOLUNTEER_HOURS,
    VOLUNTEER_STATS,
    Batch,
    Decision,
    Membership,
    UnitVersion,
    Update,
    field_key,
)
from services.reporting.domain.vocabulary import UnitKind
from services.reporting.usecases.ports import AlreadyRecorded, ProjectionWrite
from shared.aggregates import backoff, in_transaction
from shared.contracts.envelope import Envelope
from shared.messaging.outbox import Outbox, Transaction
from shared.storage import Doc, Indexes, utcnow

APPLIED = "applied_events"
SUBMISSIONS = "submissions"
CERTIFICATES = "certificates"
# Changing it needs a replay (the bucket of a volunteer is part of the stored layout).
VOLUNTEER_BUCKETS = 1024
# How long an applied activity event's id is remembered: longer than any copy of it can come back (a dead letter
# stays 30 days on its topic and can be re-published until then; a redelivery or an outbox's second copy comes
# within minutes). A replay drops the projections, these ids included, and starts from the first event.
APPLIED_RETENTION = timedelta(days=35)
# Written last in a transaction: the documents many events share, so that the window in which another member's
# transaction can conflict with them is short.
WRITE_ORDER = (VOLUNTEER_STATS, VOLUNTEER_HOURS, MONTH_STATS, UNIT_STATS, UNITS)
RACES = 8  # a chunk decided again after losing an insert race to another member, at most this often
MEMBERSHIP_FIELDS = {"membership_version": 1, "status": 1, "unit_ids": 1, "counted_units": 1}
UNIT_FIELDS = {"version": 1, "contact_given_at": 1}

__all__ = ["APPLIED", "CERTIFICATES", "PROJECTIONS", "SUBMISSIONS", "UNITS", "UNIT_STATS", "VOLUNTEER_STATS"]


def indexes() -> Indexes:
    """The reads of the queries (subtrees, a year's or a month's figures of many units) and the TTL of applied ids."""
    found = Indexes()
    found.add(UNITS, "ancestors")
    found.add(UNITS, "kind")
    found.add(UNIT_STATS, "year", "unit_id")
    found.add(MONTH_STATS, "month", "unit_id")
    found.add(APPLIED, "at", expire_after_s=int(APPLIED_RETENTION.total_seconds()))
    found.add(SUBMISSIONS, "kind", "period", "unit_id")
    return found


def hours_bucket(volunteer_id: str) -> str:
    """``_id`` of the ``volunteer_hours`` document holding this volunteer's service record."""
    return f"b{zlib.crc32(volunteer_id.encode()) % VOLUNTEER_BUCKETS:04d}"


def hours_field(volunteer_id: str) -> str:
    return f"v.{field_key(volunteer_id)}"


def _duplicate_only(exc: DuplicateKeyError | BulkWriteError) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    errors = exc.details.get("writeErrors") or []
    return bool(errors) and all(e.get("code") == 11000 for e in errors)


def _membership(doc: Doc) -> Membership:
    return Membership(
        version=int(doc.get("membership_version") or 0),
        status=str(doc.get("status") or "active"),
        unit_ids=set(doc.get("unit_ids") or []),
        counted=set(doc.get("counted_units") or []),
    )


def _bucketed(batch: Batch) -> list[tuple[str, Update]]:
    """The volunteers' hours records merged into their buckets' updates (paths ``v.<id>.<field>``)."""
    buckets: dict[str, Update] = {}
    for volunteer_id, update in batch.updates(VOLUNTEER_HOURS):
        bucket = hours_bucket(volunteer_id)
        merged = buckets.get(bucket)
        if merged is None:
            merged = buckets[bucket] = Update()
        prefix = hours_field(volunteer_id)
        for path, number in update.inc.items():
            merged.inc[f"{prefix}.{path}"] = number
        for path, value in update.set.items():
            merged.set[f"{prefix}.{path}"] = value
        for path, value in update.min.items():
            merged.min[f"{prefix}.{path}"] = value
    return list(buckets.items())


def writes(batch: Batch, collection: str) -> list[UpdateOne]:
    """A batch's upserts of one collection (one per document)."""
    updates = _bucketed(batch) if collection == VOLUNTEER_HOURS else batch.updates(collection)
    return [UpdateOne({"_id": doc_id}, update.operators(), upsert=True) for doc_id, update in updates]


class _ChunkWrite:
    """:class:`ProjectionWrite` in one MongoDB transaction."""

    def __init__(self, db: AsyncDatabase[Doc], session: AsyncClientSession) -> None:
        self.db = db
        self.session = session

    async def applied(self, event_ids: Sequence[str]) -> set[str]:
        cursor = self.db[APPLIED].find({"_id": {"$in": list(event_ids)}}, {"_id": 1}, session=self.session)
        return {str(d["_id"]) async for d in cursor}

    async def memberships(self, volunteer_ids: Sequence[str]) -> dict[str, Membership]:
        query = {"_id": {"$in": list(volunteer_ids)}}
        cursor = self.db[VOLUNTEER_STATS].find(query, MEMBERSHIP_FIELDS, session=self.session)
        return {str(d["_id"]): _membership(d) async for d in cursor}

    async def unit_versions(self, unit_ids: Sequence[str]) -> dict[str, UnitVersion]:
        cursor = self.db[UNITS].find({"_id": {"$in": list(unit_ids)}}, UNIT_FIELDS, session=self.session)
        return {
            str(d["_id"]): UnitVersion(int(d.get("version") or 0), bool(d.get("contact_given_at")))
            async for d in cursor
        }

    async def save(self, decision: Decision) -> None:
        if decision.fresh:
            now = utcnow()
            applied = [{"_id": i, "at": now} for i in decision.fresh]
            await self.db[APPLIED].insert_many(applied, ordered=False, session=self.session)
        for collection in WRITE_ORDER:
            if decision.batch.inserts.get(collection):
                docs = decision.batch.inserts[collection]
                await self.db[collection].insert_many(docs, ordered=False, session=self.session)
            updates = writes(decision.batch, collection)
            if updates:
                await self.db[collection].bulk_write(updates, ordered=False, session=self.session)


class MongoProjectionStore:
    """:class:`..usecases.ports.ProjectionStore` on MongoDB transactions."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.outbox = Outbox(db, None)  # no events of its own: only for its transactions

    async def in_transaction(self, work: Callable[[ProjectionWrite], Awaitable[None]]) -> None:
        for attempt in range(RACES):
            try:
                await in_transaction(self.outbox, functools.partial(self._run, work))
                return
            except (DuplicateKeyError, BulkWriteError) as exc:
                # Another member inserted a document this transaction inserts (a volunteer, an applied id) and
                # committed first: a server may say so by a duplicate key rather than a write conflict. Decided
                # again on a fresh snapshot, the chunk finds it there.
                if not _duplicate_only(exc) or attempt == RACES - 1:
                    raise
                await backoff(attempt)

    async def _run(self, work: Callable[[ProjectionWrite], Awaitable[None]], tx: Transaction) -> None:
        await work(_ChunkWrite(self.db, tx.session))

    async def drop(self) -> None:
        for name in (*PROJECTIONS, APPLIED):
            await self.db.drop_collection(name)


class MongoReadModels:
    """:class:`..usecases.ports.ReadModels`: indexed queries of the projections."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db

    async def province_id(self) -> str | None:
        province = await self.db[UNITS].find_one({"kind": UnitKind.PROVINCE_CORPS.value}, {"_id": 1})
        return None if province is None else str(province["_id"])

    async def unit(self, unit_id: str) -> Doc | None:
        found: Doc | None = await self.db[UNITS].find_one({"_id": unit_id})
        return found

    async def all_units(self) -> dict[str, Doc]:
        """Every unit the projection knows a snapshot of (1,500 in a province)."""
        return {str(d["_id"]): d async for d in self.db[UNITS].find({"kind": {"$exists": True}})}

    async def subtree_units(self, root_id: str) -> dict[str, Doc]:
        """The unit and every unit below it (by ``_id`` and the indexed ``ancestors``), those with a snapshot."""
        query = {"$or": [{"_id": root_id}, {"ancestors": root_id}]}
        return {str(d["_id"]): d async for d in self.db[UNITS].find(query) if d.get("kind")}

    async def year_figures(self, year: int, unit_ids: Sequence[str] | None) -> dict[str, Doc]:
        return await self._figures(UNIT_STATS, "year", year, unit_ids)

    async def month_figures(self, month: str, unit_ids: Sequence[str] | None) -> dict[str, Doc]:
        return await self._figures(MONTH_STATS, "month", month, unit_ids)

    async def _figures(self, collection: str, key: str, value: Any, unit_ids: Sequence[str] | None) -> dict[str, Doc]:
        """The documents of these units (None: of every unit) for one year or month, by unit id: one indexed query."""
        query: Doc = {key: value} if unit_ids is None else {key: value, "unit_id": {"$in": list(unit_ids)}}
        return {str(d["unit_id"]): d async for d in self.db[collection].find(query)}

    async def volunteer(self, volunteer_id: str) -> tuple[Doc | None, Doc]:
        path = hours_field(volunteer_id)
        doc, bucket = await asyncio.gather(
            self.db[VOLUNTEER_STATS].find_one({"_id": volunteer_id}),
            self.db[VOLUNTEER_HOURS].find_one({"_id": hours_bucket(volunteer_id)}, {path: 1}),
        )
        served: Doc = ((bucket or {}).get("v") or {}).get(path[2:]) or {}
        return doc, served


class MongoSubmissions:
    """:class:`..usecases.ports.SubmissionStore`: the ``submissions`` aggregate, its events through the outbox."""

    def __init__(self, db: AsyncDatabase[Doc], outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    async def add(self, doc: Doc, event: Envelope[Any]) -> None:
        try:
            await self.outbox.insert_one(SUBMISSIONS, doc, [event])
        except DuplicateKeyError as exc:
            raise AlreadyRecorded(str(doc["_id"])) from exc

    async def get(self, submission_id: str) -> Doc | None:
        found: Doc | None = await self.db[SUBMISSIONS].find_one({"_id": submission_id}, {"_outbox": 0})
        return found

    async def update(self, submission_id: str, expected: Doc, fields: Doc, event: Envelope[Any]) -> bool:
        guard = {k: {"$exists": False} if v is None else v for k, v in expected.items()}
        result = await self.outbox.update_one(SUBMISSIONS, {"_id": submission_id, **guard}, {"$set": fields}, [event])
        return bool(result.matched_count)

    async def of_period(self, kind: str, period: str, unit_ids: Sequence[str] | None) -> dict[str, Doc]:
        """One indexed query (kind, period); the versions' content is left out (a listing shows none of it)."""
        query: Doc = {"kind": kind, "period": period}
        if unit_ids is not None:
            query["unit_id"] = {"$in": list(unit_ids)}
        shown = {"_outbox": 0, "versions": 0, "report": 0, "text": 0}
        return {str(d["unit_id"]): d async for d in self.db[SUBMISSIONS].find(query, shown)}


class MongoCertificates:
    """:class:`..usecases.ports.CertificateStore`: issued certificates by number."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db

    async def add(self, certificate: Doc) -> None:
        await self.db[CERTIFICATES].insert_one(certificate)

    async def get(self, number: str) -> Doc | None:
        found: Doc | None = await self.db[CERTIFICATES].find_one({"_id": number})
        return found
