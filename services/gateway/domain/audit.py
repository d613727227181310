"""The audit log's rules, no I/O: which requests are recorded and as what, how a path is named by its route template
(ids only, never names or query values), and the listing's cursor."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.identity import Identity
from shared.storage import utcnow

from .accounts import Account
from .errors import GatewayError
from .routes import FULL_ID_HINT, Table

Doc = dict[str, Any]
PREFIX = "/api/v1"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ADMIN_ROLES = frozenset({"province_admin", "unit_admin", "system"})
Kind = Literal["write", "personal_data"]


def kind_of(method: str, role: str, personal: bool, query_keys: list[str]) -> Kind | None:
    """Whether a request is audited, and as what (``personal``: its operation declares it shows personal data)."""
    if method in WRITES:
        return "write" if role in ADMIN_ROLES else None
    if method != "GET" or role == "volunteer":
        return None  # a volunteer sees only itself
    if personal or any(FULL_ID_HINT.search(k) for k in query_keys):
        return "personal_data"
    return None


class Routes:
    """The services' operations (the gateway's table), to name a path by its template and say whether it shows
    personal data."""

    def __init__(self) -> None:
        self._key: tuple[tuple[str, int], ...] = ()
        self.table = Table([])

    def stale(self, key: tuple[tuple[str, int], ...]) -> bool:
        """Whether the table was loaded from other documents than those ``key`` names."""
        return key != self._key

    def load(self, key: tuple[tuple[str, int], ...], table: Table) -> None:
        """The table of the services' documents the gateway has fetched (``key`` names those documents)."""
        self.table = table
        self._key = key

    def match(self, method: str, path: str) -> tuple[str, dict[str, str], bool]:
        """The template, the ids it names and whether it shows personal data. A path no document names (its
        service's document not fetched yet) has every segment taken as an id: paths carry ids, never names."""
        found = self.table.name(path.removeprefix(PREFIX))
        if found is not None:
            op, ids = found
            return PREFIX + op.template, ids, self.table.personal(method, op.template)
        segments = path.removeprefix(PREFIX + "/").split("/")
        ids = {f"segment{n}": segment for n, segment in enumerate(segments)}
        return "/".join([PREFIX, *(f"{{{name}}}" for name in ids)]), ids, False


def unit_ids_of(resource: Mapping[str, str], query: Mapping[str, str], actor_unit: str | None) -> list[str]:
    ids = [v for k, v in resource.items() if k in ("unit_id", "parent_id")]
    if query.get("unit_id"):
        ids.append(query["unit_id"])
    if actor_unit:
        ids.append(actor_unit)
    return list(dict.fromkeys(ids))


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


def entry_of(account: Account, identity: Identity, seen: Seen, routes: Routes) -> Doc | None:
    """The record of a request, or None when it is not audited."""
    if seen.template is not None and seen.template != f"{PREFIX}/{{path:path}}":
        template, resource = seen.template, {k: v for k, v in seen.path_params.items() if k != "path"}
        personal = False  # the gateway's own routes show no personal data
    else:
        template, resource, personal = routes.match(seen.method, seen.path)
    kind = kind_of(seen.method, identity.role, personal, seen.query_keys)
    if kind is None:
        return None
    return {
        "_id": uuid.uuid4().hex,
        "at": utcnow(),
        "kind": kind,
        "actor_id": account.id,
        "username": account.username,
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


def read_cursor(value: str) -> tuple[datetime, str]:
    try:
        at, doc_id = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        return datetime.fromisoformat(at), str(doc_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise GatewayError(400, "bad_cursor", "分页游标无效，请从第一页重新查询") from exc


def next_cursor(doc: Doc) -> str:
    raw = json.dumps([doc["at"].isoformat(), doc["_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise GatewayError(422, "naive_time", f"{name} 须带时区，例如 2026-05-01T00:00:00+08:00")
    return value
