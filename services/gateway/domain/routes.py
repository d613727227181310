"""The gateway's routing and access table, built from the services' OpenAPI documents: every operation a service
declares (``x-stvs-access``, :mod:`shared.access`) is public below /api/v1 at its own path — its operator routes
below ``/admin/`` at ``/api/v1/<service>/admin/…`` — with its declaration. The gateway holds no copy of any
service's routes: what it knows of them is what their documents say. Pure rules, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.access import Access, declared

from .errors import GatewayError

SERVICE_NAMES_ZH = {
    "registry": "登记服务",
    "activities": "活动服务",
    "reporting": "统计报表服务",
    "notifier": "通知服务",
}
SERVICES = tuple(SERVICE_NAMES_ZH)

READS = frozenset({"GET", "HEAD", "OPTIONS"})
METHODS = ("get", "put", "post", "patch", "delete")
OPERATOR = "/admin/"  # a service's operator routes: public below its name
# Bodies that are files (the collective forms): streamed on, never parsed by the gateway.
UPLOAD_TYPES = (
    "multipart/form-data",
    "application/octet-stream",
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.ms-excel",
    "text/csv",
)
# A query naming a full ID number (recorded in the audit log as a view of personal data, whatever the route).
FULL_ID_HINT = re.compile(r"id.?number|full|reveal|unmask", re.IGNORECASE)
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")


def pattern_of(template: str) -> re.Pattern[str]:
    """A route template as a regular expression (``{name}`` one segment or part of one, ``{name:path}`` any)."""
    out, pos = "", 0
    for m in _PARAM.finditer(template):
        out += re.escape(template[pos : m.start()])
        out += f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    return re.compile("^" + out + re.escape(template[pos:]) + "$")


def public_path(service: str, path: str, upstream_prefix: str = "") -> str | None:
    """Where a service's path is public below /api/v1 (None: not below the services' prefix)."""
    if upstream_prefix:
        if not path.startswith(upstream_prefix + "/"):
            return None
        path = path[len(upstream_prefix) :]
    return f"/{service}{path}" if path.startswith(OPERATOR) else path


@dataclass(frozen=True)
class Operation:
    """One operation a service declares: its service, method, public template (below /api/v1), declaration."""

    service: str
    method: str
    template: str
    access: Access

    @property
    def operator(self) -> bool:
        return self.template.startswith(f"/{self.service}{OPERATOR}")


@dataclass(frozen=True)
class Match:
    """An operation and the values of its path parameters in one request."""

    operation: Operation
    params: dict[str, str]
    segments: list[str]

    @property
    def upstream(self) -> list[str]:
        """The path segments the service is asked for (its operator routes without the service's name)."""
        return self.segments[1:] if self.operation.operator else self.segments


def operations(service: str, document: Mapping[str, Any], upstream_prefix: str = "") -> list[Operation]:
    """The operations a service's document declares (undeclared and internal ones are not forwarded)."""
    out = []
    for path, item in (document.get("paths") or {}).items():
        public = public_path(service, path, upstream_prefix)
        if public is None or not isinstance(item, dict):
            continue
        for method in METHODS:
            op = item.get(method)
            try:
                decl = declared(op) if isinstance(op, dict) else None
            except ValueError:
                decl = None  # not a declaration: the operation is not forwarded
            if decl is not None and not decl.internal:
                out.append(Operation(service, method.upper(), public, decl))
    return out


def unavailable_detail(services: Sequence[str]) -> str:
    """Each missing service named (the path may be any of theirs)."""
    return "、".join(f"{SERVICE_NAMES_ZH.get(s, s)}暂时不可用" for s in services) + "，请稍后重试"


class Unavailable(GatewayError):
    """No known operation matches, and a service's document is not known yet: it may be that service's."""

    def __init__(self, services: Sequence[str]) -> None:
        super().__init__(503, "service_unavailable", unavailable_detail(services), {"Retry-After": "5"})
        self.services = list(services)


class Table:
    """Every declared operation of the services whose documents are known, found by method and path."""

    def __init__(self, ops: Sequence[Operation], missing: Sequence[str] = ()) -> None:
        # literal segments win over parameters ("/units/suggest-name" before "/units/{unit_id}")
        ordered = sorted(ops, key=lambda o: (o.template.count("{"), -len(o.template)))
        self.operations = [(o, pattern_of(o.template)) for o in ordered]
        self.missing = list(missing)

    @classmethod
    def of(cls, documents: Mapping[str, Mapping[str, Any]], upstream_prefix: str = "") -> Table:
        ops = [op for s in SERVICES if s in documents for op in operations(s, documents[s], upstream_prefix)]
        return cls(ops, [s for s in SERVICES if s not in documents])

    def find(self, method: str, segments: list[str]) -> Match:
        """The operation a request calls: 404 when no service declares its path, 405 when none declares the path
        with this method, 503 when nothing matches and a service's document is not known yet."""
        if not segments or any(s in ("", ".", "..") for s in segments):
            raise GatewayError(404, "not_found", "请求的接口不存在")
        wanted = "GET" if method == "HEAD" else method
        path = "/" + "/".join(segments)
        allowed: list[str] = []
        for op, pattern in self.operations:
            found = pattern.match(path)
            if found is None:
                continue
            if op.method == wanted:
                return Match(op, found.groupdict(), segments)
            allowed.append(op.method)
        if allowed:
            allow = ", ".join(sorted(set(allowed)))
            raise GatewayError(405, "method_not_allowed", "该接口不支持此请求方法", {"Allow": allow})
        if self.missing:
            raise Unavailable(self.missing)
        raise GatewayError(404, "not_found", "请求的接口不存在")

    def name(self, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation whose template names ``path`` (below /api/v1), whatever the method (for the audit log)."""
        for op, pattern in self.operations:
            found = pattern.match(path)
            if found is not None:
                return op, found.groupdict()
        return None

    def personal(self, method: str, template: str) -> bool:
        """Whether the operation at ``template`` shows personal data (its declaration says so)."""
        wanted = "GET" if method == "HEAD" else method
        return any(op.template == template and op.method == wanted and op.access.personal for op, _ in self.operations)


def is_upload(content_type: str) -> bool:
    """A file upload (streamed on, never parsed here): the services read these bodies as files, not as JSON."""
    return content_type.split(";")[0].strip().lower().startswith(UPLOAD_TYPES)
