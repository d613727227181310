"""The frame every service process is built on: settings, MongoDB, broker, outbox relay, consumers, HTTP.

A service's ``app.py`` creates a :class:`Service`, declares its indexes, outbox collections, consumers and
routers, and gets a FastAPI app with ``/healthz``, ``/readyz``, ``/metrics``, dead-letter admin routes,
problem-details errors, tracing, and a lifespan that starts and stops everything in the right order.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import clock
from shared.access import INTERNAL, PROVINCE_ONLY
from shared.identity import ARRIVED, Identity, require_roles
from shared.lease import LEASES
from shared.messaging.broker import make_broker
from shared.messaging.consumer import PROCESSED, EventConsumer, processed_retention_s
from shared.messaging.dlq import DeadLetter, list_dead_letters, replay_dead_letters
from shared.messaging.outbox import OUTBOX_N, Outbox
from shared.messaging.relay import OutboxRelay
from shared.metrics import HTTP_LATENCY
from shared.problems import Problem, install_problem_handlers
from shared.settings import ServiceSettings
from shared.storage import MAX_DEAD_LETTERS_LISTED, Indexes, mongo_client, ping
from shared.telemetry import setup_logging, setup_telemetry

log = logging.getLogger("stvs.service")
access_log = logging.getLogger("stvs.access")
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

Task = Callable[[], Coroutine[Any, Any, None]]


class Service:
    """One service process's parts, wired in one place (the composition root)."""

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        indexes: Indexes | None = None,
        outbox_collections: Sequence[str] = (),
    ) -> None:
        settings.check_production()
        clock.use(settings.clock())
        setup_telemetry(name)  # before the MongoDB client exists, so its commands are traced
        self.name = name
        self.settings = settings
        self.client = mongo_client(settings.mongo_url, app_name=f"stvs-{name}")
        self.db = self.client[settings.database(name)]
        self.broker = make_broker(settings, service=name)
        self.indexes = indexes or Indexes()
        for collection in outbox_collections:
            self.indexes.add(collection, OUTBOX_N)
        self.indexes.add(PROCESSED, "at", expire_after_s=processed_retention_s(settings))
        self.relay = (
            OutboxRelay(self.db, settings, service=name, collections=outbox_collections) if outbox_collections else None
        )
        self.outbox = Outbox(self.db, self.relay)
        self.consumers: list[EventConsumer] = []
        self.background: list[Task] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.started = False

    def consumer(self, name: str, streams: Sequence[str]) -> EventConsumer:
        """A consumer group ``stvs.<service>.<name>`` on these event streams."""
        consumer = EventConsumer(service=self.name, name=name, settings=self.settings, db=self.db, streams=streams)
        consumer.attach(self.broker)
        self.consumers.append(consumer)
        return consumer

    # -- lifecycle
    async def start(self, *, wait_s: float = 60.0) -> None:
        deadline = time.monotonic() + wait_s
        await _retry_until(lambda: ping(self.client), deadline, "MongoDB")
        await self.indexes.create(self.db)
        await _retry_until(self.broker.start, deadline, "Kafka")
        if self.relay is not None:
            await self.relay.start()
        tasks = [*self.background, self._watch_lag] if self.consumers else list(self.background)
        self._tasks = [asyncio.create_task(task(), name=f"{self.name}-bg") for task in tasks]
        self.started = True
        log.info("%s started", self.name)

    async def stop(self) -> None:
        """Graceful: stop polling and finish in-flight handlers, flush the outbox, then close."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # A task that swallows its cancellation must not hold the shutdown forever.
            await asyncio.wait(self._tasks, timeout=10)
        for sub in self.broker.subscribers:
            with contextlib.suppress(Exception):
                await sub.stop()
        if self.relay is not None:
            await self.relay.stop()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        await self.client.close()
        self.started = False
        log.info("%s stopped", self.name)

    async def _watch_lag(self, interval_s: float = 15.0) -> None:
        """Keep the consumer-lag gauge current (Prometheus ``stvs_consumer_lag``)."""
        while True:
            await asyncio.sleep(interval_s)
            for consumer in self.consumers:
                try:
                    await consumer.lag()
                except Exception as exc:
                    log.debug("consumer lag of %s unavailable: %s", consumer.group, exc)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {}
        try:
            await asyncio.wait_for(ping(self.client), 3)
            checks["mongodb"] = "ok"
        except Exception as exc:
            checks["mongodb"] = f"unreachable: {type(exc).__name__}"
        try:
            ok = await self.broker.ping(timeout=3)
            checks["kafka"] = "ok" if ok else "unreachable"
        except Exception as exc:
            checks["kafka"] = f"unreachable: {type(exc).__name__}"
        checks["outbox_backlog"] = self.relay.backlog if self.relay else 0
        return checks["mongodb"] == "ok" and checks["kafka"] == "ok", checks

    # -- HTTP
    def create_app(
        self,
        *routers: APIRouter,
        title: str,
        description: str = "",
        version: str = "1.0.0",
        first: Sequence[APIRouter] = (),
        openapi_url: str | None = "/openapi.json",
    ) -> FastAPI:
        """The service's app: ``/healthz``, ``/readyz``, ``/metrics``, the dead-letter admin routes, then ``routers``.
        ``first`` answer before the shared routes of the same path (the gateway's own ``/readyz``); ``openapi_url``
        None leaves the document (and its pages) to the service."""
        service = self

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            await service.start()
            try:
                yield
            finally:
                await service.stop()

        app = FastAPI(title=title, description=description, version=version, lifespan=lifespan, openapi_url=openapi_url)
        app.state.service = self
        app.state.internal_secret = self.settings.internal_token.get_secret_value()
        app.state.service_name = self.name  # a signed identity must name this service
        install_problem_handlers(app)
        for router in first:
            app.include_router(router)
        app.include_router(health_router())
        app.include_router(dlq_router())
        for router in routers:
            app.include_router(router)

        app.add_middleware(AccessLog, service=self.name)
        # One server span per request (its database and Kafka spans below it); not one more per ASGI message.
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"]
        )
        return app


class AccessLog:
    """Latency metric and access log line of every request (by route template: never the path or the query, which
    can carry names and ID numbers). A plain ASGI middleware: no task or stream per request."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope[ARRIVED] = time.time()  # a signed identity must be fresh when the request arrives
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            HTTP_LATENCY.labels(self.service, scope["method"], route, str(status)).observe(elapsed)
            if route not in QUIET_ROUTES:
                access_log.info("%s %s %d %.1f ms", scope["method"], route, status, elapsed * 1000)


async def _retry_until(action: Callable[[], Awaitable[Any]], deadline: float, what: str) -> None:
    delay = 0.25
    while True:
        try:
            await action()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not reachable: {exc}") from exc
            log.warning("%s not reachable yet (%s); retrying", what, type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def operators_only(request: Request) -> None:
    """Readiness details and metrics are for operators: answered only to a direct caller from ``STVS_OPS_ALLOW``
    (Prometheus, the orchestrator's probes), never to anything that came through a proxy — for others they do not
    exist (404)."""
    settings: ServiceSettings = request.app.state.service.settings
    peer = request.client.host if request.client else ""
    proxied = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    try:
        allowed = not proxied and any(ipaddress.ip_address(peer) in net for net in settings.operator_networks())
    except ValueError:  # not an IP address (a test client, a unix socket)
        allowed = False
    if not allowed:
        raise Problem(404, "not_found", "请求的资源不存在")


OperatorsOnly = Depends(operators_only)


class Readiness(BaseModel):
    """``/readyz``: ready or not, and one entry per dependency checked (Kafka, MongoDB, the outbox backlog)."""

    model_config = ConfigDict(extra="allow")
    status: Literal["ready", "not_ready"]


def health_router() -> APIRouter:
    router = APIRouter(tags=["运维"])

    @router.get("/healthz", summary="进程存活", openapi_extra=INTERNAL)
    async def healthz(service: ServiceDep) -> dict[str, str]:
        return {"status": "ok", "service": service.name}

    @router.get(
        "/readyz",
        summary="依赖就绪（Kafka、MongoDB、发件箱积压）",
        openapi_extra=INTERNAL,
        dependencies=[OperatorsOnly],
        response_model=Readiness,
        responses={503: {"model": Readiness}},
    )
    async def readyz(service: ServiceDep) -> JSONResponse:
        ok, checks = await service.readiness()
        return JSONResponse({"status": "ready" if ok else "not_ready", **checks}, status_code=200 if ok else 503)

    @router.get("/metrics", summary="Prometheus 指标", include_in_schema=False, dependencies=[OperatorsOnly])
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class ReplayRequest(BaseModel):
    stream: str
    offsets: list[tuple[int, int]] | None = None


class ReplayResult(BaseModel):
    replayed: int


def dlq_router(prefix: str = "/admin/dlq", province: Any = None, consumer_of: str = "本服务") -> APIRouter:
    """The dead-letter admin routes of a service's own consumer groups: list the letters of a stream it consumes,
    replay them (to its groups only) once the cause is fixed. ``province``: the dependency admitting province admins
    (default: the signed identity's role); ``consumer_of`` names the service in the 404 of a stream it does not
    consume."""
    router = APIRouter(prefix=prefix, tags=["死信"])
    province = province if province is not None else require_roles("province_admin")

    def topic_of(service: Service, stream: str) -> str:
        wanted = {s for c in service.consumers for s in c.streams}
        if stream not in wanted:
            raise Problem(404, "unknown_stream", f"{consumer_of}不消费事件流 {stream}")
        return service.settings.topic(stream) + ".dlq"

    @router.get(
        "",
        summary=f"列出{consumer_of}消费的事件流中的死信",
        response_model=list[DeadLetter],
        openapi_extra=PROVINCE_ONLY,
    )
    async def list_dlq(
        service: ServiceDep,
        stream: str,
        limit: Annotated[int, Query(ge=1, le=MAX_DEAD_LETTERS_LISTED)] = 100,
        identity: Identity = province,
    ) -> list[DeadLetter]:
        letters = await list_dead_letters(service.settings.kafka_bootstrap, topic_of(service, stream), limit=limit)
        groups = {c.group for c in service.consumers}
        return [d for d in letters if d.consumer_group in groups or not d.consumer_group]

    @router.post("/replay", summary="问题修复后重新投递死信", response_model=ReplayResult, openapi_extra=PROVINCE_ONLY)
    async def replay(service: ServiceDep, body: ReplayRequest, identity: Identity = province) -> ReplayResult:
        offsets = {(p, o) for p, o in body.offsets} if body.offsets is not None else None
        groups = {c.group for c in service.consumers}  # only this service's failures, to this service's groups
        topic = topic_of(service, body.stream)
        n = await replay_dead_letters(service.settings.kafka_bootstrap, topic, offsets, groups=groups)
        return ReplayResult(replayed=n)

    return router


def serve(app: FastAPI, settings: ServiceSettings, service: str) -> None:
    """Run the service's HTTP server (used by ``python -m services.<name>``).

    With ``STVS_HTTP_REUSE_PORT`` several replicas listen on one port (SO_REUSEPORT) and the kernel spreads the
    connections over them: how the gateway's replicas share the platform's one address.
    """
    setup_logging(service, settings.log_level)
    setup_telemetry(service)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        # the peer stays the peer: only the gateway reads X-Forwarded-For, and only from STVS_TRUSTED_PROXIES
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    if not settings.http_reuse_port:
        server.run()
        return
    family = socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.http_host, settings.http_port))
    sock.set_inheritable(True)
    server.run(sockets=[sock])


__all__ = ["LEASES", "OperatorsOnly", "Service", "ServiceDep", "serve"]
