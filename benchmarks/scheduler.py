"""Deadline scheduler and webhook fan-out of the notifier (issue 7). Each part runs its own notifier in-process.

1. Webhook fan-out: 20 subscriptions to ``stvs.unit.registered.v1`` on a local HTTP receiver (uvicorn, loopback),
   then 100 UnitRegistered events published onto the units topic; from the first publish until the receiver has
   all 2,000 deliveries (and no more): ``webhook_deliveries_per_s``.
2. 1,500 units without a contact person (every obligation of the campaign open) are put into the notifier's store
   as its consumer does (``Handlers.on_unit``, as the notifier tests do). One scheduler pass is then timed at a
   moment when reminders are due (2026-05-10 10:00 Shanghai: registration, action plan and April report missed, so
   three slots per unit): ``evaluate_1500_units_s`` and ``slots_claimed``; until its 4,500 events are published and
   cleared from their claim documents: ``evaluate_and_publish_1500_units_s``. A second pass over the same moment
   (another replica, or after a restart: the scheduler remembers nothing, one indexed query tells which due slots
   are claimed, nothing is published) gives ``reevaluate_1500_units_s``. Then two replicas pass at once, without
   the lease, over a later moment (2026-06-10 10:00: the May report missed, one new slot per unit):
   ``race_two_replicas_1500_units_s``; each new slot must be claimed by exactly one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.harness import BenchContext, drop_namespace
from services.notifier.adapters.mongo import SLOTS
from services.notifier.app import Notifier
from services.notifier.settings import NotifierSettings
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope
from shared.identity import Identity, SignedIdentity, acting_as
from shared.messaging.broker import make_broker
from shared.messaging.topics import ensure_topics

UNITS = 1_500
SUBSCRIBERS = 20
EVENTS = 100
UNIT_REGISTERED = "stvs.unit.registered.v1"
DUE_AT = datetime.fromisoformat("2026-05-10T10:00:00+08:00")
RACE_AT = datetime.fromisoformat("2026-06-10T10:00:00+08:00")
REGISTERED_AT = datetime.fromisoformat("2026-04-01T10:00:00+08:00")
DELIVERY_TIMEOUT_S = 180.0


def _unit_registered(unit_id: str) -> Envelope[Any]:
    data = ev.UnitRegistered(
        unit_id=unit_id,
        name=f"基准支队{unit_id}",
        kind="county_team",
        parent_id="root",
        ancestors=["root"],
        status="active",
        registered_at=REGISTERED_AT,
        contact=None,
        version=1,
    )
    return Envelope.new(data, source="/stvs/registry", subject=unit_id)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Receiver:
    """Answers 204 to every POST and counts them."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.calls = 0
        self.last_at = 0.0
        self.expected = 0
        self.all_in = asyncio.Event()

    async def _hook(self, request: Request) -> Response:
        await request.body()
        self.calls += 1
        self.last_at = time.perf_counter()
        if self.expected and self.calls >= self.expected:
            self.all_in.set()
        return Response(status_code=204)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[_Receiver]:
        app = Starlette(routes=[Route("/hook/{n}", self._hook, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.02)
        try:
            yield self
        finally:
            server.should_exit = True
            await task


def _settings(ctx: BenchContext) -> NotifierSettings:
    """A fresh namespace; the scheduler loop off (passes are run by hand), delivery on and polled often."""
    return NotifierSettings(
        kafka_bootstrap=ctx.kafka_bootstrap,
        mongo_url=ctx.mongo_url,
        namespace="b" + uuid.uuid4().hex[:8],
        campaign_year=2026,
        scheduler_enabled=False,
        delivery_enabled=True,
        delivery_poll_interval_s=0.05,
        subscription_cache_s=0,
        webhook_timeout_s=5.0,
        outbox_sweep_interval_s=3600,
    )


@contextlib.asynccontextmanager
async def _notifier(settings: NotifierSettings) -> AsyncIterator[Notifier]:
    """The notifier in-process on a fresh namespace; its databases dropped afterwards."""
    await ensure_topics(settings)
    notifier = Notifier(settings, holder="bench")
    try:
        async with notifier.app.router.lifespan_context(notifier.app):
            yield notifier
    finally:
        await drop_namespace(settings.mongo_url, settings.namespace)


async def _evaluate(ctx: BenchContext) -> None:
    async with _notifier(_settings(ctx)) as notifier:
        obligations = notifier.handlers
        unit_ids = [f"bu-{i:05d}" for i in range(UNITS)]
        for start in range(0, UNITS, 100):
            await asyncio.gather(*(obligations.on_unit(_unit_registered(u)) for u in unit_ids[start : start + 100]))
        scheduler = notifier.scheduler
        started = time.perf_counter()
        claimed = await scheduler.run_once(DUE_AT, use_lease=False)
        ctx.report("evaluate_1500_units_s", time.perf_counter() - started)
        ctx.report("slots_claimed", claimed)
        if claimed < UNITS:
            raise RuntimeError(f"expected at least one due slot per unit, claimed {claimed}")
        assert notifier.service.relay is not None
        await notifier.service.relay.flush()  # every event published and taken out of its claim document
        ctx.report("evaluate_and_publish_1500_units_s", time.perf_counter() - started)

        started = time.perf_counter()  # as a fresh replica or after a restart: the claims themselves answer
        again = await scheduler.run_once(DUE_AT, use_lease=False)
        ctx.report("reevaluate_1500_units_s", time.perf_counter() - started)
        if again != 0:
            raise RuntimeError(f"a second pass claimed {again} slots again")

        slots = notifier.service.db[SLOTS]
        before = await slots.count_documents({})
        other = Notifier(notifier.settings, holder="bench-b")  # a second replica (its own client and outbox)
        try:
            async with other.app.router.lifespan_context(other.app):
                started = time.perf_counter()
                raced = await asyncio.gather(
                    scheduler.run_once(RACE_AT, use_lease=False), other.scheduler.run_once(RACE_AT, use_lease=False)
                )
                ctx.report("race_two_replicas_1500_units_s", time.perf_counter() - started)
        finally:
            await other.service.client.close()
        new = await slots.count_documents({}) - before
        if sum(raced) != new or new < UNITS:
            raise RuntimeError(f"two racing replicas claimed {raced} for {new} new slots")


async def _fan_out(ctx: BenchContext) -> None:
    settings = _settings(ctx)
    secret = settings.internal_token.get_secret_value()
    admin = Identity(subject="bench", role="province_admin")
    receiver = _Receiver()
    async with (
        receiver.serving(),
        _notifier(settings) as notifier,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(notifier.app),
            auth=SignedIdentity(secret, "notifier"),
            base_url="http://notifier",
        ) as http,
    ):
        for n in range(SUBSCRIBERS):
            r = await http.post(
                "/subscriptions",
                json={"url": f"http://127.0.0.1:{receiver.port}/hook/{n}", "event_types": [UNIT_REGISTERED]},
                headers=acting_as(admin),
            )
            if r.status_code != 201:
                raise RuntimeError(f"subscribing: {r.status_code} {r.text}")
        expected = receiver.expected = SUBSCRIBERS * EVENTS
        envelopes = [_unit_registered(f"bw-{i:04d}") for i in range(EVENTS)]
        broker = make_broker(settings, service="bench")
        await broker.start()
        try:
            started = time.perf_counter()
            for env in envelopes:
                await broker.publish(env.to_json(), topic=settings.topic(env.stream), key=env.subject.encode())
        finally:
            await broker.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver.all_in.wait(), DELIVERY_TIMEOUT_S)
        if receiver.calls < expected:
            raise RuntimeError(f"only {receiver.calls} of {expected} webhook deliveries in {DELIVERY_TIMEOUT_S:g}s")
        ctx.report("webhook_deliveries_per_s", expected / (receiver.last_at - started))
        await asyncio.sleep(0.5)
        if receiver.calls != expected:
            raise RuntimeError(f"{receiver.calls} webhook deliveries for {expected} (event, subscriber) pairs")


async def bench(ctx: BenchContext) -> None:
    await _fan_out(ctx)  # first, so the scheduler's 4,500 deadline events are not in the consumers' way
    await _evaluate(ctx)
