"""The scope matrix: every proxied operation of the merged OpenAPI document x every role x in / out of scope.

Generated from the document, so an endpoint added to a service is covered without touching this file. A case
knows what the gateway must decide (``allowed``, or refused with 404 for reads / 403 for writes); whether a
refusal came from the gateway is told by the ``X-STVS-Denied-By: gateway`` header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

READ = {"get", "head", "options"}
OWN_ROUTES = ("/api/v1/auth", "/api/v1/accounts", "/api/v1/gateway/")


@dataclass(frozen=True)
class Scope:
    """The fixture tree as the matrix sees it: per role, a unit / volunteer inside and one outside its reach."""

    unit_in: str
    unit_out: str
    volunteer_in: str
    volunteer_out: str


@dataclass(frozen=True)
class Case:
    role: str
    method: str
    template: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    inside: bool = True
    allowed: bool = True

    @property
    def expected_denial(self) -> int:
        if "/admin/dlq" in self.template:
            return 403  # a role refusal, not a scope one: nothing to hide
        return 404 if self.method.lower() in READ else 403

    def __str__(self) -> str:
        where = "in" if self.inside else "out"
        return f"{self.role:<14} {self.method.upper():<6} {self.template} ({where})"


def _fill(template: str, unit: str, volunteer: str) -> str:
    segments = template.split("/")
    out = []
    for i, seg in enumerate(segments):
        if re.fullmatch(r"\{[^}]+\}", seg):
            prev = segments[i - 1] if i else ""
            seg = unit if prev == "units" else volunteer if prev == "volunteers" else "x1"
        out.append(seg)
    return "/".join(out)


def expected(role: str, method: str, template: str, inside: bool) -> bool:
    """The gateway's rules, stated once for the matrix."""
    read = method in READ
    rest = template.removeprefix("/api/v1/").split("/")
    head, first_is_param = rest[0], len(rest) > 1 and rest[1].startswith("{")
    if role == "province_admin":
        return True
    if len(rest) > 2 and rest[1:3] == ["admin", "dlq"]:
        return False
    if role == "system":
        return read
    if role == "volunteer":
        return (head == "volunteers" and first_is_param and inside) or (read and head == "activities")
    # unit admin: whatever names a unit or a volunteer must be inside; other paths are left to the services
    return inside or not (first_is_param and head in ("units", "volunteers"))


def cases(doc: dict[str, Any], scopes: dict[str, Scope]) -> list[Case]:
    out = []
    for template, item in sorted(doc["paths"].items()):
        if not template.startswith("/api/v1/") or template.startswith(OWN_ROUTES):
            continue
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            unit_param = any(p.get("name") == "unit_id" and p.get("in") == "query" for p in op.get("parameters", []))
            for role, scope in scopes.items():
                for inside in (True, False):
                    unit = scope.unit_in if inside else scope.unit_out
                    volunteer = scope.volunteer_in if inside else scope.volunteer_out
                    params = {"unit_id": unit} if unit_param else {}
                    named = unit_param or "{" in template
                    allowed = expected(role, method, template, inside) and not (
                        role == "unit_admin" and unit_param and not inside
                    )
                    if not named and not inside:
                        continue  # nothing to be outside of
                    out.append(Case(role, method, template, _fill(template, unit, volunteer), params, inside, allowed))
    return out
