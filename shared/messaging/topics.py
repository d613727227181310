"""Creates every event topic and its dead-letter topic (``python -m shared.messaging.topics``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.contracts.events import STREAMS
from shared.settings import ServiceSettings

log = logging.getLogger("stvs.topics")

PARTITIONS = 6


def all_topics(settings: ServiceSettings) -> list[str]:
    names = [settings.topic(s) for s in STREAMS]
    return names + [f"{n}.dlq" for n in names]


async def ensure_topics(settings: ServiceSettings, partitions: int = PARTITIONS) -> list[str]:
    """Create missing topics; returns the names created. Safe to run any number of times."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="stvs-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in all_topics(settings) if t not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
                await admin.create_topics(
                    [
                        NewTopic(t, 1 if t.endswith(".dlq") else partitions, 1, topic_configs=_config(settings, t))
                        for t in wanted
                    ]
                )
        return wanted
    finally:
        await admin.close()


def _config(settings: ServiceSettings, topic: str) -> dict[str, str]:
    # Events are the platform's history (replay rebuilds projections): keep them; DLQs keep dlq_retention_days.
    if topic.endswith(".dlq"):
        return {"retention.ms": str(settings.dlq_retention_days * 24 * 3600 * 1000)}
    return {"retention.ms": "-1"}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = ServiceSettings()
    created = asyncio.run(ensure_topics(settings))
    log.info("topics ready (%d created): %s", len(created), ", ".join(created) or "all existed")


if __name__ == "__main__":
    main()
