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

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from opentelemetry import propagate, trace
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.results import InsertManyResult, InsertOneResult, UpdateResult

from shared.contracts.envelope import Envelope
from shared.lease import Lease
from shared.metrics import OUTBOX_BACKLOG, PUBLISHED
from shared.settings import ServiceSettings
from shared.storage import Doc, utcnow

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


class OutboxRelay:
    """Publishes staged events to Kafka, in order per aggregate, and removes them from their documents."""

    def __init__(
        self,
        db: AsyncDatabase[Doc],
        settings: ServiceSettings,
        *,
        service: str,
        collections: Iterable[str],
        batch: int = 2_000,
    ) -> None:
        self.db = db
        self.settings = settings
        self.service = service
        self.collections = list(collections)
        self.batch = batch
        self._queue: list[PendingEvent] = []
        self._to_clear: list[PendingEvent] = []  # published, not yet removed from their documents
        self._held: set[str] = set()  # event ids queued, publishing or clearing in this relay
        self._clear_wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._lease = Lease(db, f"outbox-sweep:{service}", ttl_s=max(30.0, settings.outbox_sweep_interval_s * 2))

    # -- lifecycle
    async def start(self) -> None:
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name=f"{self.service}-outbox-relay"),
            asyncio.create_task(self._clear_loop(), name=f"{self.service}-outbox-clear"),
            asyncio.create_task(self._sweep_loop(), name=f"{self.service}-outbox-sweeper"),
        ]

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                client_id=f"stvs-{self.service}-outbox",
                enable_idempotence=True,
                acks="all",
                # Same batching as the measured ceiling; 10 ms of linger is far inside the freshness target.
                linger_ms=10,
                max_batch_size=1024 * 1024,
                request_timeout_ms=15_000,
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def stop(self, flush_s: float = 15.0) -> None:
        """Flush what is queued (graceful shutdown), then stop. What is left stays in MongoDB for the sweeper."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), flush_s)
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        # A successor (this service restarted, or another replica) may sweep at once instead of waiting out the TTL.
        with contextlib.suppress(Exception):
            await self._lease.release()

    def hold(self, event_ids: Iterable[str]) -> None:
        """The sweeper leaves these alone (their write is still under way in this process)."""
        self._held.update(event_ids)

    def release(self, event_ids: Iterable[str]) -> None:
        self._held.difference_update(event_ids)

    def submit(self, events: Sequence[PendingEvent]) -> None:
        if events:
            self._held.update(e.event_id for e in events)
            self._queue.extend(events)
            OUTBOX_BACKLOG.labels(self.service).set(len(self._queue))
            self._wake.set()

    @property
    def backlog(self) -> int:
        """Events submitted but not yet published."""
        return len(self._queue)

    async def flush(self) -> None:
        """Wait until every submitted event is published and removed from its document."""
        while self._held:
            self._wake.set()
            self._clear_wake.set()
            await asyncio.sleep(0.01)

    # -- fast path: events this process wrote
    async def _publish_loop(self) -> None:
        delay = 0.2
        while not self._stopping:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._queue = self._queue[: self.batch], self._queue[self.batch :]
            try:
                await self.publish(batch)
                # Removing them from their documents only bounds re-publication after a crash, so it runs beside
                # publishing instead of throttling it.
                self._to_clear.extend(batch)
                self._clear_wake.set()
                delay = 0.2
            except asyncio.CancelledError:
                self._queue[:0] = batch
                raise
            except Exception:
                log.warning("outbox publish failed; retrying in %.1fs", delay, exc_info=True)
                self._queue[:0] = batch
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            OUTBOX_BACKLOG.labels(self.service).set(len(self._queue))

    async def publish(self, events: Sequence[PendingEvent]) -> None:
        """Publish in (aggregate, staging) order and wait for every acknowledgement.

        The relay drives aiokafka directly (idempotent, acks=all): FastStream's per-message publish path costs
        ~270 µs here, six times a raw send. The producer span continues the trace of the request that wrote the
        event, and its context travels in the ``traceparent`` header like FastStream's own.
        """
        producer = await self._ensure_producer()
        # In staging order per aggregate (the Kafka key): one aggregate's events may sit in several documents (an
        # activity's and its sign-ups'), and a batch must not reorder them by where they were kept.
        ordered = sorted(events, key=lambda e: (e.stream, e.key, e.seq))
        futures = []
        for ev in ordered:
            topic = self.settings.topic(ev.stream)
            parent = propagate.extract({"traceparent": ev.traceparent}) if ev.traceparent else None
            span = tracer.start_span(
                f"{topic} publish",
                context=parent,
                kind=trace.SpanKind.PRODUCER,
                attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
            )
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=trace.set_span_in_context(span))
            headers = [("content-type", CLOUDEVENTS_JSON.encode())] + [(k, v.encode()) for k, v in carrier.items()]
            futures.append(await producer.send(topic, ev.payload, key=ev.key.encode(), headers=headers))
            span.end()
        try:
            await asyncio.gather(*futures)
        except Exception:
            # After an outage the broker may refuse this producer's sequence for good (OutOfOrderSequenceNumber):
            # the batch is tried again on a new producer (a new producer id), never on the one that failed.
            await self._drop_producer()
            raise
        for ev in ordered:
            PUBLISHED.labels(ev.stream).inc()

    async def _clear_loop(self) -> None:
        delay = 0.2
        while not self._stopping:
            if not self._to_clear:
                self._clear_wake.clear()
                await self._clear_wake.wait()
                continue
            batch, self._to_clear = self._to_clear[: self.batch], self._to_clear[self.batch :]
            try:
                await self._clear(batch)
                self._held.difference_update(e.event_id for e in batch)
                delay = 0.2
            except asyncio.CancelledError:
                self._to_clear[:0] = batch
                raise
            except Exception:
                log.warning("outbox clear failed; retrying in %.1fs", delay, exc_info=True)
                self._to_clear[:0] = batch
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _clear(self, events: Sequence[PendingEvent]) -> None:
        """Remove published events from their documents: one unordered bulk write per collection (an atomic update by
        ``_id`` per document, all in one round trip). Unsetting exactly the published keys leaves events staged
        meanwhile in place."""
        by_doc: dict[tuple[str, Any], list[str]] = {}
        for ev in events:
            by_doc.setdefault((ev.collection, ev.doc_id), []).append(ev.event_id)
        by_collection: dict[str, list[UpdateOne]] = {}
        for (collection, doc_id), ids in by_doc.items():
            by_collection.setdefault(collection, []).append(
                UpdateOne(
                    {"_id": doc_id}, {"$unset": {f"{OUTBOX}.{i}": "" for i in ids}, "$inc": {OUTBOX_N: -len(ids)}}
                )
            )
        await asyncio.gather(*(self.db[c].bulk_write(ops, ordered=False) for c, ops in by_collection.items()))

    # -- safety net: events a crashed writer (any replica) left behind
    async def _sweep_loop(self) -> None:
        while not self._stopping:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox sweep failed", exc_info=True)
            await asyncio.sleep(self.settings.outbox_sweep_interval_s)

    async def sweep(self, grace_s: float | None = None) -> int:
        """Publish events older than the grace period still sitting in documents; returns how many."""
        if not await self._lease.acquire():
            return 0
        grace = timedelta(seconds=self.settings.outbox_sweep_grace_s if grace_s is None else grace_s)
        cutoff = utcnow() - grace
        found: list[PendingEvent] = []
        for collection in self.collections:
            candidates: list[Any] = []
            cursor = self.db[collection].find({OUTBOX_N: {"$gt": 0}}, {OUTBOX: 1})
            async for doc in cursor:
                if any(
                    eid not in self._held and entry.get("staged_at") is not None and entry["staged_at"] <= cutoff
                    for eid, entry in (doc.get(OUTBOX) or {}).items()
                ):
                    candidates.append(doc["_id"])
            # A long scan returns documents as they were when its batch was read: this relay may have published
            # and cleared their events since. Read each candidate again (by _id) and take only what is still there
            # and not in this relay's hands now.
            # Held before the read: published and cleared meanwhile. Held after it: written meanwhile (writes hold
            # their events before they are sent, so one the read saw is held by the time the read returns).
            for doc_id in candidates:
                held = set(self._held)
                fresh = await self.db[collection].find_one({"_id": doc_id}, {OUTBOX: 1})
                for eid, entry in ((fresh or {}).get(OUTBOX) or {}).items():
                    if eid in held or eid in self._held:
                        continue
                    if entry.get("staged_at") is not None and entry["staged_at"] <= cutoff:
                        found.append(_pending(collection, doc_id, eid, entry))
        for start in range(0, len(found), self.batch):
            await self.publish(found[start : start + self.batch])
            await self._clear(found[start : start + self.batch])
        if found:
            log.info("outbox sweeper published %d left-behind events", len(found))
        return len(found)
