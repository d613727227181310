"""The outbox relay: publishes the events staged in aggregate documents (:mod:`shared.messaging.outbox`) to Kafka,
in order per aggregate, and removes them from their documents; a sweeper publishes what a crash left behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from opentelemetry import propagate, trace
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.lease import Lease
from shared.messaging.outbox import CLOUDEVENTS_JSON, OUTBOX, OUTBOX_N, PendingEvent, _pending
from shared.metrics import OUTBOX_BACKLOG, PUBLISHED
from shared.settings import ServiceSettings
from shared.storage import Doc, utcnow

log = logging.getLogger("stvs.outbox")
tracer = trace.get_tracer("stvs.outbox")


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
