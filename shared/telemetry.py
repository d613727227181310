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
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None

# Attributes that carry a request's URL: its query string can hold names or ID-card numbers (a volunteer search),
# which never belong in a trace. The path stays (ids and route templates only).
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
_QUERY_ATTRIBUTES = ("url.query",)
REDACTED = "redacted"


class Redacted(SpanProcessor):
    """Hands ``inner`` (an exporting processor) each finished span with the query strings of its URL attributes
    removed: instrumentations set those attributes at any moment of a span's life, so it is done as it leaves."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(redact(span))

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def redact(span: ReadableSpan) -> ReadableSpan:
    attributes = dict(span.attributes or {})
    changed = False
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and "?" in value:
            attributes[name], changed = value.split("?", 1)[0] + "?" + REDACTED, True
    for name in _QUERY_ATTRIBUTES:
        if attributes.get(name):
            attributes[name], changed = REDACTED, True
    if not changed:
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


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

            provider.add_span_processor(Redacted(BatchSpanProcessor(OTLPSpanExporter())))
        trace.set_tracer_provider(provider)
        PymongoInstrumentor().instrument(tracer_provider=provider)
        _provider = provider
    for processor in extra_processors:
        _provider.add_span_processor(Redacted(processor))
    return _provider
