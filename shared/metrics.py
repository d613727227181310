"""Prometheus metrics shared by every service (served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUBLISHED = Counter("stvs_events_published_total", "Events published to Kafka", ["stream"])
CONSUMED = Counter("stvs_events_consumed_total", "Events handled by a consumer", ["group", "type", "outcome"])
RETRIED = Counter("stvs_events_retried_total", "Handler attempts that failed and were retried", ["group", "type"])
DEAD_LETTERED = Counter("stvs_events_dead_lettered_total", "Events sent to a dead-letter topic", ["group", "reason"])
OUTBOX_BACKLOG = Gauge("stvs_outbox_backlog", "Events written but not yet published by this process", ["service"])
CONSUMER_LAG = Gauge("stvs_consumer_lag", "Messages not yet consumed, per topic", ["group", "topic"])
HTTP_LATENCY = Histogram("stvs_http_request_seconds", "HTTP request latency", ["service", "method", "route", "status"])
