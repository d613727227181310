"""Composition root of the gateway: settings → adapters (its database: accounts, sessions, limits, the unit-tree copy,
the audit log; the services' clients; the merged OpenAPI document) → use cases → routers, consumers, middleware."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from shared.service import Service

from . import api, consumers
from .adapters import mongo
from .adapters.audit_log import AuditLog, audit_indexes
from .adapters.mongo_tree import MongoUnitTree
from .adapters.openapi import OpenApiDocs
from .adapters.passwords import Argon2Passwords
from .adapters.upstream import Upstreams
from .api.deps import RouteUseCases
from .api.errors import install as install_errors
from .api.middleware import AuditMiddleware, BodyLimit
from .console import mount_console
from .settings import GatewaySettings
from .usecases import Access, AccountAdmin, Audit, Certificates, Sessions, SigninLimits

log = logging.getLogger("stvs.gateway")

HOW_TO_CREATE_ADMIN = (
    "no province admin account yet: create the first one with `make admin` (it asks for the name and password)"
)


class Gateway:
    """The gateway's parts, wired in one place (also reachable as ``app.state.gateway``)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = s = settings
        indexes = mongo.indexes()
        indexes.specs.extend(mongo.rate_limit_indexes().specs)
        indexes.specs.extend(audit_indexes(s.audit_retention_days).specs[1:])  # the TTL one: AuditLog.run
        self.service = Service("gateway", s, indexes=indexes)
        db = self.service.db
        self.accounts = mongo.AccountStore(db)
        self.upstreams = Upstreams(s)
        self.tree = MongoUnitTree(db, self.upstreams.lookup_unit)
        consumers.register(self.service, self.tree)
        self.docs = OpenApiDocs(self.upstreams)
        self.audit = AuditLog(db, s.audit_retention_days, s.audit_queue_size)
        self.service.background.append(self.audit.run)
        # In the database: every gateway replica counts against the same limits.
        limits = SigninLimits(
            per_user=mongo.RateLimiter(db, "signin", s.signin_rate_per_min),
            per_address=mongo.RateLimiter(db, "signin-address", s.signin_address_rate_per_min),
            total=mongo.RateLimiter(db, "signin-total", s.signin_total_rate_per_min),
        )
        self.usecases = RouteUseCases(
            service=self.service,
            upstreams=self.upstreams,
            docs=self.docs,
            sessions=Sessions(self.accounts, Argon2Passwords(), limits, s),
            accounts=AccountAdmin(self.accounts, self.tree),
            access=Access(self.tree),
            audit=Audit(self.audit),
            certificates=Certificates(self.upstreams, mongo.RateLimiter(db, "verify", s.verify_rate_per_min)),
            trusted_proxies=s.proxy_networks(),
        )

    @contextlib.asynccontextmanager
    async def running(self, inner: Any, app: FastAPI) -> AsyncIterator[Any]:
        """The service's lifespan (MongoDB, Kafka, the consumers), then the services' clients and documents."""
        async with inner(app) as state:
            self.upstreams.start()
            await self.docs.refresh()
            if not await self.accounts.any_province_admin():
                log.warning(HOW_TO_CREATE_ADMIN)
            try:
                yield state
            finally:
                await self.upstreams.stop()


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    gateway = Gateway(settings or GatewaySettings())
    app = gateway.service.create_app(
        *api.ROUTERS,
        first=api.FIRST,  # the gateway's /readyz (with the services' health) and its merged /openapi.json
        openapi_url=None,
        title="科技志愿服务平台 API",
        description="河北省科技志愿服务平台的统一接口：登录、账号与各服务的业务接口（/api/v1）。",
    )
    install_errors(app)
    app.state.gateway = gateway
    app.state.usecases = gateway.usecases
    app.add_middleware(AuditMiddleware, audit=gateway.audit, docs=gateway.docs)
    app.add_middleware(BodyLimit, settings=gateway.settings)
    mount_console(app, Path(__file__).resolve().parents[2] / "web" / "dist")  # last: API routes come first
    inner = app.router.lifespan_context
    app.router.lifespan_context = lambda app_: gateway.running(inner, app_)
    return app
