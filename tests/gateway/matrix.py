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
OWN_ROUTES = ("/api/v1/auth", "/api/v1/accounts", "/api/v1/gateway/", "/api/v1/public/", "/api/v1/audit")


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
    """The template with ``{unit_id}`` / ``{volunteer_id}`` filled in (anywhere in a segment: ``{volunteer_id}.pdf``),
    every other parameter ``x1``."""
    path = template.replace("{unit_id}", unit).replace("{volunteer_id}", volunteer)
    return re.sub(r"\{[^}]+\}", "x1", path)


# The public activity listings: any filter (``?unit_id=`` of any unit) is fine.
VOLUNTEER_PUBLIC = {("get", "/activities"), ("get", "/activities/{activity_id}")}
# A volunteer's own operations: (method, template) — reached only for itself (see proxy.volunteer_may).
VOLUNTEER_OWN = {
    ("get", "/activities"),
    ("get", "/activities/{activity_id}"),
    ("post", "/activities/{activity_id}/signups"),
    ("delete", "/activities/{activity_id}/signups/{volunteer_id}"),
    ("post", "/activities/{activity_id}/checkin"),
    ("post", "/activities/{activity_id}/checkout"),
    ("get", "/volunteers/{volunteer_id}"),
    ("patch", "/volunteers/{volunteer_id}"),
    ("post", "/volunteers/{volunteer_id}/units/{unit_id}"),
    ("delete", "/volunteers/{volunteer_id}/units/{unit_id}"),
    ("get", "/stats/volunteers/{volunteer_id}"),
    ("get", "/certificates/volunteers/{volunteer_id}.pdf"),
    ("get", "/notifications"),
}


def expected(role: str, method: str, template: str, inside: bool) -> bool:
    """The gateway's rules, stated once for the matrix (from the template's parameters, not the gateway's tables)."""
    read = method in READ
    rest = template.removeprefix("/api/v1")
    segments = rest.strip("/").split("/")
    if role == "province_admin":
        return True
    if len(segments) > 2 and segments[1:3] == ["admin", "dlq"]:
        return False
    if role == "system":
        return read
    if role == "volunteer":
        return (method, rest) in VOLUNTEER_PUBLIC or ((method, rest) in VOLUNTEER_OWN and inside)
    # unit admin: a unit (path or ?unit_id=) and a volunteer's own record must be inside; an activity's sign-up of a
    # volunteer from elsewhere is the organising unit's business (the activities service checks the activity)
    names_unit = "{unit_id}" in template
    names_volunteer = "{volunteer_id}" in template and segments[0] != "activities"
    return inside or not (names_unit or names_volunteer)


def cases(doc: dict[str, Any], scopes: dict[str, Scope]) -> list[Case]:
    out = []
    for template, item in sorted(doc["paths"].items()):
        if not template.startswith("/api/v1/") or template.startswith(OWN_ROUTES):
            continue
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            query = {p.get("name") for p in op.get("parameters", []) if p.get("in") == "query"}
            for role, scope in scopes.items():
                for inside in (True, False):
                    unit = scope.unit_in if inside else scope.unit_out
                    volunteer = scope.volunteer_in if inside else scope.volunteer_out
                    params = {"unit_id": unit} if "unit_id" in query else {}
                    if "recipient" in query:
                        params["recipient"] = f"volunteer:{volunteer}"
                    named = bool(params) or "{unit_id}" in template or "{volunteer_id}" in template
                    if not named and not inside:
                        continue  # nothing to be outside of
                    allowed = expected(role, method, template, inside) and not (
                        role == "unit_admin" and "unit_id" in query and not inside
                    )
                    out.append(Case(role, method, template, _fill(template, unit, volunteer), params, inside, allowed))
    return out
