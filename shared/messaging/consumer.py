"""Idempotent, at-least-once event consumers with bounded retries and a dead-letter topic.

Each message is parsed strictly (a message that is not one of our events goes straight to ``<topic>.dlq`` with
the reason), skipped when its event id was already processed by this group, handed to the handler registered for
its type with retries and exponential backoff, and dead-lettered after the last attempt — the partition moves on.
Offsets are committed only after the whole poll was handled (FastStream ``AckPolicy.NACK_ON_ERROR``); when
MongoDB or Kafka itself is unreachable nothing is committed and the poll is redelivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import propagate, trace
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from shared.contracts.envelope import MAX_EVENT_BYTES, Envelope, EnvelopeError, parse_envelope
from shared.contracts.events import Event
from shared.metrics import CONSUMED, CONSUMER_LAG, DEAD_LETTERED, RETRIED
from shared.settings import ServiceSettings
from shared.storage import Doc, utcnow

log = logging.getLogger("stvs.consumer")
tracer = trace.get_tracer("stvs.consumer")

PROCESSED = "_processed"
E = TypeVar("E", bound=Event)
Handler = Callable[[Envelope[Any]], Awaitable[None]]

# Headers of a dead letter.
H_ERROR = "x-stvs-error"
H_REASON = "x-stvs-reason"
H_ATTEMPTS = "x-stvs-attempts"
H_TOPIC = "x-stvs-original-topic"
H_PARTITION = "x-stvs-original-partition"
H_OFFSET = "x-stvs-original-offset"
H_GROUP = "x-stvs-consumer-group"
H_AT = "x-stvs-dead-lettered-at"
H_TRUNCATED = "x-stvs-truncated-from"
# On a replayed dead letter: the one consumer group it is replayed for. Every other group on the topic handled the
# event when it first came (or dead-lettered it itself) and leaves the replay alone, whatever it still remembers.
H_REPLAY_FOR = "x-stvs-replay-for"


async def _raw(msg: Any) -> Any:
    # Never let the framework decode: a poison message must reach our parser (and the DLQ), not crash the poll.
    return msg.body


async def partitions_of_admin(admin: AIOKafkaAdminClient, topic: str) -> list[int]:
    described = await admin.describe_topics([topic])
    return sorted(p["partition"] for d in described if d.get("error_code") == 0 for p in d["partitions"])


def processed_retention_s(settings: ServiceSettings) -> int:
    """How long a group remembers the ids it processed: as long as a dead letter can still be replayed, plus a week."""
    return (settings.dlq_retention_days + 7) * 86_400


class InfrastructureDown(Exception):
    """MongoDB or Kafka unreachable: the poll is not committed and will be redelivered."""


TRANSIENT: tuple[type[BaseException], ...] = (ConnectionFailure, KafkaError, InfrastructureDown)


class EventConsumer:
    """A consumer group of one service: register handlers per event type, then :meth:`attach` to the broker."""

    def __init__(
        self,
        *,
        service: str,
        name: str,
        settings: ServiceSettings,
        db: AsyncDatabase[Doc],
        streams: Sequence[str],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll_wait_ms: int = 200,
    ) -> None:
        self.service = service
        # how long a poll waits for records; FastStream also sleeps that long after an empty one
        self.poll_wait_ms = poll_wait_ms
        self.group = f"{settings.namespace + '.' if settings.namespace else ''}stvs.{service}.{name}"
        self.settings = settings
        self.db = db
        self.streams = list(streams)
        self.handlers: dict[str, Handler] = {}
        self._sleep = sleep
        self._broker: KafkaBroker | None = None

    def on(self, *event_classes: type[Event]) -> Callable[[Handler], Handler]:
        """Decorator: handle these event types (the handler receives the whole envelope)."""

        def register(handler: Handler) -> Handler:
            for cls in event_classes:
                if cls.stream not in self.streams:
                    raise ValueError(f"{cls.__name__} is on {cls.stream}, not subscribed by {self.group}")
                self.handlers[cls.event_type] = handler
            return handler

        return register

    @property
    def topics(self) -> list[str]:
        return [self.settings.topic(s) for s in self.streams]

    def attach(self, broker: KafkaBroker) -> None:
        """Create the FastStream subscriber (batch, explicit at-least-once ack policy)."""
        self._broker = broker

        @broker.subscriber(
            *self.topics,
            group_id=self.group,
            batch=True,
            max_records=self.settings.consumer_batch_size,
            batch_timeout_ms=self.poll_wait_ms,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=_raw,
        )
        async def handle_batch(msg: KafkaMessage) -> None:
            records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
            await self.handle_records(records)

    async def lag(self) -> dict[str, int]:
        """Messages not yet consumed by this group, per topic (end offsets minus committed offsets)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        probe = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None)
        await admin.start()
        await probe.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.group)
            tps = [TopicPartition(t, p) for t in self.topics for p in await partitions_of_admin(admin, t)]
            ends = await probe.end_offsets(tps) if tps else {}
        finally:
            await probe.stop()
            await admin.close()
        lag: dict[str, int] = {}
        for tp, end in ends.items():
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[tp.topic] = lag.get(tp.topic, 0) + max(end - done, 0)
        for topic, value in lag.items():
            CONSUMER_LAG.labels(self.group, topic).set(value)
        return lag

    async def handle_records(self, records: Iterable[ConsumerRecord[Any, Any]]) -> None:
        for record in records:
            await self.handle_record(record)

    async def handle_record(self, record: ConsumerRecord[Any, Any]) -> None:
        headers = {k: (v.decode(errors="replace") if v else "") for k, v in (record.headers or ())}
        if headers.get(H_REPLAY_FOR, self.group) != self.group:
            CONSUMED.labels(self.group, "-", "replay_for_another_group").inc()
            return
        try:
            env = parse_envelope(record.value or b"")
        except EnvelopeError as exc:
            await self.dead_letter(record, reason=exc.reason, error=exc.detail, attempts=0)
            return
        handler = self.handlers.get(env.type)
        if handler is None:
            CONSUMED.labels(self.group, env.type, "ignored").inc()
            return
        ctx = propagate.extract(headers)
        with tracer.start_as_current_span(
            f"{env.type} process",
            context=ctx,
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.consumer.group.name": self.group, "stvs.event.id": env.id},
        ):
            if await self._already_processed(env.id):
                CONSUMED.labels(self.group, env.type, "duplicate").inc()
                return
            attempts = 0
            delay = self.settings.consumer_backoff_ms / 1000
            while True:
                attempts += 1
                try:
                    await handler(env)
                    break
                except TRANSIENT as exc:
                    await self._sleep(max(delay, 0.5))
                    raise InfrastructureDown(str(exc)) from exc
                except PyMongoError as exc:
                    if attempts >= self.settings.consumer_max_attempts:
                        await self.dead_letter(record, reason="handler_failed", error=repr(exc), attempts=attempts)
                        return
                except Exception as exc:
                    if attempts >= self.settings.consumer_max_attempts:
                        log.warning("event %s (%s) dead-lettered after %d attempts", env.id, env.type, attempts)
                        await self.dead_letter(record, reason="handler_failed", error=repr(exc), attempts=attempts)
                        return
                RETRIED.labels(self.group, env.type).inc()
                await self._sleep(delay)
                delay *= 2
            await self._mark_processed(env.id)
            CONSUMED.labels(self.group, env.type, "ok").inc()

    async def _already_processed(self, event_id: str) -> bool:
        try:
            return await self.db[PROCESSED].find_one({"_id": f"{self.group}:{event_id}"}, {"_id": 1}) is not None
        except ConnectionFailure as exc:
            await self._sleep(0.5)
            raise InfrastructureDown(str(exc)) from exc

    async def _mark_processed(self, event_id: str) -> None:
        # kept while a dead letter of it can be replayed (a TTL index, see :func:`processed_indexes`)
        try:
            await self.db[PROCESSED].insert_one({"_id": f"{self.group}:{event_id}", "at": utcnow()})
        except DuplicateKeyError:
            pass
        except ConnectionFailure as exc:
            raise InfrastructureDown(str(exc)) from exc

    async def dead_letter(self, record: ConsumerRecord[Any, Any], *, reason: str, error: str, attempts: int) -> None:
        """Publish the original message, untouched, to ``<topic>.dlq`` with why, where from and how often."""
        assert self._broker is not None, "attach() the consumer to a broker first"
        headers = {k: (v.decode(errors="replace") if v else "") for k, v in (record.headers or ())}
        headers.update(
            {
                H_REASON: reason,
                H_ERROR: error[:2000],
                H_ATTEMPTS: str(attempts),
                H_TOPIC: record.topic,
                H_PARTITION: str(record.partition),
                H_OFFSET: str(record.offset),
                H_GROUP: self.group,
                H_AT: utcnow().isoformat(),
            }
        )
        value = record.value or b""
        if len(value) > MAX_EVENT_BYTES:
            headers[H_TRUNCATED] = str(len(value))
            value = value[:MAX_EVENT_BYTES]
        await self._broker.publish(
            value,
            topic=f"{record.topic}.dlq",
            key=record.key,
            headers=headers,
        )
        DEAD_LETTERED.labels(self.group, reason).inc()
        CONSUMED.labels(self.group, "-", f"dead_lettered:{reason}").inc()
