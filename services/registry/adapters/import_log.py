"""A 附件2 import is all or nothing, across a crash as well.

Its volunteers are written in chunks as *pending*: each document carries the import's id (``_import``) and keeps
its event aside (``_import_outbox``, which neither the relay nor the sweeper reads), and every read of the
registry leaves pending documents out. One conditional write of the import's record (running → committed) is the
commit; then the documents are flipped (the event moved to ``_outbox``, the marker removed) and handed to the
relay. A crash before the commit leaves a running record whose lease (renewed by its owner while it writes) runs
out: the recovery, run at start and periodically by any replica, marks it aborted and deletes its documents (with
their keyed ID hashes and platform numbers: nothing else holds them), so no event of it is ever published and
the same file can be imported again (a chunk the server was still writing when its client died may land after
that: the aborted record is kept a day and every pass deletes what still carries its id, and an import that
meets such a row in the meantime is refused as a conflict, to be uploaded again).

A crash after the commit leaves a committed record: the recovery finishes the flip. A delete that fails leaves the
record aborted and is tried again on the next pass, so a person whose document stays stored never loses the hash
that keeps them unique.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.registry.domain.errors import ImportConflictError, UnavailableError
from services.registry.usecases.ports import Build
from shared.messaging.outbox import OUTBOX, OUTBOX_N, Outbox
from shared.storage import Doc, Indexes, utcnow

log = logging.getLogger("stvs.registry.imports")

IMPORTS = "imports"
PENDING = "_import"  # on a volunteer written by an import not yet committed: the import's id
PENDING_OUTBOX = "_import_outbox"  # its event, out of the relay's and the sweeper's sight until the commit
HIDE_PENDING: Mapping[str, Any] = {PENDING: {"$exists": False}}
FLIP_CHUNK = 2_000  # documents per flip or delete: each command short on a busy server
INSERT_CHUNK = 2_000  # volunteer documents per insert: each command well inside the socket timeout
DUPLICATE_KEY = 11000
KEEP_FINISHED = timedelta(days=1)  # an aborted record stays this long: each pass deletes what a late writer added


def indexes(ix: Indexes, volunteers: str) -> None:
    ix.add(volunteers, PENDING, partial={PENDING: {"$exists": True}})
    ix.add(IMPORTS, "state", "lease_until")
    ix.add(IMPORTS, "expires_at", expire_after_s=0)


def pending(staged: Doc, import_id: str) -> Doc:
    """A staged insert (document plus its one event) as written before the commit."""
    doc = {k: v for k, v in staged.items() if k not in (OUTBOX, OUTBOX_N)}
    assert len(staged.get(OUTBOX, {})) == 1, "an imported volunteer carries exactly one event"
    return {**doc, PENDING: import_id, PENDING_OUTBOX: staged[OUTBOX]}


class ImportLog:
    def __init__(self, db: Any, outbox: Outbox, collection: str, *, lease_s: float) -> None:
        self.db = db
        self.outbox = outbox
        self.collection = collection
        self.lease = timedelta(seconds=lease_s)

    async def insert_all(
        self,
        owner: str,
        jobs: Sequence[Any],
        build: Build,
        *,
        import_id: str | None = None,
        stored: Callable[[int], None] | None = None,
    ) -> list[Any]:
        """One document and one event per job, all or nothing, across a crash as well: the documents are written as
        pending (with the import's id, their events kept aside, left out of every read), one conditional write of
        the import's record commits them, and only then are they flipped to visible and their events handed to the
        relay.

        Documents are inserted in chunks, and each next chunk is built and staged (documents, event payloads
        serialised, in a thread) while the current one is written, so Python's CPU work overlaps the server's. The
        unique indexes (``_id`` = platform number, ``id_hash`` = the person) refuse a person registered meanwhile by
        another request or replica; returns the ids written. ``import_id`` names the import (a job's id: its
        cancellation aborts it before the commit); ``stored`` hears how many documents each chunk wrote."""
        import_id = await self.begin(owner, len(jobs), import_id)
        chunks = [jobs[start : start + INSERT_CHUNK] for start in range(0, len(jobs), INSERT_CHUNK)]

        def stage(chunk: Sequence[Any]) -> list[tuple[Doc, Doc]]:
            staged = []
            for doc, event in build(chunk):
                ready = self.outbox.stage_insert(doc, [event])
                staged.append((ready, pending(ready, import_id)))
            return staged

        staged: list[Doc] = []
        next_chunk: asyncio.Task[list[tuple[Doc, Doc]]] | None = None
        committed = False
        try:
            async with self.heartbeat(import_id):
                next_chunk = asyncio.create_task(asyncio.to_thread(stage, chunks[0]))
                for index in range(len(chunks)):
                    assert next_chunk is not None
                    current = await next_chunk
                    next_chunk = None
                    if index + 1 < len(chunks):
                        next_chunk = asyncio.create_task(asyncio.to_thread(stage, chunks[index + 1]))
                    staged.extend(ready for ready, _ in current)
                    await self._insert_pending([doc for _, doc in current])
                    if stored is not None:
                        stored(len(current))
                committed = await self.commit(import_id)
            if not committed:
                raise UnavailableError("form_import_expired", "导入耗时过长已被中止，整个文件未导入，请重新上传")
        except BaseException:
            await self._settle(import_id, next_chunk, committed)
            raise
        await self.publish(import_id, staged)
        return [doc["_id"] for doc in staged]

    async def _settle(self, import_id: str, next_chunk: asyncio.Task[Any] | None, committed: bool) -> None:
        """After a failure: let the chunk being built finish, and take back an import not committed."""
        if next_chunk is not None:
            with contextlib.suppress(BaseException):
                await next_chunk
        if not committed:
            with contextlib.suppress(Exception):  # failing here, the recovery takes them back later
                await self.abort(import_id)

    async def _insert_pending(self, docs: Sequence[Doc]) -> None:
        """One chunk of pending documents; a refusal becomes the error the uploader reads."""
        try:
            await self.db[self.collection].insert_many(docs, ordered=True)
        except BulkWriteError as exc:
            # The error itself (it quotes the document) is not passed on: it would put personal data in logs.
            if not _duplicate_key(exc):
                raise UnavailableError(
                    "form_store_failed", "保存时数据库出错，整个文件未导入，请稍后重新上传"
                ) from None
            raise ImportConflictError(
                "有志愿者在导入过程中已由其他操作注册，整个文件未导入，请重新上传"
                if _collided_on_person(exc)
                else "有志愿者的平台编号在导入过程中被其他操作占用，整个文件未导入，请重新上传"
            ) from None

    async def begin(self, owner: str, rows: int, import_id: str | None = None) -> str:
        """The import's record, running; an import of this id cancelled before it began is refused."""
        import_id = import_id or uuid.uuid4().hex
        now = utcnow()
        try:
            await self.db[IMPORTS].insert_one(
                {"_id": import_id, "state": "running", "owner": owner, "rows": rows, "started_at": now}
                | {"lease_until": now + self.lease}
            )
        except DuplicateKeyError:
            raise UnavailableError("import_cancelled", "导入已取消，整个文件未导入") from None
        return import_id

    async def renew(self, import_id: str) -> bool:
        """Extend the lease; False when the import was taken as dead (aborted) meanwhile."""
        result = await self.db[IMPORTS].update_one(
            {"_id": import_id, "state": "running"}, {"$set": {"lease_until": utcnow() + self.lease}}
        )
        return bool(result.matched_count)

    @contextlib.asynccontextmanager
    async def heartbeat(self, import_id: str) -> AsyncIterator[None]:
        """Renew the lease every third of it while the block runs (a chunk may take longer than one renewal)."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.lease.total_seconds() / 3)
                with contextlib.suppress(Exception):
                    await self.renew(import_id)

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def commit(self, import_id: str) -> bool:
        """The one step that makes the import happen; False when it was taken as dead (aborted) meanwhile."""
        done = await self.db[IMPORTS].find_one_and_update(
            {"_id": import_id, "state": "running"}, {"$set": {"state": "committed", "committed_at": utcnow()}}
        )
        return done is not None

    async def publish(self, import_id: str, staged: Sequence[Doc]) -> None:
        """After the commit: the documents become visible and their events go to the relay. Should this fail, the
        recovery finishes the flip and the sweeper publishes."""
        held = self.outbox.hold(staged)
        try:
            await self._flip(import_id, [doc["_id"] for doc in staged])
        except BaseException:
            self.outbox.release(held)
            raise
        for doc in staged:
            self.outbox.written(self.collection, doc["_id"], doc)

    async def abort(self, import_id: str) -> None:
        """Take back an import that failed in this process before its commit (the recovery does it again if this
        fails); a committed import is never taken back."""
        await self.db[IMPORTS].update_one(
            {"_id": import_id, "state": "running"},
            {"$set": {"state": "aborted", "expires_at": utcnow() + KEEP_FINISHED}},
        )
        record = await self.db[IMPORTS].find_one({"_id": import_id}, {"state": 1})
        if record is not None and record["state"] == "aborted":
            await self._delete(import_id)

    async def state(self, import_id: str) -> str | None:
        """running, committed, done or aborted; None when no import of this id began (or its record expired)."""
        record = await self.db[IMPORTS].find_one({"_id": import_id}, {"state": 1})
        return None if record is None else str(record["state"])

    async def cancel(self, import_id: str, *, only_if_dead: bool = False) -> str | None:
        """Abort an import before its commit (its writer's commit then fails and it takes its documents back; the
        recovery does too; one not begun yet never will); ``only_if_dead``: a running one only when its lease ran
        out. The import's state afterwards."""
        now = utcnow()
        aborted = {"state": "aborted", "expires_at": now + KEEP_FINISHED}
        match: dict[str, Any] = {"_id": import_id, "state": "running"}
        if only_if_dead:
            match["lease_until"] = {"$lt": now}
        await self.db[IMPORTS].update_one(match, {"$set": aborted})
        with contextlib.suppress(DuplicateKeyError):  # not begun: it never will (its begin is refused)
            await self.db[IMPORTS].insert_one({"_id": import_id, **aborted})
        return await self.state(import_id)

    async def unpublished(self, ids: Sequence[Any]) -> int:
        """How many of these documents still hold an event not yet published."""
        volunteers = self.db[self.collection]
        left = 0
        for start in range(0, len(ids), FLIP_CHUNK):
            part = list(ids[start : start + FLIP_CHUNK])
            left += await volunteers.count_documents({"_id": {"$in": part}, OUTBOX_N: {"$gt": 0}})
        return left

    async def recover(self) -> int:
        """Abort the imports whose owner died, delete what aborted imports wrote, finish committed ones; returns
        how many documents were deleted or published."""
        now = utcnow()
        imports = self.db[IMPORTS]
        async for record in imports.find({"state": "running", "lease_until": {"$lt": now}}, {"_id": 1}):
            await imports.update_one(
                {"_id": record["_id"], "state": "running", "lease_until": {"$lt": now}},
                {"$set": {"state": "aborted", "expires_at": now + KEEP_FINISHED}},
            )
        touched = 0
        async for record in imports.find({"state": "aborted"}, {"_id": 1}):
            touched += await self._delete(record["_id"])
        async for record in imports.find({"state": "committed"}, {"_id": 1}):
            touched += await self._flip(record["_id"])
        for orphan in await self.db[self.collection].distinct(PENDING):
            # an import's record is written before any of its documents: none means it expired (KEEP_FINISHED
            # after the abort), and nothing will ever commit these; read now, so an import begun meanwhile is safe
            if await imports.find_one({"_id": orphan}, {"_id": 1}) is None:
                touched += await self._delete(orphan)
        if touched:
            log.info("import recovery: %d documents of unfinished imports settled", touched)
        return touched

    async def _delete(self, import_id: str) -> int:
        volunteers = self.db[self.collection]
        deleted = 0
        while part := [d["_id"] async for d in volunteers.find({PENDING: import_id}, {"_id": 1}).limit(FLIP_CHUNK)]:
            deleted += (await volunteers.delete_many({"_id": {"$in": part}, PENDING: import_id})).deleted_count
        return int(deleted)

    async def _flip(self, import_id: str, ids: Sequence[Any] | None = None) -> int:
        """Pending → visible, a few thousand documents per command (one command over 50,000 would outlast the
        socket timeout); by the ids written, or (recovery) by the marker until none is left."""
        volunteers = self.db[self.collection]
        update = {"$rename": {PENDING_OUTBOX: OUTBOX}, "$set": {OUTBOX_N: 1}, "$unset": {PENDING: ""}}
        flipped = 0
        if ids is not None:
            for start in range(0, len(ids), FLIP_CHUNK):
                part = list(ids[start : start + FLIP_CHUNK])
                flipped += (
                    await volunteers.update_many({"_id": {"$in": part}, PENDING: import_id}, update)
                ).modified_count
        else:
            while part := [d["_id"] async for d in volunteers.find({PENDING: import_id}, {"_id": 1}).limit(FLIP_CHUNK)]:
                flipped += (
                    await volunteers.update_many({"_id": {"$in": part}, PENDING: import_id}, update)
                ).modified_count
        await self.db[IMPORTS].update_one(
            {"_id": import_id, "state": "committed"},
            {"$set": {"state": "done", "expires_at": utcnow() + KEEP_FINISHED}},
        )
        return int(flipped)


def _duplicate_key(error: BulkWriteError) -> bool:
    return any(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", []))


def _collided_on_person(error: BulkWriteError) -> bool:
    """Whether a duplicate key of this insert was a person (id_hash) rather than a platform number."""
    for e in error.details.get("writeErrors", []):
        pattern = e.get("keyPattern") or e.get("keyValue") or {}
        if "id_hash" in pattern or "id_hash" in str(e.get("errmsg", "")):
            return True
    return False


async def recover_forever(
    journal: ImportLog, interval_s: float, jobs: Callable[[], Awaitable[int]] | None = None
) -> None:
    """At start and then periodically: settle the upload jobs whose replica died (``jobs``: their imports are
    aborted first), take back imports whose process died, finish committed ones."""
    while True:
        try:
            if jobs is not None:
                await jobs()
            await journal.recover()
        except Exception:
            log.warning("import recovery failed; trying again", exc_info=True)
        await asyncio.sleep(interval_s)
