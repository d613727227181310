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
from typing import Any

from services.gateway.domain.routes import METHODS, SERVICES, Table, operations, public_path

from .upstream import Upstreams

log = logging.getLogger("stvs.gateway.openapi")

PREFIX = "/api/v1"
REF = "#/components/schemas/"
REFRESH_EVERY_S = 1.0  # a missing service's document is asked for again at most this often on unknown paths
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
                paths[PREFIX + public] = _secured(ops)
    return doc


def _secured(item: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for method, op in item.items():
        if isinstance(op, dict) and method in ("get", "put", "post", "delete", "patch", "head", "options"):
            op = {**op, "security": [{"bearer": []}, {"apiKey": []}]}
        out[method] = op
    return out


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
            merged.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            if self.missing:
                merged.setdefault("info", {})["x-missing-services"] = self.missing
                return merged
            self.merged = merged
        return self.merged
