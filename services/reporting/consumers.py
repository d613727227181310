"""Every subscriber of the reporting service: the projections' consumer group on the four streams (units,
volunteers, activities, reports), handing each poll to the projection use case; and the offsets a replay watches."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry import propagate, trace
from opentelemetry.context import Context

from shared.contracts.envelope import Envelope, EnvelopeError, parse_envelope
from shared.contracts.events import ACTIVITIES, REPORTS, UNITS, VOLUNTEERS
from shared.messaging.consumer import TRANSIENT, EventConsumer, InfrastructureDown
from shared.messaging.dlq import partitions_of
from shared.metrics import CONSUMED
from shared.service import Service

from .domain.projection import HANDLED
from .settings import ReportingSettings
from .usecases.projection import ProjectEvents

log = logging.getLogger("stvs.reporting.projections")
tracer = trace.get_tracer("stvs.reporting.projections")

STREAMS = [UNITS, VOLUNTEERS, ACTIVITIES, REPORTS]
# How long a poll waits for events (and FastStream then sleeps, when none came): the freshness of an idle service.
POLL_WAIT_MS = 20


class BatchConsumer(EventConsumer):
    """The shared consumer, handing a whole poll to the projection use case (:meth:`ProjectEvents.apply`).

    Poison messages go to the dead-letter topic as usual; if applying the poll fails for another reason than an
    infrastructure outage, it is handled event by event through the shared path (retries, dead letters), which the
    projections' idempotency makes safe. Offsets are committed once the poll is applied (at least once).
    """

    def __init__(self, *, projections: ProjectEvents, **kwargs: Any) -> None:
        # an idle service sees an event within POLL_WAIT_MS (FastStream sleeps as long as it waited on an empty poll)
        super().__init__(poll_wait_ms=POLL_WAIT_MS, **kwargs)
        self.projections = projections
        self.batches = 0  # polls applied as a batch, and their events (figures for the benchmark)
        self.batched_events = 0

    async def handle_records(self, records: Iterable[ConsumerRecord[Any, Any]]) -> None:
        records = list(records)
        envs: list[Envelope[Any]] = []
        contexts: list[Context] = []
        for record in records:
            headers = {k: (v.decode(errors="replace") if v else "") for k, v in (record.headers or ())}
            if "traceparent" in headers:
                contexts.append(propagate.extract(headers))
            try:
                env = parse_envelope(record.value or b"")
            except EnvelopeError as exc:
                await self.dead_letter(record, reason=exc.reason, error=exc.detail, attempts=0)
                continue
            if env.type not in self.handlers:
                CONSUMED.labels(self.group, env.type, "ignored").inc()
                continue
            envs.append(env)
        if not envs:
            return
        # One span for the batch: a child of the first event's trace (a lone event — the usual case when the
        # projections keep up — continues its request's trace), linked to the traces of all the others.
        spans = [trace.get_current_span(ctx).get_span_context() for ctx in contexts]
        links = [trace.Link(span) for span in spans if span.is_valid]
        with tracer.start_as_current_span(
            f"{len(envs)} events process",
            context=contexts[0] if contexts else None,
            kind=trace.SpanKind.CONSUMER,
            links=links[1:],
            attributes={"messaging.consumer.group.name": self.group, "messaging.batch.message_count": len(envs)},
        ):
            await self._apply(records, envs)

    async def _apply(self, records: list[ConsumerRecord[Any, Any]], envs: list[Envelope[Any]]) -> None:
        try:
            await self.projections.apply(envs)
        except TRANSIENT as exc:
            await self._sleep(0.5)
            raise InfrastructureDown(str(exc)) from exc
        except Exception as exc:
            log.warning("batch of %d events failed (%r); applying them one by one", len(envs), exc)
            for record in records:
                await self.handle_record(record)
            return
        self.batches += 1
        self.batched_events += len(envs)
        for env in envs:
            CONSUMED.labels(self.group, env.type, "ok").inc()


def register(service: Service, projections: ProjectEvents, consumer_name: str = "projections") -> BatchConsumer:
    """One consumer group on the four streams feeding the projections, applying each poll as a batch."""
    settings = service.settings
    batch_size = settings.consumer_batch_size
    if isinstance(settings, ReportingSettings):
        batch_size = settings.projections_batch_size
    consumer = BatchConsumer(
        projections=projections,
        service=service.name,
        name=consumer_name,
        settings=settings.model_copy(update={"consumer_batch_size": batch_size}),
        db=service.db,
        streams=STREAMS,
    )
    consumer.on(*HANDLED)(projections.handle)
    consumer.attach(service.broker)
    service.consumers.append(consumer)
    return consumer


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of these topics (where a replay is caught up)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in await partitions_of(bootstrap, t)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps) if tps else {}
        return ends
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The offsets a consumer group committed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items()}
