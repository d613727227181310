"""The gateway's middleware: a request body over the limit is refused (413), and audited requests are recorded after
they are answered."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.adapters.audit_log import AuditLog
from services.gateway.adapters.openapi import OpenApiDocs
from services.gateway.domain.audit import PREFIX, Seen, entry_of
from services.gateway.domain.routes import UPLOAD_TYPES
from services.gateway.settings import GatewaySettings
from services.gateway.usecases import Caller
from shared.problems import Problem, problem_response

from .deps import client_ip

log = logging.getLogger("stvs.gateway.audit")


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


class AuditMiddleware:
    """Records audited requests after they are answered (pure ASGI; the response is not held back)."""

    def __init__(self, app: ASGIApp, audit: AuditLog, docs: OpenApiDocs) -> None:
        self.app = app
        self.audit = audit
        self.docs = docs

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def watched(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            caller = (scope.get("state") or {}).get("caller")
            if isinstance(caller, Caller):
                self._record(scope, caller, status)

    def _record(self, scope: Any, caller: Caller, status: int) -> None:
        try:
            request = Request(scope)
            query = request.query_params
            route = scope.get("route")
            seen = Seen(
                method=scope["method"],
                path=scope["path"],
                query={k: v for k, v in query.items() if k == "unit_id"},
                query_keys=sorted(set(query.keys())),
                template=getattr(route, "path", None),
                path_params={k: str(v) for k, v in (scope.get("path_params") or {}).items()},
                status=status,
                address=client_ip(request),
            )
            routes = self.audit.routes
            if routes.stale(self.docs.key()):
                routes.load(self.docs.key(), self.docs.table())
            doc = entry_of(caller.account, caller.identity, seen, routes)
        except Exception:
            log.exception("audit: a request could not be described")
            self.audit.lose("not_described", 1)
            return
        if doc is not None:
            self.audit.record(doc)
