"""``python -m services.reporting.replay``: drop the projections and rebuild them from the start of the topics.

Runs the same handlers under a fresh consumer group (so the topics are read from offset 0) until the group has
caught up with the end offsets taken at the start, then exits. Stop the service's projections consumer (the
service) while this runs: its events would otherwise race the rebuild. Submissions and issued certificates are
this service's own records and are kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.messaging.dlq import partitions_of
from shared.service import Service
from shared.telemetry import setup_logging

from .projections import STREAMS, register
from .settings import ReportingSettings
from .store import APPLIED, PROJECTIONS, indexes

log = logging.getLogger("stvs.reporting.replay")


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in await partitions_of(bootstrap, t)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps) if tps else {}
        return ends
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items()}


async def replay(settings: ReportingSettings, *, timeout_s: float = 3600.0) -> int:
    """Rebuild the projections; returns how many events the rebuild read."""
    service = Service("reporting", settings, indexes=indexes())
    for name in (*PROJECTIONS, APPLIED):
        await service.db.drop_collection(name)
    consumer_name = f"{settings.projections_consumer}-replay-{uuid.uuid4().hex[:8]}"
    register(service, consumer_name)
    group = service.consumers[0].group
    topics = [settings.topic(s) for s in STREAMS]
    target = {tp: end for tp, end in (await end_offsets(settings.kafka_bootstrap, topics)).items() if end > 0}
    started = time.monotonic()
    await service.start()
    try:
        while True:
            done = await committed(settings.kafka_bootstrap, group)
            if all(done.get(tp, -1) >= end for tp, end in target.items()):
                break
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"replay did not catch up within {timeout_s}s")
            await asyncio.sleep(0.2)
    finally:
        await service.stop()
    total = sum(target.values())
    log.info("projections rebuilt from %d events in %.1fs (group %s)", total, time.monotonic() - started, group)
    return total


def main() -> None:
    settings = ReportingSettings()
    setup_logging("reporting", settings.log_level)
    asyncio.run(replay(settings))


if __name__ == "__main__":
    main()
