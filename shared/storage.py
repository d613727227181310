"""MongoDB access with PyMongo's async client (Motor is deprecated), shaped for FerretDB v1 as well.

FerretDB v1 on SQLite evaluates every filter other than a lone ``{"_id": value}`` by scanning the collection, so
hot paths here address documents by ``_id`` only; secondary indexes still enforce uniqueness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]


def mongo_client(url: str, *, app_name: str) -> AsyncMongoClient[Doc]:
    """One client per event loop; timeouts short enough that an outage becomes a clear 503, not a hang."""
    return AsyncMongoClient(
        url,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=3_000,
        connectTimeoutMS=3_000,
        socketTimeoutMS=30_000,
        maxPoolSize=50,
        retryWrites=True,
    )


@dataclass(frozen=True)
class IndexSpec:
    """An index a service declares; created at start-up."""

    collection: str
    keys: Sequence[str]
    unique: bool = False
    name: str | None = None

    def index_name(self) -> str:
        return self.name or "_".join(self.keys) + ("_u" if self.unique else "")


@dataclass
class Indexes:
    specs: list[IndexSpec] = field(default_factory=list)

    def add(self, collection: str, *keys: str, unique: bool = False) -> None:
        self.specs.append(IndexSpec(collection, keys, unique))

    async def create(self, db: AsyncDatabase[Doc]) -> None:
        existing = set(await db.list_collection_names())
        for spec in self.specs:
            if spec.collection not in existing:
                await db.create_collection(spec.collection)
                existing.add(spec.collection)
            await db[spec.collection].create_index(
                [(k, ASCENDING) for k in spec.keys], unique=spec.unique, name=spec.index_name()
            )


class DocLocks:
    """Per-document locks of this process.

    FerretDB v1 applies an update as read, modify, write without isolation, so two concurrent updates of one
    document can lose one of them (measured: 1 of 19 lost while the relay cleared the outbox). Every write path of
    the shared core takes the document's lock; a service serializes its own read-modify-write the same way.
    On MongoDB the lock is merely redundant.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[str, Any], asyncio.Lock] = {}
        self._users: dict[tuple[str, Any], int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, collection: AsyncCollection[Doc], *doc_ids: Any) -> AsyncIterator[None]:
        """Hold the locks of these documents (taken in a fixed order, so two holders never deadlock)."""
        keys = sorted({(collection.full_name, d) for d in doc_ids}, key=repr)
        for key in keys:
            self._users[key] = self._users.get(key, 0) + 1
            self._locks.setdefault(key, asyncio.Lock())
        acquired: list[tuple[str, Any]] = []
        try:
            for key in keys:
                await self._locks[key].acquire()
                acquired.append(key)
            yield
        finally:
            for key in acquired:
                self._locks[key].release()
            for key in keys:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key]
                    del self._locks[key]


doc_locks = DocLocks()


# Deeper paging than this is a query, not a page; the bound also keeps skip() inside MongoDB's 64-bit integers.
MAX_PAGE_OFFSET = 1_000_000
MAX_DEAD_LETTERS_LISTED = 1_000


def utcnow() -> datetime:
    return datetime.now(UTC)


async def apply_once(
    collection: AsyncCollection[Doc],
    doc_id: Any,
    event_id: str,
    update: Mapping[str, Any],
) -> bool:
    """Apply ``update`` to one document unless that event was already applied to it.

    The event id is recorded inside the same document by the same write, so a crash leaves either both or
    neither: a redelivered event is skipped, never counted twice. Events of one key are handled by one consumer
    at a time (one partition), which makes read-then-write safe. Returns True when the update was applied.
    """
    marker = f"_applied.{event_id}"
    async with doc_locks.hold(collection, doc_id):
        seen = await collection.find_one({"_id": doc_id}, {marker: 1})
        if seen is not None and event_id in seen.get("_applied", {}):
            return False
        merged: dict[str, Any] = {k: dict(v) for k, v in update.items()}
        merged.setdefault("$set", {})[marker] = utcnow()
        await collection.update_one({"_id": doc_id}, merged, upsert=True)
        return True


async def ping(client: AsyncMongoClient[Doc]) -> None:
    await client.admin.command("ping")
