"""The audit log on MongoDB: who did what to which resource, from where — every admin or system write and every view or
export of personal data that passes through the gateway.

A record is made after the upstream (or the gateway itself) has answered, from the request and the status only:
the account id, username and role, the time, the method, the route *template* (``/api/v1/volunteers/{volunteer_id}``,
never the path or query values, which can carry names), the ids the path names, the names of the query parameters
(not their values), the outcome status and the client address. Records are queued and inserted in batches in the
background (the response does not wait); a full queue or a failed insert is counted and logged, never silent.

The collection is only ever inserted into — there is no update or delete, in code or API — and a TTL index removes
a record ``STVS_AUDIT_RETENTION_DAYS`` (≥ 180) after it was made. The province admin lists it through
``GET /api/v1/audit``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from prometheus_client import Counter
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from services.gateway.domain.audit import Routes
from shared.storage import Doc, Indexes

log = logging.getLogger("stvs.gateway.audit")

AUDIT = "audit_log"
BATCH = 200
LOST = Counter("stvs_audit_records_lost_total", "Audit records not stored (queue full or insert failed)", ["reason"])


def audit_indexes(retention_days: int) -> Indexes:
    idx = Indexes()
    idx.add(AUDIT, "at", expire_after_s=retention_days * 86_400)
    idx.add(AUDIT, "actor_id", "at")
    idx.add(AUDIT, "username", "at")
    idx.add(AUDIT, "unit_ids", "at")
    return idx


# ---------------------------------------------------------------- storing


class AuditLog:
    """A bounded queue of records and the background task that inserts them in batches."""

    def __init__(self, db: AsyncDatabase[Doc], retention_days: int, queue_size: int) -> None:
        self.col = db[AUDIT]
        self.retention_s = retention_days * 86_400
        self.queue: asyncio.Queue[Doc] = asyncio.Queue(maxsize=queue_size)
        self.routes = Routes()
        self.lost = 0
        self.stored = 0

    def record(self, doc: Doc) -> None:
        try:
            self.queue.put_nowait(doc)
        except asyncio.QueueFull:
            self.lose("queue_full", 1)

    def lose(self, reason: str, count: int) -> None:
        self.lost += count
        LOST.labels(reason).inc(count)
        log.error("audit: %d record(s) not stored (%s); %d lost since the gateway started", count, reason, self.lost)

    async def ensure_retention(self) -> None:
        """The TTL index at the configured retention; a changed setting changes the index in place (collMod)."""
        ttl = audit_indexes(self.retention_s // 86_400).specs[0]
        try:
            await self.col.create_index("at", name=ttl.index_name(), expireAfterSeconds=self.retention_s)
        except OperationFailure:
            await self.col.database.command(
                "collMod", AUDIT, index={"keyPattern": {"at": 1}, "expireAfterSeconds": self.retention_s}
            )

    async def run(self) -> None:
        """Insert what is queued, a batch at a time; on shutdown, what is left first."""
        try:
            await self.ensure_retention()
        except PyMongoError as exc:
            log.error("audit: the retention index could not be set: %s", exc)
        try:
            while True:
                batch = [await self.queue.get()]
                while len(batch) < BATCH and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                await self._insert(batch)
        except asyncio.CancelledError:
            await self.flush()
            raise

    async def flush(self) -> None:
        """Insert everything queued now (the shutdown's last batch; tests)."""
        while not self.queue.empty():
            batch = [self.queue.get_nowait() for _ in range(min(BATCH, self.queue.qsize()))]
            await self._insert(batch, attempts=1)

    async def _insert(self, batch: list[Doc], attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                await self.col.insert_many(batch, ordered=False)
                self.stored += len(batch)
                return
            except PyMongoError as exc:
                errors = getattr(exc, "details", None) or {}
                write_errors = errors.get("writeErrors") if isinstance(errors, dict) else None
                if write_errors and all(e.get("code") == 11000 for e in write_errors):
                    self.stored += len(batch)
                    return  # a retry after a partial insert: the rest are in
                log.warning("audit: insert of %d record(s) failed (%s), attempt %d", len(batch), exc, attempt + 1)
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.2 * 2**attempt)
        self.lose("insert_failed", len(batch))

    async def page(
        self,
        actor: str | None,
        unit_id: str | None,
        since: datetime | None,
        until: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Doc]:
        """Records newest first (``after``: older than this (at, id)), at most ``limit``."""
        found = self.col.find(audit_filter(actor, unit_id, since, until, after))
        return await found.sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit).to_list()


def audit_filter(
    actor: str | None,
    unit_id: str | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, str] | None,
) -> Doc:
    clauses: list[Doc] = []
    if actor:
        clauses.append({"$or": [{"actor_id": actor}, {"username": actor}]})
    if unit_id:
        clauses.append({"unit_ids": unit_id})
    at: Doc = {}
    if since:
        at["$gte"] = since
    if until:
        at["$lt"] = until
    if at:
        clauses.append({"at": at})
    if after:
        last_at, last_id = after
        clauses.append({"$or": [{"at": {"$lt": last_at}}, {"at": last_at, "_id": {"$lt": last_id}}]})
    return {"$and": clauses} if clauses else {}
