"""``python -m services.reporting.replay``: drop the projections and rebuild them from the start of the topics.

Runs the same use case under a fresh consumer group (so the topics are read from offset 0) until the group has
caught up with the end offsets taken at the start, then exits. Stop the service's projections consumer (the
service) while this runs: its events would otherwise race the rebuild. Submissions and issued certificates are
this service's own records and are kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from shared.service import Service
from shared.telemetry import setup_logging

from .adapters.mongo import MongoProjectionStore, indexes
from .consumers import STREAMS, committed, end_offsets, register
from .settings import ReportingSettings
from .usecases.projection import ProjectEvents

log = logging.getLogger("stvs.reporting.replay")

__all__ = ["committed", "end_offsets", "main", "replay"]


async def replay(settings: ReportingSettings, *, timeout_s: float = 3600.0) -> int:
    """Rebuild the projections; returns how many events the rebuild read."""
    service = Service("reporting", settings, indexes=indexes())
    store = MongoProjectionStore(service.db)
    await store.drop()
    consumer_name = f"{settings.projections_consumer}-replay-{uuid.uuid4().hex[:8]}"
    group = register(service, ProjectEvents(store), consumer_name).group
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
