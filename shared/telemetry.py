"""OpenTelemetry and logging set-up shared by every service: traces through FastAPI, Kafka and PyMongo;
OTLP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; JSON logs carrying trace and span ids."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current trace and span ids."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _KnownNoise(logging.Filter):
    """Lines that say nothing an operator can act on: FastStream warns at every subscriber start that the broker
    does not create topics, which is by design here (the topics command creates them, with their settings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Auto create topics is disabled")


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(_KnownNoise())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "pymongo", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def setup_telemetry(service: str, *, extra_processors: tuple[SpanProcessor, ...] = ()) -> TracerProvider:
    """Install the tracer provider once per process (later calls add processors and return the same one)."""
    global _provider
    if _provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": f"stvs-{service}"}))
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        PymongoInstrumentor().instrument(tracer_provider=provider)
        _provider = provider
    for processor in extra_processors:
        _provider.add_span_processor(processor)
    return _provider
