"""Transactional outbox: a state change and the events it announces are one atomic write.

A service writes its state change and the events it causes in ONE document write: the events sit in the
aggregate document under ``_outbox.<event id>``. Where two documents change together, both writes (and their
events) go in one MongoDB transaction (:meth:`Outbox.transaction`). Once the write is acknowledged (the transaction
committed) the :class:`Outbox` hands them to the :class:`OutboxRelay`, which publishes them (in order per aggregate)
and removes exactly those keys.
A crash anywhere leaves the events in the document; the relay's leased sweeper publishes them later.
So: no event without its state change, no state change without its event; a restart may publish twice,
and consumers de-duplicate on the event id.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.results import InsertManyResult, InsertOneResult, UpdateResult

from shared.contracts.envelope import Envelope
from shared.storage import Doc, utcnow

if TYPE_CHECKING:  # the relay imports this module; the outbox only hands it events
    from shared.messaging.relay import OutboxRelay

log = logging.getLogger("stvs.outbox")
tracer = trace.get_tracer("stvs.outbox")

OUTBOX = "_outbox"
OUTBOX_N = "_outbox_n"
CLOUDEVENTS_JSON = "application/cloudevents+json"


@dataclass(frozen=True)
class PendingEvent:
    """An event waiting in an aggregate document to be published."""

    collection: str
    doc_id: Any
    event_id: str
    seq: int
    stream: str
    key: str
    payload: bytes
    traceparent: str | None


def _entry(env: Envelope[Any]) -> Doc:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # the request's trace continues through Kafka to every consumer
    return {
        "seq": time.time_ns(),
        "stream": env.stream,
        "key": env.subject,
        "payload": env.dump_json(),
        "traceparent": carrier.get("traceparent"),
        "staged_at": utcnow(),
    }


def _pending(collection: str, doc_id: Any, event_id: str, entry: Mapping[str, Any]) -> PendingEvent:
    return PendingEvent(
        collection=collection,
        doc_id=doc_id,
        event_id=event_id,
        seq=int(entry["seq"]),
        stream=str(entry["stream"]),
        key=str(entry["key"]),
        payload=str(entry["payload"]).encode(),
        traceparent=entry.get("traceparent"),
    )


class Outbox:
    """What a service writes through: state change plus events in one document write."""

    def __init__(self, db: AsyncDatabase[Doc], relay: OutboxRelay | None) -> None:
        self.db = db
        self.relay = relay

    @staticmethod
    def stage_insert(doc: Doc, events: Sequence[Envelope[Any]]) -> Doc:
        """``doc`` plus its events, ready for insert_one/insert_many."""
        if not events:
            return doc
        return {**doc, OUTBOX: {e.id: _entry(e) for e in events}, OUTBOX_N: len(events)}

    @staticmethod
    def stage_update(update: Mapping[str, Any], events: Sequence[Envelope[Any]]) -> dict[str, Any]:
        """``update`` plus the operators that stage its events in the same document."""
        merged: dict[str, Any] = {k: dict(v) for k, v in update.items()}
        if events:
            sets = merged.setdefault("$set", {})
            for e in events:
                sets[f"{OUTBOX}.{e.id}"] = _entry(e)
            merged.setdefault("$inc", {})[OUTBOX_N] = merged.get("$inc", {}).get(OUTBOX_N, 0) + len(events)
        return merged

    @staticmethod
    def staged_ids(staged: Mapping[str, Any]) -> list[str]:
        """The ids of the events staged in a document (insert) or an update."""
        outbox = staged.get(OUTBOX)
        if outbox is not None:
            return list(outbox)
        return [k.split(".", 1)[1] for k in staged.get("$set", {}) if k.startswith(OUTBOX + ".")]

    def hold(self, staged: Sequence[Mapping[str, Any]]) -> list[str]:
        """Keep this process's sweeper off the events of a write still under way.

        Every write through the outbox holds its events from before it is sent until the relay has them: the
        sweeper could otherwise read a write the server has applied but this process has not yet been told of,
        and publish its events beside the fast path. :meth:`written` hands them to the relay; :meth:`release`
        gives them up when the write failed or was taken back. Another replica's sweeper only waits the grace
        period, so keep that longer than the longest write (e.g. a chunked import).
        """
        ids = [eid for doc in staged for eid in self.staged_ids(doc)]
        if self.relay is not None:
            self.relay.hold(ids)
        return ids

    def release(self, event_ids: Iterable[str]) -> None:
        if self.relay is not None:
            self.relay.release(event_ids)

    def written(self, collection: str, doc_id: Any, staged: Mapping[str, Any]) -> None:
        """Tell the relay that a write carrying these staged entries was acknowledged."""
        if self.relay is None:
            return
        outbox = staged.get(OUTBOX)
        if outbox is not None:
            entries = outbox.items()
        else:
            sets = staged.get("$set", {})
            entries = ((k.split(".", 1)[1], v) for k, v in sets.items() if k.startswith(OUTBOX + "."))
        self.relay.submit([_pending(collection, doc_id, eid, entry) for eid, entry in entries])

    @contextlib.contextmanager
    def _writing(self, staged: Sequence[Mapping[str, Any]]) -> Iterator[list[str]]:
        """Hold the events of a write about to be sent; give them up if it fails (had the server applied it after
        all, the sweeper publishes them)."""
        held = self.hold(staged)
        try:
            yield held
        except BaseException:
            self.release(held)
            raise

    async def update_staged(
        self,
        collection: str,
        filter_: Mapping[str, Any],
        staged: Mapping[str, Any],
        *,
        upsert: bool = False,
        tx: Transaction | None = None,
    ) -> UpdateResult:
        """Send an update already staged (:meth:`stage_update`) to the one document ``filter_`` finds (it names the
        ``_id``; add a ``version`` to make the write conditional)."""
        session = tx.session if tx else None
        with self._writing([staged]) as held:
            result = await self.db[collection].update_one(dict(filter_), dict(staged), upsert=upsert, session=session)
        if result.matched_count or result.upserted_id is not None:
            doc_id = filter_["_id"] if result.upserted_id is None else result.upserted_id
            self._after(tx, lambda: self.written(collection, doc_id, staged), held)
        else:
            self.release(held)
        return result

    async def insert_one(
        self, collection: str, doc: Doc, events: Sequence[Envelope[Any]], *, tx: Transaction | None = None
    ) -> InsertOneResult:
        staged = self.stage_insert(doc, events)
        with self._writing([staged]) as held:
            result = await self.db[collection].insert_one(staged, session=tx.session if tx else None)
        self._after(tx, lambda: self.written(collection, staged["_id"], staged), held)
        return result

    async def insert_many(
        self,
        collection: str,
        docs_events: Sequence[tuple[Doc, Sequence[Envelope[Any]]]],
        *,
        tx: Transaction | None = None,
    ) -> InsertManyResult:
        staged = [self.stage_insert(doc, events) for doc, events in docs_events]
        with self._writing(staged) as held:
            result = await self.db[collection].insert_many(staged, ordered=True, session=tx.session if tx else None)

        def hand_over() -> None:
            for doc in staged:
                self.written(collection, doc["_id"], doc)

        self._after(tx, hand_over, held)
        return result

    async def update_one(
        self,
        collection: str,
        filter_: Mapping[str, Any],
        update: Mapping[str, Any],
        events: Sequence[Envelope[Any]],
        *,
        upsert: bool = False,
        tx: Transaction | None = None,
    ) -> UpdateResult:
        """Update one document (found by ``filter_``, which must name ``_id``) with its events, atomically."""
        if "_id" not in filter_:
            raise ValueError("outbox writes address the aggregate by _id")
        return await self.update_staged(collection, filter_, self.stage_update(update, events), upsert=upsert, tx=tx)

    async def update_each(
        self, collection: str, updates: Sequence[tuple[Mapping[str, Any], Mapping[str, Any], Sequence[Envelope[Any]]]]
    ) -> list[bool]:
        """Several documents, each updated with its events atomically (``(filter, update, events)``, every filter
        naming its ``_id``), in one unordered bulk write: one round trip. Returns, per update, whether its document
        matched (its events then reach the relay)."""
        if any("_id" not in f or not events for f, _, events in updates):
            raise ValueError("each update addresses its aggregate by _id and carries events (they tell it applied)")
        staged = [self.stage_update(update, events) for _, update, events in updates]
        if not staged:
            return []
        with self._writing(staged) as held:
            ops = [UpdateOne(dict(f), dict(s)) for (f, _, _), s in zip(updates, staged, strict=True)]
            result = await self.db[collection].bulk_write(ops, ordered=False)
        if result.matched_count == len(ops):
            applied = [True] * len(ops)
        else:  # a bulk result counts matches but does not say which: read back whose events were staged
            found = {
                doc["_id"]: set(doc.get(OUTBOX) or {})
                async for doc in self.db[collection].find(
                    {"_id": {"$in": [f["_id"] for f, _, _ in updates]}}, {OUTBOX: 1}
                )
            }
            applied = [
                bool(set(self.staged_ids(s)) & found.get(f["_id"], set()))
                for (f, _, _), s in zip(updates, staged, strict=True)
            ]
        for (f, _, _), s, ok in zip(updates, staged, applied, strict=True):
            if ok:
                self.written(collection, f["_id"], s)
            else:
                self.release(self.staged_ids(s))
        del held  # the applied ones stay held until the relay has cleared them, as for a single write
        return applied

    def _after(self, tx: Transaction | None, hand_over: Callable[[], None], held: list[str]) -> None:
        """Hand the events of an acknowledged write to the relay: now, or once its transaction has committed."""
        if tx is None:
            hand_over()
        else:
            tx.on_commit.append(hand_over)
            tx.held.extend(held)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One MongoDB transaction (snapshot reads, majority writes): pass ``tx=`` to the writes inside it.

        Its events reach the relay only once it has committed, so an aborted transaction announces nothing. The
        caller retries on a ``TransientTransactionError`` (see :func:`shared.aggregates.in_transaction`).
        """
        async with self.db.client.start_session() as session:
            tx = Transaction(session)
            try:
                async with await session.start_transaction():
                    yield tx
            except BaseException:
                self.release(tx.held)
                raise
        for hand_over in tx.on_commit:
            hand_over()


@dataclass
class Transaction:
    """A MongoDB transaction under way: its session, and what happens to its events once it commits."""

    session: AsyncClientSession
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
