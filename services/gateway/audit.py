"""The audit log: who did what to which resource, from where — every admin or system write and every view or
export of personal data that passes through the gateway.

A record is made after the upstream (or the gateway itself) has answered, from the request and the status only:
the account id, username and role, the time, the method, the route *template* (``/api/v1/volunteers/{volunteer_id}``,
never the path or query values, which can carry names), the ids the path names, the names of the query parameters
(not their values), the outcome status and the client address. Records are queued and inserted in batches in the
background (the response does not wait); a full queue or a failed insert is counted and logged, never silent.

The collection is only ever inserted into — there is no update or delete, in code or API — and a TTL index removes
a record ``STVS_AUDIT_RETENTION_DAYS`` (≥ 180) after it was made. The province admin lists it through
``GET /api/v1/audit``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from prometheus_client import Counter
from pydantic import BaseModel, Field
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from services.gateway.auth import Caller, CallerDep, client_ip
from services.gateway.openapi import OpenApiDocs, merge
from services.gateway.proxy import RESOURCES
from shared.problems import Problem
from shared.storage import Doc, Indexes, utcnow

log = logging.getLogger("stvs.gateway.audit")

AUDIT = "audit_log"
PREFIX = "/api/v1"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ADMIN_ROLES = frozenset({"province_admin", "unit_admin", "system"})
LOST = Counter("stvs_audit_records_lost_total", "Audit records not stored (queue full or insert failed)", ["reason"])
BATCH = 200
Kind = Literal["write", "personal_data"]

# Reads that show or export personal data (route templates below /api/v1, or a pattern of them).
PERSONAL_READS = (
    re.compile(r"^/api/v1/volunteers/\{[^/]+\}(/.*)?$"),  # a volunteer's record, full ID number requests
    re.compile(r"^/api/v1/forms/\{[^/]+\}/export$"),  # the collective forms with people's details
    re.compile(r"^/api/v1/forms/import-jobs/\{[^/]+\}/marked\.xlsx$"),  # an upload's copy, people's details in it
    re.compile(r"^/api/v1/exports/"),
    re.compile(r"^/api/v1/certificates/volunteers/"),
    re.compile(r"^/api/v1/activities/\{[^/]+\}/(signups|attendance)$"),  # rosters with names
)
FULL_ID_HINT = re.compile(r"id.?number|full|reveal|unmask", re.IGNORECASE)


def audit_indexes(retention_days: int) -> Indexes:
    idx = Indexes()
    idx.add(AUDIT, "at", expire_after_s=retention_days * 86_400)
    idx.add(AUDIT, "actor_id", "at")
    idx.add(AUDIT, "username", "at")
    idx.add(AUDIT, "unit_ids", "at")
    return idx


# ---------------------------------------------------------------- what is recorded (pure)


def kind_of(method: str, role: str, template: str, query_keys: list[str]) -> Kind | None:
    """Whether a request is audited, and as what."""
    if method in WRITES:
        return "write" if role in ADMIN_ROLES else None
    if method != "GET" or role == "volunteer":
        return None  # a volunteer sees only itself
    if any(p.match(template) for p in PERSONAL_READS) or any(FULL_ID_HINT.search(k) for k in query_keys):
        return "personal_data"
    return None


def _pattern(template: str) -> re.Pattern[str]:
    out, pos = "", 0
    for m in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}", template):
        out += re.escape(template[pos : m.start()])
        out += f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    return re.compile("^" + out + re.escape(template[pos:]) + "$")


class Routes:
    """Route templates of the public API (the gateway's and the services'), to name a path by its template."""

    def __init__(self) -> None:
        self._key: tuple[tuple[str, int], ...] = ()
        self._routes: list[tuple[str, re.Pattern[str]]] = []

    def load(self, docs: OpenApiDocs) -> None:
        """The templates of the services' documents the gateway has fetched (read again when one more arrives)."""
        key = tuple(sorted((name, id(spec)) for name, spec in docs.services.items()))
        if key == self._key:
            return
        templates = list(merge({}, docs.services, docs.upstreams.settings.upstream_prefix)["paths"])
        # literal segments win over parameters ("/units/suggest-name" before "/units/{unit_id}")
        ordered = sorted(set(templates), key=lambda t: (t.count("{"), -len(t)))
        self._routes = [(t, _pattern(t)) for t in ordered]
        self._key = key

    def match(self, path: str) -> tuple[str, dict[str, str]]:
        """The template and the ids it names. A path no document names (its service's document not fetched yet)
        keeps its resource and has every later segment taken as an id: paths carry ids, never names."""
        for template, pattern in self._routes:
            found = pattern.match(path)
            if found:
                return template, found.groupdict()
        head, *rest = path.removeprefix(PREFIX + "/").split("/")
        if head not in RESOURCES:
            return f"{PREFIX}/?", {}
        ids = {f"segment{n}": segment for n, segment in enumerate(rest, 1)}
        return "/".join([PREFIX, head, *(f"{{{name}}}" for name in ids)]), ids


def unit_ids_of(resource: Mapping[str, str], query: Mapping[str, str], actor_unit: str | None) -> list[str]:
    ids = [v for k, v in resource.items() if k in ("unit_id", "parent_id")]
    if query.get("unit_id"):
        ids.append(query["unit_id"])
    if actor_unit:
        ids.append(actor_unit)
    return list(dict.fromkeys(ids))


# ---------------------------------------------------------------- the record and its listing


class AuditEntry(BaseModel):
    """One audited request. Ids only: never a name, an ID number, a body or a query value."""

    id: str
    at: datetime = Field(description="When the answer was given (UTC)")
    kind: Kind = Field(description="write：管理员或系统的写操作；personal_data：查看或导出个人信息")
    actor_id: str = Field(description="Account id")
    username: str
    role: str
    actor_unit_id: str | None = None
    method: str
    route: str = Field(description="Route template, e.g. /api/v1/volunteers/{volunteer_id}")
    resource: dict[str, str] = Field(default_factory=dict, description="The ids the path names")
    unit_ids: list[str] = Field(default_factory=list, description="Units concerned: named in the request, the actor's")
    query_keys: list[str] = Field(default_factory=list, description="Names of the query parameters (not values)")
    status: int = Field(description="The HTTP status of the answer")
    address: str = Field(description="Client address (X-Forwarded-For only from trusted proxies)")


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(None, description="Pass as cursor for the next (older) page; null: no more")


@dataclass(frozen=True)
class Seen:
    """What the audit middleware saw of one request."""

    method: str
    path: str
    query: dict[str, str]
    query_keys: list[str]
    template: str | None
    path_params: dict[str, str]
    status: int
    address: str


def entry_of(caller: Caller, seen: Seen, routes: Routes) -> Doc | None:
    """The record of a request, or None when it is not audited."""
    identity = caller.identity
    if seen.template is not None and seen.template != f"{PREFIX}/{{path:path}}":
        template, resource = seen.template, {k: v for k, v in seen.path_params.items() if k != "path"}
    else:
        template, resource = routes.match(seen.path)
    kind = kind_of(seen.method, identity.role, template, seen.query_keys)
    if kind is None:
        return None
    return {
        "_id": uuid.uuid4().hex,
        "at": utcnow(),
        "kind": kind,
        "actor_id": caller.account.id,
        "username": caller.account.username,
        "role": identity.role,
        "actor_unit_id": identity.unit_id,
        "method": seen.method,
        "route": template,
        "resource": resource,
        "unit_ids": unit_ids_of(resource, seen.query, identity.unit_id),
        "query_keys": seen.query_keys,
        "status": seen.status,
        "address": seen.address,
    }


# ---------------------------------------------------------------- storing


class AuditLog:
    """A bounded queue of records and the background task that inserts them in batches."""

    def __init__(self, db: AsyncDatabase[Doc], retention_days: int, queue_size: int) -> None:
        self.col = db[AUDIT]
        self.retention_s = retention_days * 86_400
        self.queue: asyncio.Queue[Doc] = asyncio.Queue(maxsize=queue_size)
        self.routes = Routes()
        self.lost = 0
        self.stored = 0

    def record(self, doc: Doc) -> None:
        try:
            self.queue.put_nowait(doc)
        except asyncio.QueueFull:
            self._lose("queue_full", 1)

    def _lose(self, reason: str, count: int) -> None:
        self.lost += count
        LOST.labels(reason).inc(count)
        log.error("audit: %d record(s) not stored (%s); %d lost since the gateway started", count, reason, self.lost)

    async def ensure_retention(self) -> None:
        """The TTL index at the configured retention; a changed setting changes the index in place (collMod)."""
        ttl = audit_indexes(self.retention_s // 86_400).specs[0]
        try:
            await self.col.create_index("at", name=ttl.index_name(), expireAfterSeconds=self.retention_s)
        except OperationFailure:
            await self.col.database.command(
                "collMod", AUDIT, index={"keyPattern": {"at": 1}, "expireAfterSeconds": self.retention_s}
            )

    async def run(self) -> None:
        """Insert what is queued, a batch at a time; on shutdown, what is left first."""
        try:
            await self.ensure_retention()
        except PyMongoError as exc:
            log.error("audit: the retention index could not be set: %s", exc)
        try:
            while True:
                batch = [await self.queue.get()]
                while len(batch) < BATCH and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                await self._insert(batch)
        except asyncio.CancelledError:
            await self.flush()
            raise

    async def flush(self) -> None:
        """Insert everything queued now (the shutdown's last batch; tests)."""
        while not self.queue.empty():
            batch = [self.queue.get_nowait() for _ in range(min(BATCH, self.queue.qsize()))]
            await self._insert(batch, attempts=1)

    async def _insert(self, batch: list[Doc], attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                await self.col.insert_many(batch, ordered=False)
                self.stored += len(batch)
                return
            except PyMongoError as exc:
                errors = getattr(exc, "details", None) or {}
                write_errors = errors.get("writeErrors") if isinstance(errors, dict) else None
                if write_errors and all(e.get("code") == 11000 for e in write_errors):
                    self.stored += len(batch)
                    return  # a retry after a partial insert: the rest are in
                log.warning("audit: insert of %d record(s) failed (%s), attempt %d", len(batch), exc, attempt + 1)
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.2 * 2**attempt)
        self._lose("insert_failed", len(batch))


# ---------------------------------------------------------------- the middleware and the listing


class AuditMiddleware:
    """Records audited requests after they are answered (pure ASGI; the response is not held back)."""

    def __init__(self, app: Any, gateway: Any) -> None:
        self.app = app
        self.gateway = gateway

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
            self.gateway.audit.routes.load(self.gateway.docs)
            doc = entry_of(caller, seen, self.gateway.audit.routes)
        except Exception:
            log.exception("audit: a request could not be described")
            self.gateway.audit._lose("not_described", 1)
            return
        if doc is not None:
            self.gateway.audit.record(doc)


def _cursor(value: str) -> tuple[datetime, str]:
    try:
        at, doc_id = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        return datetime.fromisoformat(at), str(doc_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise Problem(400, "bad_cursor", "分页游标无效，请从第一页重新查询") from exc


def _next_cursor(doc: Doc) -> str:
    raw = json.dumps([doc["at"].isoformat(), doc["_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Problem(422, "naive_time", f"{name} 须带时区，例如 2026-05-01T00:00:00+08:00")
    return value


def audit_filter(
    actor: str | None, unit_id: str | None, since: datetime | None, until: datetime | None, cursor: str | None
) -> Doc:
    clauses: list[Doc] = []
    if actor:
        clauses.append({"$or": [{"actor_id": actor}, {"username": actor}]})
    if unit_id:
        clauses.append({"unit_ids": unit_id})
    at: Doc = {}
    if _aware(since, "since"):
        at["$gte"] = since
    if _aware(until, "until"):
        at["$lt"] = until
    if at:
        clauses.append({"at": at})
    if cursor:
        last_at, last_id = _cursor(cursor)
        clauses.append({"$or": [{"at": {"$lt": last_at}}, {"at": last_at, "_id": {"$lt": last_id}}]})
    return {"$and": clauses} if clauses else {}


def audit_router() -> APIRouter:
    router = APIRouter(prefix=f"{PREFIX}/audit", tags=["审计日志"])

    @router.get(
        "",
        summary="审计日志：管理员写操作与个人信息的查看、导出（仅省级管理员；新记录在前）",
        response_model=AuditPage,
    )
    async def list_audit(
        request: Request,
        caller: CallerDep,
        actor: Annotated[str | None, Query(max_length=64, description="账号 id 或用户名")] = None,
        unit_id: Annotated[str | None, Query(max_length=64, description="涉及的队伍（请求所指或操作者所属）")] = None,
        since: Annotated[datetime | None, Query(description="起（含），带时区")] = None,
        until: Annotated[datetime | None, Query(description="止（不含），带时区")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=200, description="上一页的 next_cursor")] = None,
    ) -> AuditPage:
        if caller.identity.role != "province_admin":
            raise Problem(403, "forbidden_role", "仅省级管理员可以查看审计日志")
        audit: AuditLog = request.app.state.gateway.audit
        found = audit.col.find(audit_filter(actor, unit_id, since, until, cursor))
        docs = await found.sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit + 1).to_list()
        items = [AuditEntry.model_validate({**d, "id": d["_id"]}) for d in docs[:limit]]
        return AuditPage(items=items, next_cursor=_next_cursor(docs[limit - 1]) if len(docs) > limit else None)

    return router
