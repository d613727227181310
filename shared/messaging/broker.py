"""The FastStream Kafka broker every service uses: idempotent producer (acks=all), telemetry, metrics."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry

from shared.settings import ServiceSettings


def make_broker(settings: ServiceSettings, *, service: str, registry: CollectorRegistry | None = None) -> KafkaBroker:
    """A broker whose producer never loses or duplicates on retry (idempotence, acks=all)."""
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=f"stvs-{service}",
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=15_000,
        allow_auto_create_topics=False,
        graceful_timeout=20.0,
        middlewares=[
            KafkaTelemetryMiddleware(tracer_provider=trace.get_tracer_provider()),
            KafkaPrometheusMiddleware(registry=registry or REGISTRY, app_name=f"stvs-{service}"),
        ],
        logger=logging.getLogger(f"stvs.{service}.kafka"),
        log_level=logging.DEBUG,
    )
