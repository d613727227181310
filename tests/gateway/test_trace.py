"""One request that causes events is one trace: gateway → registry → Kafka → every consuming service → MongoDB.

The gateway and the four services run in this process (their ASGI apps served by uvicorn, their consumers in the
same event loop) against the real Kafka and MongoDB-protocol server, with the SDK's in-memory exporter on the one
tracer provider.
A volunteer registered through the gateway must leave, in one trace: the gateway's server span, its call to the
registry, the registry's server span, the Kafka publish of ``VolunteerRegistered``, the handling of that event by
the consumers of the gateway, the activities service and the notifier, and their MongoDB commands, each linked to
its parent. The reporting projections apply a whole poll as one batch: the batch's span continues the first
event's trace and links to the others', so the registration's trace reaches it either way.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.activities.app import create_app as activities_app
from services.activities.settings import ActivitiesSettings
from services.gateway.app import create_app as gateway_app
from services.gateway.create_admin import create_admin
from services.gateway.settings import GatewaySettings
from services.notifier.app import create_app as notifier_app
from services.notifier.settings import NotifierSettings
from services.registry.app import create_app as registry_app
from services.registry.settings import RegistrySettings
from services.reporting.app import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from shared.settings import ServiceSettings
from shared.telemetry import setup_telemetry
from tests.fixtures import eventually
from tests.gateway.upstream import serving
from tests.registry.helpers import CONTACT, volunteer_body

ADMIN = ("trace-admin", "trace-admin-pass")
REGISTERED = "stvs.volunteer.registered.v1"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    found = InMemorySpanExporter()
    setup_telemetry("test", extra_processors=(SimpleSpanProcessor(found),))
    return found


@pytest.fixture(scope="module")
async def gateway(settings: ServiceSettings, exporter: InMemorySpanExporter) -> AsyncIterator[str]:
    """The platform in this process; yields the gateway's base URL."""
    values = {k: v for k, v in settings.model_dump().items() if k != "http_port"}
    apps = {
        "registry": registry_app(RegistrySettings(**values)),
        "activities": activities_app(ActivitiesSettings(**values)),
        "reporting": reporting_app(ReportingSettings(**values)),
        "notifier": notifier_app(NotifierSettings(**values, scheduler_enabled=False, delivery_enabled=False)),
    }
    async with contextlib.AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(serving(app, lifespan="on")) for name, app in apps.items()}
        gs = GatewaySettings(**values, **{f"{name}_url": url for name, url in urls.items()})
        await create_admin(gs, *ADMIN, "省级管理员")
        yield await stack.enter_async_context(serving(gateway_app(gs), lifespan="on"))


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    out = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        out.append(span)
    return out


async def test_a_volunteer_registration_is_one_trace(gateway: str, exporter: InMemorySpanExporter) -> None:
    async with httpx.AsyncClient(base_url=gateway + "/api/v1", timeout=30) as client:
        r = await client.post("/auth/signin", json=dict(zip(("username", "password"), ADMIN, strict=True)))
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        corps = await client.post(
            "/units",
            headers=auth,
            json={
                "kind": "province_corps",
                "leaders": [{"name": "张总队", "role": "总队长"}, {"name": "王副总", "role": "副总队长"}],
                "phone": "0311-85012345",
                "contact": CONTACT,
            },
        )
        assert corps.status_code == 201, corps.text

        trace_id = secrets.randbits(128)
        traceparent = f"00-{trace_id:032x}-{secrets.randbits(64):016x}-01"
        r = await client.post(
            "/volunteers",
            headers={**auth, "traceparent": traceparent},
            json=volunteer_body(7, unit_id=corps.json()["id"]),
        )
        assert r.status_code == 201, r.text

    def in_trace() -> list[ReadableSpan]:
        return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]

    def groups_done() -> set[str]:
        return {
            str((s.attributes or {}).get("messaging.consumer.group.name"))
            for s in in_trace()
            if s.kind == SpanKind.CONSUMER and s.name == f"{REGISTERED} process"
        }

    def reporting_batches() -> list[ReadableSpan]:
        # the projections' batch span: in this trace (the event came first in its poll) or linked to it
        return [
            s
            for s in exporter.get_finished_spans()
            if s.kind == SpanKind.CONSUMER
            and ".reporting." in f".{(s.attributes or {}).get('messaging.consumer.group.name')}."
            and (s.context.trace_id == trace_id or any(link.context.trace_id == trace_id for link in s.links))
        ]

    # the gateway's own copy, the activities service's volunteers, the notifier's notices and webhooks, and the
    # reporting projections
    def three_services() -> bool:
        done = {"gateway", "activities", "notifier"} <= {g.split(".")[-2] for g in groups_done()}
        return done and bool(reporting_batches())

    try:
        await eventually(three_services, timeout_s=60)
    except AssertionError:
        every = exporter.get_finished_spans()
        raise AssertionError(
            "\n".join(
                f"{s.context.trace_id == trace_id} {s.kind} {s.name} {dict(s.attributes or {})}"
                for s in every
                if s.kind != SpanKind.INTERNAL
            )[-6000:]
        ) from None
    spans = in_trace()
    by_id = {s.context.span_id: s for s in spans}
    names = sorted(s.name for s in spans)

    def route(span: ReadableSpan) -> Any:
        return (span.attributes or {}).get("http.route")

    servers = [s for s in spans if s.kind == SpanKind.SERVER and s.name.startswith("POST")]
    at_gateway = next(s for s in servers if route(s) == "/api/v1/{path:path}")
    at_registry = next(s for s in servers if route(s) == "/volunteers")
    hop = next(s for s in spans if s.kind == SpanKind.CLIENT and s.name.startswith("POST"))
    assert at_gateway in ancestors(hop, by_id), names
    assert at_registry.parent is not None and at_registry.parent.span_id == hop.context.span_id, names

    publishes = [s for s in spans if s.kind == SpanKind.PRODUCER and s.name.endswith("volunteers publish")]
    assert publishes, names
    publish = publishes[0]
    assert at_registry in ancestors(publish, by_id), "the Kafka publish continues the registry's request"

    consumed = [s for s in spans if s.kind == SpanKind.CONSUMER and s.name == f"{REGISTERED} process"]
    services = {str((s.attributes or {}).get("messaging.consumer.group.name")).split(".")[-2] for s in consumed}
    assert {"gateway", "activities", "notifier"} <= services, services
    for handling in consumed:
        assert handling.parent is not None and handling.parent.span_id in {p.context.span_id for p in publishes}
        mongo = [
            s for s in spans if (s.attributes or {}).get("db.system") == "mongodb" and handling in ancestors(s, by_id)
        ]
        assert mongo, f"no MongoDB command under {handling.attributes}"
    # the registry's own writes are in the trace too
    assert any(
        (s.attributes or {}).get("db.system") == "mongodb" and at_registry in ancestors(s, by_id) for s in spans
    ), names
