"""Trace context crosses Kafka: a write in a request and the consumer's handling of its event are one trace."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.contracts.envelope import Envelope
from shared.contracts.events import VOLUNTEERS, VolunteerJoinedUnit
from shared.service import Service
from shared.settings import ServiceSettings
from shared.storage import Indexes
from shared.telemetry import setup_telemetry
from tests.fixtures import eventually


async def test_one_trace_from_the_writing_request_to_the_consumer_and_its_database_calls(
    settings: ServiceSettings,
) -> None:
    exporter = InMemorySpanExporter()
    setup_telemetry("test", extra_processors=(SimpleSpanProcessor(exporter),))
    tracer = trace.get_tracer("test")

    service = Service("tracing", settings, indexes=Indexes(), outbox_collections=["volunteers"])
    consumer = service.consumer("main", [VOLUNTEERS])
    handled: list[str] = []

    @consumer.on(VolunteerJoinedUnit)
    async def on_joined(env: Envelope[Any]) -> None:
        await service.db.seen.insert_one({"_id": env.id})
        handled.append(env.id)

    await service.start()
    try:
        with tracer.start_as_current_span("POST /volunteers") as request_span:
            env = Envelope.new(
                VolunteerJoinedUnit(volunteer_id="v-tr", unit_id="u1", joined_at=datetime.now(UTC), version=1),
                source="/stvs/registry",
                subject="v-tr",
            )
            await service.outbox.insert_one("volunteers", {"_id": "v-tr"}, [env])
        trace_id = request_span.get_span_context().trace_id
        await eventually(lambda: env.id in handled)
    finally:
        await service.stop()

    in_trace = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    kinds = {s.kind for s in in_trace}
    names = [s.name for s in in_trace]
    assert trace.SpanKind.PRODUCER in kinds, names
    assert any(s.kind == trace.SpanKind.CONSUMER and "process" in s.name for s in in_trace), names
    assert any(s.attributes and s.attributes.get("db.system") == "mongodb" for s in in_trace), names
    handler_span = next(s for s in in_trace if s.name == f"{env.type} process")
    assert any(
        s.parent is not None and s.parent.span_id == handler_span.context.span_id and "insert" in s.name
        for s in in_trace
    ), "the consumer's MongoDB write is a child of its handling span"


async def test_no_query_string_reaches_a_trace() -> None:
    """A volunteer search by name: the name travels in the query string, never into a span."""
    import httpx
    from fastapi import FastAPI
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    exporter = InMemorySpanExporter()
    setup_telemetry("test", extra_processors=(SimpleSpanProcessor(exporter),))
    app = FastAPI()

    @app.get("/volunteers")
    async def search(name: str) -> dict[str, int]:
        return {"total": 0}

    FastAPIInstrumentor.instrument_app(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        assert (
            await client.get("/volunteers", params={"name": "张科普", "id": "130102199001011234"})
        ).status_code == 200
    spans = [s for s in exporter.get_finished_spans() if s.attributes]
    assert spans, "the request was traced"
    text = repr([dict(s.attributes or {}) for s in spans]) + repr([s.name for s in spans])
    assert "张科普" not in text and "%E5%BC%A0" not in text and "130102199001011234" not in text, text
