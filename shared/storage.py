"""MongoDB access with PyMongo's async client (Motor is deprecated): the client, declared indexes, small helpers.

Written for MongoDB 7 on a replica set and nothing more specific: indexed queries, atomic single-document updates,
transactions where documents change together (:mod:`shared.aggregates`, the storage port), TTL indexes for what
expires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

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
    expire_after_s: int | None = None  # a TTL index: the server removes a document this long after its date field
    partial: Mapping[str, Any] | None = None  # only documents matching this filter are indexed

    def index_name(self) -> str:
        return self.name or "_".join(self.keys) + ("_u" if self.unique else "") + (
            "_ttl" if self.expire_after_s else ""
        )


@dataclass
class Indexes:
    specs: list[IndexSpec] = field(default_factory=list)

    def add(
        self,
        collection: str,
        *keys: str,
        unique: bool = False,
        expire_after_s: int | None = None,
        partial: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        self.specs.append(IndexSpec(collection, keys, unique, name, expire_after_s, partial))

    async def create(self, db: AsyncDatabase[Doc]) -> None:
        existing = set(await db.list_collection_names())
        for spec in self.specs:
            if spec.collection not in existing:
                await db.create_collection(spec.collection)
                existing.add(spec.collection)
            options: dict[str, Any] = {"unique": spec.unique, "name": spec.index_name()}
            if spec.expire_after_s is not None:
                options["expireAfterSeconds"] = spec.expire_after_s
            if spec.partial is not None:
                options["partialFilterExpression"] = dict(spec.partial)
            await db[spec.collection].create_index([(k, ASCENDING) for k in spec.keys], **options)


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
    """Apply ``update`` to one document unless that event was already applied to it: one atomic write.

    The event id is recorded inside the same document by the same write, so a crash leaves either both or
    neither. The filter only matches a document without that marker; when the document has it, the upsert's
    insert collides with the existing ``_id`` and nothing changes. Returns True when the update was applied.
    """
    marker = f"_applied.{event_id}"
    merged: dict[str, Any] = {k: dict(v) for k, v in update.items()}
    merged.setdefault("$set", {})[marker] = utcnow()
    try:
        result = await collection.update_one({"_id": doc_id, marker: {"$exists": False}}, merged, upsert=True)
    except DuplicateKeyError:
        return False
    return bool(result.modified_count or result.upserted_id is not None)


async def ping(client: AsyncMongoClient[Doc]) -> None:
    await client.admin.command("ping")
