"""Issue 15: every operation of every service declares who may call it (shared/access.py), beside its route; the
gateway enforces the declarations and holds no copy of the services' routes. A route without a declaration, or one
that names a unit or a volunteer where its declaration does not say so, fails here by its method and path."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from shared.access import KEY, access, declared
from shared.scope import system_may_read

SERVICES = ("registry", "activities", "reporting", "notifier")
METHODS = ("get", "put", "post", "patch", "delete")
# Parameter and field names that name a unit or a volunteer: a declaration must say where each one is.
UNIT_NAMES = frozenset({"unit_id", "parent_id", "parent", "unit", "unit_ids"})
VOLUNTEER_NAMES = frozenset({"volunteer_id"})


def _body_fields(op: dict[str, Any], document: dict[str, Any]) -> set[str]:
    fields: set[str] = set()
    for media in (op.get("requestBody") or {}).get("content", {}).values():
        schema = media.get("schema") or {}
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            schema = document.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
        fields |= set(schema.get("properties") or {})
    return fields


def missing(document: dict[str, Any]) -> list[str]:
    """What the operations of a service's document lack, one line per operation and what it lacks."""
    out = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            name = f"{method.upper()} {path}"
            try:
                decl = declared(op)
            except ValueError as exc:
                out.append(f"{name}: {KEY} is not a declaration ({exc})")
                continue
            if decl is None:
                out.append(f"{name}: no {KEY} (openapi_extra=access(...) from shared.access)")
                continue
            if decl.internal:
                continue
            said = {str(p) for p in (*decl.units, *decl.volunteers, *decl.me)}
            said_plain = {s.split("=")[0] for s in said}
            named = {f"{p['in']}:{p['name']}" for p in op.get("parameters", []) if p.get("in") in ("path", "query")}
            named |= {f"body:{f}" for f in _body_fields(op, document)}
            for where in sorted(named):
                field = where.split(":", 1)[1]
                if field in UNIT_NAMES | VOLUNTEER_NAMES and where not in said_plain:
                    kind = "units" if field in UNIT_NAMES else "volunteers (or me)"
                    out.append(f"{name}: names {where} but its declaration does not list it in {kind}")
    return out


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_declares_who_may_call_it(service: str) -> None:
    app = importlib.import_module(f"services.{service}.app").create_app()
    lacking = missing(app.openapi())
    assert not lacking, f"{service}: operations without a complete declaration:\n" + "\n".join(lacking)


def test_a_missing_declaration_is_named_by_its_operation() -> None:
    doc: dict[str, Any] = {
        "paths": {
            "/things/{unit_id}": {
                "get": {"parameters": [{"in": "path", "name": "unit_id"}], **access("unit_admin")},
                "delete": {},
            },
            "/ok/{unit_id}": {"get": {"parameters": [{"in": "path", "name": "unit_id"}],
                                      **access("unit_admin", units=["path:unit_id"])}},
        }
    }  # fmt: skip
    assert missing(doc) == [
        "GET /things/{unit_id}: names path:unit_id but its declaration does not list it in units",
        f"DELETE /things/{{unit_id}}: no {KEY} (openapi_extra=access(...) from shared.access)",
    ]


def test_a_declaration_refuses_an_unknown_role_or_position() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        access("city_admin")
    with pytest.raises(ValueError, match="not a position"):
        access("unit_admin", units=["header:unit_id"])


def _declared_by_every_service() -> list[tuple[str, str, Any]]:
    out = []
    for service in SERVICES:
        document = importlib.import_module(f"services.{service}.app").create_app().openapi()
        for path, item in document["paths"].items():
            for method in METHODS:
                decl = declared(item[method]) if method in item else None
                if decl is not None and not decl.internal:
                    out.append((method.upper(), path, decl))
    return out


def test_the_declarations_keep_what_the_gateway_let_a_system_key_and_the_audit_log_see() -> None:
    """What the gateway's own lists said before the services declared it (issue 15): a system key reads the
    organisation and statistics (``shared.scope.SYSTEM_READS``), and these reads show personal data."""
    ops = _declared_by_every_service()
    system = {(m, p) for m, p, d in ops if d.allows("system")}
    sample = {"unit_id": "K1", "activity_id": "a1", "demand_id": "d1", "month": "2026-04", "volunteer_id": "V1",
              "form": "volunteers", "number": "ZM1", "subscription_id": "s1", "job_id": "j1",
              "year": "2026"}  # fmt: skip
    listed = {(m, p) for m, p, _ in ops if m == "GET" and system_may_read(p.format(**sample).strip("/").split("/"))}
    assert system == listed
    personal = {(m, p) for m, p, d in ops if d.personal}
    assert personal == {
        ("GET", "/volunteers/{volunteer_id}"),
        ("GET", "/forms/{form}/export"),
        ("GET", "/forms/import-jobs/{job_id}/marked.xlsx"),
        ("GET", "/exports/compliance.xlsx"),
        ("GET", "/exports/monthly/{unit_id}/{month}.xlsx"),
        ("GET", "/certificates/volunteers/{volunteer_id}.pdf"),
        ("GET", "/activities/{activity_id}/signups"),
        ("GET", "/activities/{activity_id}/attendance"),
    }
