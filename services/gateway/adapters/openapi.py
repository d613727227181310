"""One OpenAPI document: the gateway's own routes plus every service's public paths, under /api/v1.

Each service's ``/openapi.json`` is fetched at start-up (best effort) and again, on a request for the document or
for a path no known document declares, while one is still missing. The documents are also the gateway's routing
and access table (:class:`services.gateway.domain.routes.Table`): an operation a service declares
(``x-stvs-access``) is public at its path below /api/v1 (its ``/admin/…`` routes below ``/api/v1/<service>``);
schema names that two services both use are prefixed with the service name.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import Counter
from typing import Any

from services.gateway.domain.routes import METHODS, SERVICES, Table, operations, public_path
from shared.access import declared
from shared.problems import PROBLEM_JSON, STATUS_TITLES, problem_schema

from .upstream import Upstreams

log = logging.getLogger("stvs.gateway.openapi")

PREFIX = "/api/v1"
REF = "#/components/schemas/"
REFRESH_EVERY_S = 1.0  # a missing service's document is asked for again at most this often on unknown paths
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
PROBLEM = "Problem"
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "登录所得的访问令牌"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "只读系统密钥（system）"},
}
RELOAD_EVERY_S = 30.0  # every service's document, at most this often, on a path no document declares


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(REF) and v[len(REF) :] in renames:
                out[k] = REF + renames[v[len(REF) :]]
            else:
                out[k] = _rename_refs(v, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, renames) for v in node]
    return node


def merge(own: dict[str, Any], services: dict[str, dict[str, Any]], upstream_prefix: str = "") -> dict[str, Any]:
    """The gateway's document with the services' public paths added under /api/v1."""
    doc = copy.deepcopy(own)
    # the gateway's internal dead-letter routes (internal identity only) are not part of the public API
    doc["paths"] = {p: v for p, v in doc.get("paths", {}).items() if not p.startswith("/admin/")}
    paths: dict[str, Any] = doc["paths"]
    owners: dict[str, str] = {}
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    for service in sorted(services):
        spec = services[service]
        theirs: dict[str, Any] = spec.get("components", {}).get("schemas", {})
        renames = {
            name: f"{service}_{name}" for name, schema in theirs.items() if name in schemas and schemas[name] != schema
        }
        spec = _rename_refs(spec, renames)
        for name, schema in spec.get("components", {}).get("schemas", {}).items():
            schemas.setdefault(renames.get(name, name), schema)
        declared = {(op.template, op.method.lower()) for op in operations(service, spec, upstream_prefix)}
        for path, item in spec.get("paths", {}).items():
            public = public_path(service, path, upstream_prefix)
            ops = {m: op for m, op in item.items() if m not in METHODS or (public, m) in declared}
            if public is not None and any(m in METHODS for m in ops):
                paths[PREFIX + public] = ops
                owners[PREFIX + public] = service
    return truthful(doc, owners)


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc.get("paths", {}).items()
        for method, op in item.items()
        if method in HTTP_METHODS and isinstance(op, dict)
    ]


def truthful(doc: dict[str, Any], owners: dict[str, str]) -> dict[str, Any]:
    """Security, error answers and operationIds as the platform behaves (issue 18 §1). ``owners``: the service
    each merged path came from (the others are the gateway's own)."""
    doc.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    doc["components"].setdefault("schemas", {})[PROBLEM] = problem_schema()
    for path, _method, op in _operations(doc):
        op["security"] = security_of(op)
        op["responses"] = _errors(path, op)
    for name in ("HTTPValidationError", "ValidationError"):
        doc["components"]["schemas"].pop(name, None)
    _unique_ids(doc, owners)
    return doc


def security_of(op: dict[str, Any]) -> list[dict[str, list[str]]]:
    """From the operation's access declaration: none for public and internal ones, the bearer token for every one
    that needs sign-in, and the X-API-Key too where the declaration admits the ``system`` key. An operation of the
    gateway's own without a declaration keeps what the gateway documented (``security`` when it authenticates)."""
    found = declared(op)
    if found is None:
        return list(op.get("security") or [])
    if found.internal:
        return []
    return [{"bearer": []}, {"apiKey": []}] if "system" in found.roles else [{"bearer": []}]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": {"$ref": REF + PROBLEM}}}}


def _errors(path: str, op: dict[str, Any]) -> dict[str, Any]:
    """Every error answer as ``application/problem+json`` with the shared Problem schema: those the route declared
    (FastAPI's 422 among them) and those derived: 401/403 where sign-in is needed, 404 where a path parameter names
    something, 413/415 on uploads, 503 everywhere (a database or, behind the gateway, a service away)."""
    responses: dict[str, Any] = dict(op.get("responses") or {})
    wanted = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
    if op["security"]:
        # the gateway's own sign-in routes refuse no role; every other one may (role or scope)
        wanted |= {401} if path.startswith(PREFIX + "/auth/") else {401, 403}
    if "{" in path:
        wanted.add(404)
    content = (op.get("requestBody") or {}).get("content") or {}
    if any(media.startswith("multipart/") for media in content):
        wanted |= {413, 415}
    if op.get("operationId") != "healthz_healthz_get":
        wanted.add(503)
    for status in sorted(wanted):
        before = responses.get(str(status)) or {}
        responses[str(status)] = _problem(before.get("description") or STATUS_TITLES.get(status, "错误"))
    return responses


def _unique_ids(doc: dict[str, Any], owners: dict[str, str]) -> None:
    """An operationId two operations share (every service's dead-letter routes) gets the service's name in front."""
    seen = Counter(op["operationId"] for _path, _method, op in _operations(doc) if "operationId" in op)
    for path, _method, op in _operations(doc):
        if "operationId" in op and seen[op["operationId"]] > 1:
            op["operationId"] = f"{owners.get(path, 'gateway')}_{op['operationId']}"


class OpenApiDocs:
    """Fetched service documents and the merged one (rebuilt while a service is missing)."""

    def __init__(self, upstreams: Upstreams) -> None:
        self.upstreams = upstreams
        self.services: dict[str, dict[str, Any]] = {}
        self.merged: dict[str, Any] | None = None
        self._table: Table | None = None
        self._table_key: tuple[tuple[str, int], ...] = ()
        self._next_refresh = 0.0
        self.next_reload = time.monotonic() + RELOAD_EVERY_S  # (monotonic) when every document may be fetched again

    @property
    def missing(self) -> list[str]:
        return [s for s in SERVICES if s not in self.services]

    def key(self) -> tuple[tuple[str, int], ...]:
        """Names the service documents fetched so far (changes when one more arrives)."""
        return tuple(sorted((name, id(spec)) for name, spec in self.services.items()))

    def table(self) -> Table:
        """The routing and access table of the documents fetched so far (rebuilt when one more arrives)."""
        key = self.key()
        if self._table is None or self._table_key != key:
            self._table = Table.of(self.services, self.upstreams.settings.upstream_prefix)
            self._table_key = key
        return self._table

    async def refresh_if_due(self, *, known_too: bool = False) -> bool:
        """Fetch the missing documents again, at most every :data:`REFRESH_EVERY_S` (a path no known document
        declares may be a missing service's); ``known_too``: every document, at most every :data:`RELOAD_EVERY_S`
        (a service redeployed with a new route). True when one more (or a newer one) arrived."""
        now = time.monotonic()
        if known_too:
            if now < self.next_reload:
                return False
            self.next_reload = now + RELOAD_EVERY_S
            wanted = list(SERVICES)
        else:
            if not self.missing or now < self._next_refresh:
                return False
            self._next_refresh = now + REFRESH_EVERY_S
            wanted = self.missing
        before = self.key()
        await self.refresh(wanted)
        return self.key() != before

    async def refresh(self, services: list[str] | None = None) -> None:
        """Fetch the documents of ``services`` (default: the missing ones); one that cannot be fetched keeps its
        last document, if any."""
        path = f"{self.upstreams.settings.upstream_prefix}/openapi.json"

        async def one(service: str) -> None:
            try:
                spec = await self.upstreams.fetch_json(service, path)
            except Exception as exc:
                log.info("OpenAPI of %s not available yet: %s", service, type(exc).__name__)
                return
            if isinstance(spec, dict):
                self.services[service] = spec
                self.merged = None

        await asyncio.gather(*(one(s) for s in (self.missing if services is None else services)))

    async def document(self, own: dict[str, Any]) -> dict[str, Any]:
        if self.missing:
            await self.refresh()
        if self.merged is None or self.missing:
            merged = merge(own, self.services, self.upstreams.settings.upstream_prefix)
            if self.missing:
                merged.setdefault("info", {})["x-missing-services"] = self.missing
                return merged
            self.merged = merged
        return self.merged
