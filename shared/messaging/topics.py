"""Creates every event topic and its dead-letter topic (``python -m shared.messaging.topics``).

Partitions, replication factor and DLQ retention come from the settings (``STVS_TOPIC_PARTITIONS``,
``STVS_TOPIC_REPLICATION``, ``STVS_DLQ_RETENTION_DAYS``); on Kubernetes the Helm chart declares the same topics as
Strimzi ``KafkaTopic`` resources instead (``deploy/helm/stvs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.contracts.events import STREAMS
from shared.settings import ServiceSettings

log = logging.getLogger("stvs.topics")

DLQ_PARTITIONS = 1


def all_topics(settings: ServiceSettings) -> list[str]:
    names = [settings.topic(s) for s in STREAMS]
    return names + [f"{n}.dlq" for n in names]


async def ensure_topics(settings: ServiceSettings, partitions: int | None = None) -> list[str]:
    """Create missing topics; returns the names created. Safe to run any number of times.

    ``partitions`` overrides ``settings.topic_partitions`` (tests use fewer).
    """
    partitions = settings.topic_partitions if partitions is None else partitions
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="stvs-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in all_topics(settings) if t not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
                await admin.create_topics(
                    [
                        NewTopic(
                            t,
                            DLQ_PARTITIONS if t.endswith(".dlq") else partitions,
                            settings.topic_replication,
                            topic_configs=topic_config(t, settings),
                        )
                        for t in wanted
                    ]
                )
        return wanted
    finally:
        await admin.close()


def topic_config(topic: str, settings: ServiceSettings) -> dict[str, str]:
    """Kafka configuration of one topic."""
    # Events are the platform's history (replay rebuilds projections): keep them; DLQs keep dlq_retention_days.
    dlq_ms = settings.dlq_retention_days * 24 * 3600 * 1000
    config = {"retention.ms": str(dlq_ms) if topic.endswith(".dlq") else "-1"}
    if settings.topic_replication > 1:
        # acks=all then needs two copies (one when the factor is 2): a write survives the loss of a broker.
        config["min.insync.replicas"] = str(min(2, settings.topic_replication - 1))
    return config


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = ServiceSettings()
    created = asyncio.run(ensure_topics(settings))
    log.info("topics ready (%d created): %s", len(created), ", ".join(created) or "all existed")


if __name__ == "__main__":
    main()
