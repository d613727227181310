"""The gateway process: its own database (accounts, sessions, the unit tree copy), the proxy and the routes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.accounts import AccountStore
from services.gateway.accounts import indexes as account_indexes
from services.gateway.api import (
    accounts_router,
    auth_router,
    gateway_dlq_router,
    ops_router,
    proxy_router,
    public_router,
)
from services.gateway.audit import AuditLog, AuditMiddleware, audit_indexes, audit_router
from services.gateway.auth import RateLimiter, rate_limit_indexes
from services.gateway.console import mount_console
from services.gateway.openapi import OpenApiDocs
from services.gateway.proxy import UPLOAD_TYPES, Upstreams
from services.gateway.scope import UnitTree, attach_consumers
from services.gateway.settings import GatewaySettings
from shared.problems import Problem, problem_response
from shared.service import Service

log = logging.getLogger("stvs.gateway")

HOW_TO_CREATE_ADMIN = (
    "no province admin account yet: create the first one with `make admin` (it asks for the name and password)"
)


class Gateway:
    """Everything the routes need, reachable as ``app.state.gateway``."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        indexes = account_indexes()
        indexes.specs.extend(rate_limit_indexes().specs)
        indexes.specs.extend(audit_indexes(settings.audit_retention_days).specs[1:])  # the TTL one: AuditLog.run
        self.service = Service("gateway", settings, indexes=indexes)
        attach_consumers(self.service)
        self.accounts = AccountStore(self.service.db)
        self.upstreams = Upstreams(settings)
        self.tree = UnitTree(self.service.db, self.upstreams.lookup_unit)
        self.docs = OpenApiDocs(self.upstreams)
        # In the database: every gateway replica counts against the same limits.
        self.signin_limiter = RateLimiter(self.service.db, "signin", settings.signin_rate_per_min)
        self.verify_limiter = RateLimiter(self.service.db, "verify", settings.verify_rate_per_min)
        self.signin_address_limiter = RateLimiter(
            self.service.db, "signin-address", settings.signin_address_rate_per_min
        )
        self.signin_total_limiter = RateLimiter(self.service.db, "signin-total", settings.signin_total_rate_per_min)
        self.trusted_proxies = settings.proxy_networks()
        self.audit = AuditLog(self.service.db, settings.audit_retention_days, settings.audit_queue_size)
        self.service.background.append(self.audit.run)


class _TooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the limit; turned into a 413 by :class:`BodyLimit`."""


def _too_large(exc: BaseException) -> bool:
    if isinstance(exc, _TooLarge) or isinstance(exc.__cause__, _TooLarge):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_too_large(e) for e in exc.exceptions)
    return False


class BodyLimit:
    """413 for a request body over the limit (uploads: ``multipart/form-data``, larger limit), declared or streamed."""

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.body_limit = settings.max_body_bytes
        self.upload_limit = settings.max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        upload = headers.get("content-type", "").split(";")[0].strip().lower().startswith(UPLOAD_TYPES)
        limit = self.upload_limit if upload else self.body_limit
        problem = Problem(
            413,
            "upload_too_large" if upload else "body_too_large",
            f"上传的文件超过 {limit // (1024 * 1024)} MB 的上限"
            if upload
            else f"请求内容超过 {limit // 1024} KB 的上限",
        )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await problem_response(problem, scope.get("path"))(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BaseException as exc:
            if not _too_large(exc):
                raise
            if not started:
                await problem_response(problem, scope.get("path"))(scope, receive, send)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    gateway = Gateway(settings)
    app = gateway.service.create_app(
        auth_router(),
        accounts_router(),
        gateway_dlq_router(),
        public_router(),
        audit_router(),
        proxy_router(),
        title="科技志愿服务平台 API",
        description="河北省科技志愿服务平台的统一接口：登录、账号与各服务的业务接口（/api/v1）。",
    )
    app.state.gateway = gateway
    # Traced without a span per ASGI message (one per chunk of a streamed download): the server span and the call
    # to the service are what a trace needs, and the per-message spans were a measurable part of each request.
    FastAPIInstrumentor.uninstrument_app(app)
    app.middleware_stack = None
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"])
    # The gateway's /readyz (with the services' health) and the merged /openapi.json replace the defaults.
    # first match wins: put them in front of the shared ones
    app.router.routes[:] = [r for r in app.router.routes if not _replaced(r)]
    app.include_router(ops_router())
    app.router.routes.insert(0, app.router.routes.pop())
    app.add_middleware(AuditMiddleware, gateway=gateway)
    app.add_middleware(BodyLimit, settings=settings)
    mount_console(app, Path(__file__).resolve().parents[2] / "web" / "dist")  # last: API routes come first

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        # the service's lifespan starts MongoDB, Kafka and the consumers; the proxy's clients come after
        async with inner(app_) as state:
            gateway.upstreams.start()
            await gateway.docs.refresh()
            if not await gateway.accounts.any_province_admin():
                log.warning(HOW_TO_CREATE_ADMIN)
            try:
                yield state
            finally:
                await gateway.upstreams.stop()

    app.router.lifespan_context = lifespan
    return app


def _replaced(route: BaseRoute) -> bool:
    return isinstance(route, Route) and route.path == "/openapi.json"
