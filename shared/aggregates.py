"""The storage port: every aggregate is read, decided and written through it, whatever the number of replicas.

- One document: :meth:`Aggregates.change` reads it, lets the caller decide (pure domain code), and writes the
  decision with the version it read in the filter, its events in the same atomic write (the outbox inside the
  document). When another writer — this process or another replica — changed the document meanwhile, nothing is
  written and the change is decided again on the fresh document (optimistic concurrency; bounded, then
  :class:`Contended`). No per-process lock: MongoDB's single-document atomicity is the guarantee.
- Where a single conditional update says it all (a counter, a capacity check), write it as one:
  ``outbox.update_one`` with the condition in the filter.
- Several documents that must change together: :func:`in_transaction` (a MongoDB transaction, retried on the
  transient errors the server labels as such; its events reach the relay only once it committed).
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pymongo.errors import DuplicateKeyError, PyMongoError

from shared.contracts.envelope import Envelope
from shared.messaging.outbox import Outbox, Transaction
from shared.storage import Doc

T = TypeVar("T")

VERSION = "version"
DEFAULT_ATTEMPTS = 32


class Contended(RuntimeError):
    """A document changed under every one of the attempts to change it (answered 503: try again)."""

    def __init__(self, collection: str, doc_id: Any, attempts: int) -> None:
        super().__init__(f"{collection}/{doc_id} changed under {attempts} attempts in a row")
        self.collection = collection
        self.doc_id = doc_id


@dataclass(frozen=True)
class Write(Generic[T]):
    """What a decision writes to the document it was taken on: update operators (the version is bumped by the
    port), the events it announces, and the value the caller gets back."""

    update: Mapping[str, Any]
    events: Sequence[Envelope[Any]] = ()
    result: T | None = None


Decide = Callable[[Doc | None], "Write[T] | Awaitable[Write[T] | None] | None"]


async def backoff(attempt: int) -> None:
    """A short, jittered pause before deciding again: spreads writers that collided apart."""
    await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.1)))


class Aggregates:
    """One collection of aggregates: versioned documents with their outbox."""

    def __init__(self, outbox: Outbox, collection: str, *, attempts: int = DEFAULT_ATTEMPTS) -> None:
        self.outbox = outbox
        self.collection = collection
        self.col = outbox.db[collection]
        self.attempts = attempts

    async def get(self, doc_id: Any, tx: Transaction | None = None) -> Doc | None:
        return await self.col.find_one({"_id": doc_id}, session=tx.session if tx else None)

    async def create(self, doc: Doc, events: Sequence[Envelope[Any]] = (), *, tx: Transaction | None = None) -> Doc:
        """Insert a new aggregate at version 1 with its events; DuplicateKeyError when the ``_id`` is taken."""
        doc = {**doc, VERSION: doc.get(VERSION, 1)}
        await self.outbox.insert_one(self.collection, doc, events, tx=tx)
        return doc

    async def change(self, doc_id: Any, decide: Decide[T]) -> T | None:
        """Read, decide, write conditionally on the version read; decide again after a concurrent change.

        ``decide`` gets the current document (None when there is none) and returns the :class:`Write` (or None:
        nothing to write, and None is returned). It may raise a domain error, which reaches the caller unchanged.
        """
        for attempt in range(self.attempts):
            doc = await self.get(doc_id)
            decided = decide(doc)
            write = await decided if inspect.isawaitable(decided) else decided
            if write is None:
                return None
            if doc is None:
                raise LookupError(f"{self.collection}/{doc_id} does not exist: create it first")
            if await self.write(doc, write):
                return write.result
            await backoff(attempt)
        raise Contended(self.collection, doc_id, self.attempts)

    async def write(self, doc: Doc, write: Write[Any], *, tx: Transaction | None = None) -> bool:
        """Apply ``write`` to ``doc`` if it is still at the version it was read at; False when it moved on."""
        update = versioned(write.update)
        staged = self.outbox.stage_update(update, write.events)
        result = await self.outbox.update_staged(
            self.collection, {"_id": doc["_id"], VERSION: doc.get(VERSION)}, staged, tx=tx
        )
        return bool(result.matched_count)


def versioned(update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` that also moves the document to its next version."""
    merged: dict[str, Any] = {k: dict(v) for k, v in update.items()}
    merged.setdefault("$inc", {})[VERSION] = 1
    return merged


async def in_transaction(
    outbox: Outbox, work: Callable[[Transaction], Awaitable[T]], *, attempts: int = DEFAULT_ATTEMPTS
) -> T:
    """Run ``work`` in a MongoDB transaction, again from the start when the server says the failure is transient
    (a write conflict with another transaction, an election); its events are published once it committed."""
    for attempt in range(attempts):
        try:
            async with outbox.transaction() as tx:
                return await work(tx)
        except PyMongoError as exc:
            if not exc.has_error_label("TransientTransactionError") or attempt == attempts - 1:
                raise
        await backoff(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = [
    "VERSION",
    "Aggregates",
    "Contended",
    "DuplicateKeyError",
    "Write",
    "backoff",
    "in_transaction",
    "versioned",
]
