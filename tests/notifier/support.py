"""Helpers of the notifier's integration tests: settings per namespace, running notifiers, publishing events,
a real SMTP server (aiosmtpd) and a real HTTP receiver (uvicorn + Starlette) on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.notifier.app import Notifier
from services.notifier.settings import NotifierSettings
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope
from shared.identity import Identity, acting_as
from shared.messaging.broker import make_broker
from shared.messaging.topics import ensure_topics

SHANGHAI_OFFSET = "+08:00"


def at(text: str) -> datetime:
    """A Shanghai time, e.g. at("2026-04-13 10:00")."""
    return datetime.fromisoformat(text.replace(" ", "T") + SHANGHAI_OFFSET)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def notifier_settings(infra: Any, **overrides: Any) -> NotifierSettings:
    """Settings of a fresh namespace (own topics and databases), small intervals and back-offs."""
    values: dict[str, Any] = {
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongo_url": infra.mongo_url,
        "namespace": "t" + uuid.uuid4().hex[:10],
        "consumer_backoff_ms": 20,
        "consumer_batch_size": 100,
        "outbox_sweep_interval_s": 3600,
        "outbox_sweep_grace_s": 0,
        "campaign_year": 2026,
        "scheduler_enabled": False,
        "delivery_enabled": False,
        "delivery_poll_interval_s": 0.05,
        "delivery_backoff_base_s": 0.05,
        "delivery_backoff_cap_s": 0.2,
        "webhook_timeout_s": 2.0,
        "subscription_cache_s": 0,
        "smtp_timeout_s": 2.0,
        "missed_digest_settle_s": 0.2,
        "province_office_email": "office@hebei.example",
    }
    values.update(overrides)
    settings = NotifierSettings(**values)
    await ensure_topics(settings, partitions=3)
    return settings


@contextlib.asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[Notifier]:
    await notifier.service.start()
    try:
        yield notifier
    finally:
        await notifier.service.stop()


async def publish(settings: NotifierSettings, *envelopes: Envelope[Any]) -> None:
    broker = make_broker(settings, service="test")
    await broker.start()
    try:
        for env in envelopes:
            await broker.publish(env.to_json(), topic=settings.topic(env.stream), key=env.subject.encode())
    finally:
        await broker.stop()


def envelope(data: ev.Event, subject: str, source: str = "/stvs/registry") -> Envelope[Any]:
    return Envelope.new(data, source=source, subject=subject)


def unit_registered(
    unit_id: str, *, name: str | None = None, email: str | None = None, contact: bool = True, version: int = 1
) -> Envelope[Any]:
    data = ev.UnitRegistered(
        unit_id=unit_id,
        name=name or f"测试支队{unit_id}",
        kind="county_team",
        parent_id="root",
        ancestors=["root"],
        status="active",
        registered_at=at("2026-04-01 10:00"),
        contact=ev.ContactRef(name="王联络", email=email) if contact else None,
        version=version,
    )
    return envelope(data, unit_id)


def headers(role: str = "province_admin", **fields: Any) -> dict[str, str]:
    identity = Identity(subject="tester", role=role, **fields)  # type: ignore[arg-type]
    return acting_as(identity)


# ---------------------------------------------------------------- SMTP


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


@contextlib.contextmanager
def smtp_server(port: int) -> Any:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


# ---------------------------------------------------------------- HTTP receiver


class Receiver:
    """A webhook receiver: ``/ok`` answers 204 after recording, ``/fail`` answers 500 after recording, ``/flaky``
    answers ``flaky_status`` after ``flaky_delay_s`` (a test makes it fail or time out, then repairs it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], bytes, float]] = []
        self.flaky_status = 500
        self.flaky_delay_s = 0.0
        self.port = free_port()
        self.check: Callable[[dict[str, str], bytes], None] | None = None
        self.verified: list[bool] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _ok(self, request: Request) -> Response:
        return await self._record(request, 204)

    async def _fail(self, request: Request) -> Response:
        return await self._record(request, 500)

    async def _flaky(self, request: Request) -> Response:
        response = await self._record(request, self.flaky_status)
        await asyncio.sleep(self.flaky_delay_s)
        return response

    async def _moved(self, request: Request) -> Response:
        await self._record(request, 307)
        return Response(status_code=307, headers={"Location": "/ok"})

    async def _record(self, request: Request, status: int) -> Response:
        body = await request.body()
        hdrs = dict(request.headers)
        self.calls.append((request.url.path, hdrs, body, asyncio.get_running_loop().time()))
        return Response(status_code=status)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Receiver]:
        app = Starlette(
            routes=[
                Route("/ok", self._ok, methods=["POST"]),
                Route("/fail", self._fail, methods=["POST"]),
                Route("/flaky", self._flaky, methods=["POST"]),
                Route("/moved", self._moved, methods=["POST"]),
            ]
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
            )
        )
        task = asyncio.create_task(server.serve())
        for _ in range(500):  # until uvicorn is listening (10 s at most)
            if server.started:
                break
            await asyncio.sleep(0.02)
        try:
            yield self
        finally:
            server.should_exit = True
            await task
