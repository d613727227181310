"""One OpenAPI document: the gateway's own routes plus every service's public paths, under /api/v1.

Each service's ``/openapi.json`` is fetched at start-up (best effort) and again, on a request for the document,
while one is still missing. A path is taken when its first segment is a resource that service owns (or it is the
service's dead-letter admin route); schema names that two services both use are prefixed with the service name.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from services.gateway.domain.routes import RESOURCES, SERVICES

from .upstream import Upstreams

log = logging.getLogger("stvs.gateway.openapi")

PREFIX = "/api/v1"
REF = "#/components/schemas/"


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
        for path, item in spec.get("paths", {}).items():
            if upstream_prefix:
                if not path.startswith(upstream_prefix + "/"):
                    continue
                path = path[len(upstream_prefix) :]
            head = path.strip("/").split("/")[0]
            if RESOURCES.get(head) == service:
                public = PREFIX + path
            elif path.startswith("/admin/dlq"):
                public = f"{PREFIX}/{service}{path}"
            else:
                continue
            paths[public] = _secured(item)
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

    @property
    def missing(self) -> list[str]:
        return [s for s in SERVICES if s not in self.services]

    def key(self) -> tuple[tuple[str, int], ...]:
        """Names the service documents fetched so far (changes when one more arrives)."""
        return tuple(sorted((name, id(spec)) for name, spec in self.services.items()))

    def templates(self) -> list[str]:
        """The route templates of the services' public paths (for the audit log)."""
        return list(merge({}, self.services, self.upstreams.settings.upstream_prefix)["paths"])

    async def refresh(self) -> None:
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

        await asyncio.gather(*(one(s) for s in self.missing))

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
