"""The notifier's storage port on MongoDB for the notices, the unit copies, the subscriptions and the log's readers
(``usecases.ports``: ``NoticeStore``, ``SubscriptionStore``, ``InboxStore``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.notifier.domain.reviews import ReportReview
from services.notifier.usecases.ports import Digest, NotificationFilter, UnitCopy
from shared import clock
from shared.calendar import to_shanghai
from shared.identity import Identity
from shared.scope import Reach
from shared.storage import Doc
from shared.unit_paths import SCOPE_UNITS
from shared.unit_paths import reach as scope_reach

from .mongo import (
    ACTIVITIES,
    DIGESTS,
    NOTIFICATIONS,
    REVIEWS,
    SUBSCRIPTIONS,
    UNITS,
    VOLUNTEERS,
    change,
    log_notification,
    log_webhooks,
    public_notification,
    unit_copy,
    unit_fields,
    unpark,
    upsert,
)

log = logging.getLogger("stvs.notifier.store")
SNAPSHOT_FIELDS = ("name", "status", "kind", "version", "contact")


class SubscriptionCache:
    """The subscribers of an event type: read for every event by default (an indexed query on ``event_types``), so
    a subscription created, paused or deleted through any replica counts at once on every replica. With
    ``ttl_s`` > 0 the whole list is kept that long in this process instead (a replica then learns of another's
    change only when it re-reads)."""

    def __init__(self, db: AsyncDatabase[Doc], ttl_s: float) -> None:
        self.col = db[SUBSCRIPTIONS]
        self.ttl_s = ttl_s
        self._docs: list[Doc] = []
        self._at = float("-inf")

    def invalidate(self) -> None:
        self._at = float("-inf")

    async def all(self) -> list[Doc]:
        if time.monotonic() - self._at >= self.ttl_s:
            self._docs = [d async for d in self.col.find({})]
            self._at = time.monotonic()
        return self._docs

    async def wanting(self, event_type: str) -> list[Doc]:
        if self.ttl_s <= 0:
            return [d async for d in self.col.find({"event_types": event_type})]
        return [d for d in await self.all() if event_type in d.get("event_types", ())]


class MongoNotices:
    def __init__(self, db: AsyncDatabase[Doc], subscriptions: SubscriptionCache) -> None:
        self.db = db
        self.cache = subscriptions

    # -- units
    async def change_unit(self, unit_id: str, decide: Callable[[UnitCopy | None], UnitCopy | None]) -> bool:
        def fields(doc: Doc | None) -> Doc | None:
            copy = decide(unit_copy(doc) if doc is not None else None)
            return unit_fields(copy) if copy is not None else None

        return await change(self.db[UNITS], unit_id, fields)

    async def unit(self, unit_id: str) -> UnitCopy | None:
        doc = await self.db[UNITS].find_one({"_id": unit_id})
        if doc is None:
            return None
        try:
            return unit_copy(doc)
        except (ValueError, TypeError, KeyError):  # its name and contact still serve a notice
            log.warning("unit %s has unreadable obligation facts; read without them", unit_id)
            return unit_copy({"_id": unit_id, **{k: doc.get(k) for k in SNAPSHOT_FIELDS}})

    # -- returned reports
    async def change_review(self, review_id: str, decide: Callable[[ReportReview | None], ReportReview | None]) -> bool:
        def fields(doc: Doc | None) -> Doc | None:
            review = decide(_review(doc) if doc is not None else None)
            return _review_fields(review) if review is not None else None

        return await change(self.db[REVIEWS], review_id, fields)

    async def open_reviews(self) -> list[ReportReview]:
        return [_review(doc) async for doc in self.db[REVIEWS].find({"returned_at": {"$ne": None}})]

    # -- notices
    async def log_notice(self, doc: Doc, *, queue: bool) -> bool:
        return await log_notification(self.db, doc, queue=queue)

    async def log_webhooks(self, docs: list[Doc], entries: list[Doc]) -> int:
        return await log_webhooks(self.db, docs, entries)

    async def subscribers(self, event_type: str) -> list[Doc]:
        return await self.cache.wanting(event_type)

    def subscriptions_changed(self) -> None:
        self.cache.invalidate()

    # -- the province office's digests
    async def add_to_digest(self, deadline_id: str, unit_id: str, entry: Doc, title: str, due_at: datetime) -> None:
        fields = {f"units.{unit_id}": entry, "title": title, "due_at": due_at}
        # Listed once: the filter refuses a digest that lists the unit already (the upsert's insert then collides).
        await upsert(
            self.db[DIGESTS],
            {"_id": deadline_id, f"units.{unit_id}": {"$exists": False}},
            {"$set": {**fields, "last_added_at": clock.now()}},
        )

    async def digests(self) -> list[Digest]:
        return [
            Digest(
                deadline_id=doc["_id"],
                title=str(doc.get("title", doc["_id"])),
                due_at=doc["due_at"],
                units=doc.get("units") or {},
                batches=doc.get("batches"),
                last_added_at=doc.get("last_added_at"),
            )
            async for doc in self.db[DIGESTS].find({})
        ]

    async def logged_units(self, note_id: str) -> list[str] | None:
        logged = await self.db[NOTIFICATIONS].find_one({"_id": note_id}, {"unit_ids": 1})
        return list(logged["unit_ids"]) if logged is not None else None

    async def mark_digest(self, digest: Digest, listed: list[str], batch: int) -> None:
        marks: dict[str, Any] = {f"units.{u}.batch": batch for u in listed}
        flushed = {"_id": digest.deadline_id, "batches": digest.batches}
        await self.db[DIGESTS].update_one(flushed, {"$set": {**marks, "batches": batch}})

    # -- activity and volunteer copies
    async def publish_activity(self, activity_id: str, fields: Doc) -> None:
        # One write, so a reader never sees the copy without its status. A copy of the publication delivered again
        # after the completion or the cancellation (a redelivery, a replay) must not bring the activity back: the
        # status only moves forward, so a finished copy matches nothing, its insert collides, and only the fields
        # are set.
        try:
            await self.db[ACTIVITIES].update_one(
                {"_id": activity_id, "status": {"$nin": ["completed", "cancelled"]}},
                {"$set": {**fields, "status": "published"}},
                upsert=True,
            )
        except DuplicateKeyError:
            await self.update_activity(activity_id, fields)

    async def update_activity(self, activity_id: str, fields: Doc) -> None:
        col = self.db[ACTIVITIES]
        for _ in range(3):  # two upserts of a new document at once: one inserts, the other's insert collides
            try:
                await col.update_one({"_id": activity_id}, {"$set": fields}, upsert=True)
                return
            except DuplicateKeyError:
                continue

    async def save_volunteer(self, volunteer_id: str, display_name: str, version: int) -> None:
        fields = {"display_name": display_name, "version": version}
        # Newest version wins: an older (or redelivered) snapshot matches nothing and its insert collides.
        newer_or_none = {"$or": [{"version": {"$lte": version}}, {"version": {"$exists": False}}]}
        await upsert(self.db[VOLUNTEERS], {"_id": volunteer_id, **newer_or_none}, {"$set": fields})

    async def volunteer_names(self, volunteer_ids: Sequence[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        async for doc in self.db[VOLUNTEERS].find({"_id": {"$in": list(volunteer_ids)}}, {"display_name": 1}):
            if doc.get("display_name"):
                names[str(doc["_id"])] = str(doc["display_name"])
        return names

    # -- subscriptions
    async def add_subscription(self, doc: Doc) -> None:
        await self.db[SUBSCRIPTIONS].insert_one(doc)

    async def list_subscriptions(self) -> list[Doc]:
        return [d async for d in self.db[SUBSCRIPTIONS].find({}).sort("created_at", 1)]

    async def delete_subscription(self, sub_id: str) -> bool:
        result = await self.db[SUBSCRIPTIONS].delete_one({"_id": sub_id})
        return bool(result.deleted_count)

    async def resume_subscription(self, sub_id: str) -> Doc | None:
        fields = {"status": "active", "paused_at": None, "failing_since": None, "retry_at": None, "last_error": None}
        return await self.db[SUBSCRIPTIONS].find_one_and_update(
            {"_id": sub_id}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )

    async def unpark(self, sub_id: Any) -> int:
        return await unpark(self.db, sub_id)

    # -- readers
    async def reach(self, identity: Identity, *, system_reads: bool = False) -> Reach:
        return await scope_reach(identity, self.db[SCOPE_UNITS], system_reads=system_reads)

    async def notifications(self, where: NotificationFilter, limit: int, offset: int) -> tuple[list[Doc], int]:
        query: dict[str, Any] = {}
        if where.unit_ids is not None:
            query["unit_id"] = {"$in": list(where.unit_ids)}  # its unit's and those below it
        fields = (("unit_id", where.unit), ("channel", where.channel), ("outcome", where.outcome))
        for name, value in (*fields, ("recipient", where.recipient)):
            if value is not None:
                query[name] = value
        col = self.db[NOTIFICATIONS]
        total = await col.count_documents(query)
        cursor = col.find(query, {"payload": 0}).sort([("created_at", -1), ("_id", 1)]).skip(offset).limit(limit)
        return [public_notification(d) async for d in cursor], total


def _review(doc: Doc) -> ReportReview:
    returned_at = doc.get("returned_at")
    return ReportReview(
        doc["unit_id"],
        doc["kind"],
        doc["period"],
        int(doc["rank"]),
        int(doc["version"]),
        to_shanghai(returned_at) if returned_at is not None else None,
    )


def _review_fields(review: ReportReview) -> Doc:
    return {
        "unit_id": review.unit_id,
        "kind": review.kind,
        "period": review.period,
        "rank": review.rank,
        "version": review.version,
        "returned_at": review.returned_at,
    }
