"""The scope matrix: every operation of the gateway's OpenAPI document x every role x own / other resource, with the
exact status each must answer when it runs against the real services (tests/gateway/test_scope_matrix.py).

The fixture tree has two branches: 总队 P; 石家庄 C1 with county team K1 below it; 保定 C2 with county team K2 below
it. Volunteers V1 (K1, has an account), V3 (C1) and V2 (K2), V4 (C2). Roles:

- ``P`` province admin; ``C`` 石家庄's city admin (its *own* resources are K1's: below it, so the services' rule
  must reach down the tree); ``K`` the county-team admin of the other branch (K2; *other* is its parent C2 — above
  it — and branch 1's records); ``V`` volunteer V1; ``S`` a read-only system key; ``A`` anonymous.

A resource in a case is named in the path, in the query or in the JSON body; a write with a JSON body is sent a
second time as ``application/merge-patch+json`` (the gateway must look at every JSON body). Writes on activities
are made on *cancelled* activities: an in-scope write is then refused by the activity's state (409) — proof the
scope check let it through — and nothing changes, so the cases run in any order against one platform.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ROLES = ("P", "C", "K", "V", "S", "A")
ALT_JSON = "application/merge-patch+json"


@dataclass(frozen=True)
class Row:
    """One operation: how to call it (``{name}`` placeholders resolved per role and side) and what it answers.

    ``expect``: ``"P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401"`` — per role the status for its own
    resource, then (when different) for the other one. ``other``: placeholders that keep the *own* value on the
    other side of an admin (``{"unit": "own"}``: the attack "my unit, someone else's volunteer"). ``by_role``:
    request parts (``path`` placeholders, ``query``, ``body``) replaced for one role.
    """

    method: str
    template: str
    expect: str
    query: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    other: Mapping[str, str] = field(default_factory=dict)
    by_role: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    multipart: bool = False

    def expected(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for part in self.expect.split("|"):
            role, *codes = part.split()
            out[role] = (int(codes[0]), int(codes[-1]))
        assert set(out) == set(ROLES), f"{self.method} {self.template}: roles {sorted(out)}"
        return out

    @property
    def key(self) -> tuple[str, str]:
        return self.method.lower(), self.template


YEAR: Mapping[str, Mapping[str, Any]] = {role: {"path": {"year": "2026"}} for role in ROLES}  # an action plan's year
NO_JOB: Mapping[str, Mapping[str, Any]] = {r: {"path": {"job_id": "0" * 32}} for r in ROLES}
ACTIVITY = {
    "title": "矩阵活动",
    "description": "范围矩阵测试",
    "unit_id": "{unit}",
    "line_of_work": "community_school",
    "themes": ["poverty_health"],
    "target_groups": ["社区居民"],
    "place": "某社区",
    "county": "长安区",
    "starts_at": "{starts_at}",
    "ends_at": "{ends_at}",
    "capacity": 5,
    "signup_opens_at": "{opens_at}",
    "signup_closes_at": "{closes_at}",
}
DEMAND = {"unit_id": "{unit}", "enterprise": "某企业", "title": "某难题", "description": "需要技术支持"}
SUB = {"url": "not a url", "event_types": ["stvs.unit.registered.v1"]}

ROWS: tuple[Row, ...] = (
    # ---- the gateway's own routes
    Row("get", "/healthz", "P 200 | C 200 | K 200 | V 200 | S 200 | A 200"),
    Row("get", "/readyz", "P 200 | C 200 | K 200 | V 200 | S 200 | A 200"),
    Row("get", "/api/v1/auth/me", "P 200 | C 200 | K 200 | V 200 | S 200 | A 401"),
    Row("post", "/api/v1/auth/signin", "P 401 | C 401 | K 401 | V 401 | S 401 | A 401",
        body={"username": "nobody-here", "password": "wrong-password-1"}),
    Row("post", "/api/v1/auth/refresh", "P 401 | C 401 | K 401 | V 401 | S 401 | A 401",
        body={"refresh_token": "not-a-token"}),
    Row("post", "/api/v1/auth/password", "P 422 | C 422 | K 422 | V 422 | S 403 | A 401",
        body={"old_password": "not-the-password", "new_password": "A-new-password-42"}),
    Row("post", "/api/v1/auth/signout", "P 204 | C 204 | K 204 | V 204 | S 204 | A 401"),
    # accounts: an admin manages those of its scope (the account of V1 is in branch 1, K2's admin's in branch 2)
    Row("post", "/api/v1/accounts", "P 201 | C 201 403 | K 201 403 | V 403 | S 403 | A 401",
        body={"username": "{login}", "password": "Matrix-pass-1234", "role": "unit_admin", "unit_id": "{unit}"}),
    Row("get", "/api/v1/accounts", "P 200 | C 200 | K 200 | V 403 | S 403 | A 401"),
    Row("get", "/api/v1/accounts/{account_id}", "P 200 | C 200 404 | K 200 404 | V 403 | S 403 | A 401"),
    Row("patch", "/api/v1/accounts/{account_id}", "P 200 | C 200 403 | K 200 403 | V 403 | S 403 | A 401",
        body={"display_name": "矩阵账号"}),
    Row("get", "/api/v1/public/certificates/{number}", "P 200 | C 200 | K 200 | V 200 | S 200 | A 200"),
    # the audit log: the province admin only
    Row("get", "/api/v1/audit", "P 200 | C 403 | K 403 | V 403 | S 403 | A 401"),
    # ---- dead letters: the province admin only
    *(
        row
        for service in ("gateway", "registry", "activities", "reporting", "notifier")
        for row in (
            Row("get", f"/api/v1/{service}/admin/dlq", "P 404 | C 403 | K 403 | V 403 | S 403 | A 401",
                query={"stream": "no-such-stream"}),
            Row("post", f"/api/v1/{service}/admin/dlq/replay", "P 404 | C 403 | K 403 | V 403 | S 403 | A 401",
                body={"stream": "no-such-stream"}),
        )
    ),
    # ---- registry: units
    Row("post", "/api/v1/units", "P 201 | C 201 403 | K 201 403 | V 403 | S 403 | A 401",
        body={"kind": "sub_team", "name": "{uniq}科技志愿服务分队", "parent_id": "{unit}"}),
    Row("get", "/api/v1/units", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401",
        query={"parent": "{unit}"}),
    Row("get", "/api/v1/units/suggest-name", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401",
        query={"kind": "sub_team", "base": "矩阵", "parent_id": "{unit}"}),
    Row("get", "/api/v1/units/{unit_id}", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401"),
    Row("patch", "/api/v1/units/{unit_id}", "P 200 | C 200 403 | K 200 403 | V 403 | S 403 | A 401",
        body={"address": "某地址"}),
    # a registration is decided above its registrar (the province registered these): a domain refusal, also 403
    Row("post", "/api/v1/units/{unit_id}/approve", "P 409 | C 403 | K 403 | V 403 | S 403 | A 401"),
    Row("post", "/api/v1/units/{unit_id}/reject", "P 409 | C 403 | K 403 | V 403 | S 403 | A 401",
        body={"reason": "矩阵"}),
    # a move under the unit itself: let through by scope, refused by the hierarchy (422) and nothing moves; a unit
    # does not move itself (K's own unit: 403 from the registry, the level above moves it)
    Row("post", "/api/v1/units/{unit_id}/move", "P 422 | C 422 403 | K 403 | V 403 | S 403 | A 401",
        body={"new_parent_id": "{unit}", "reason": "矩阵"}),
    Row("get", "/api/v1/units/{unit_id}/subtree", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401"),
    Row("get", "/api/v1/units/{unit_id}/path", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401"),
    # ---- registry: volunteers
    Row("post", "/api/v1/volunteers", "P 201 | C 201 403 | K 201 403 | V 403 | S 403 | A 401",
        body="{new_volunteer}"),
    Row("get", "/api/v1/volunteers", "P 200 | C 200 404 | K 200 404 | V 404 | S 403 | A 401",
        query={"unit_id": "{unit}"}),
    Row("get", "/api/v1/volunteers/{volunteer_id}", "P 200 | C 200 404 | K 200 404 | V 200 404 | S 403 | A 401"),
    Row("patch", "/api/v1/volunteers/{volunteer_id}", "P 200 | C 200 403 | K 200 403 | V 200 403 | S 403 | A 401",
        body={"employer": "河北农业大学"}),
    # joining: the attack is "my unit, someone else's volunteer"
    Row("post", "/api/v1/volunteers/{volunteer_id}/units/{unit_id}",
        "P 409 | C 409 403 | K 409 403 | V 409 403 | S 403 | A 401", other={"unit": "own"}),
    Row("delete", "/api/v1/volunteers/{volunteer_id}/units/{unit_id}",
        "P 404 | C 404 403 | K 404 403 | V 404 403 | S 403 | A 401", query={"reason": "矩阵"},
        by_role={"P": {"path": {"unit": "{stranger_unit}"}}, "C": {"path": {"unit": "{stranger_unit}"}},
                 "K": {"path": {"unit": "{stranger_unit}"}}, "V": {"path": {"unit": "{stranger_unit}"}}}),
    Row("post", "/api/v1/volunteers/{volunteer_id}/units/{unit_id}/approve",
        "P 404 | C 404 403 | K 404 403 | V 403 | S 403 | A 401",
        by_role={r: {"path": {"volunteer": "{nobody}"}} for r in "PCK"}),
    Row("post", "/api/v1/volunteers/{volunteer_id}/units/{unit_id}/reject",
        "P 404 | C 404 403 | K 404 403 | V 403 | S 403 | A 401", body={"reason": "矩阵"},
        by_role={r: {"path": {"volunteer": "{nobody}"}} for r in "PCK"}),
    # ---- registry: collective forms
    Row("get", "/api/v1/forms/{form}/template", "P 200 | C 200 | K 200 | V 404 | S 403 | A 401"),
    Row("get", "/api/v1/forms/{form}/export", "P 200 | C 200 404 | K 200 404 | V 404 | S 403 | A 401",
        query={"unit_id": "{unit}"}),
    Row("post", "/api/v1/forms/{form}/import", "P 415 | C 415 403 | K 415 403 | V 403 | S 403 | A 401",
        query={"unit_id": "{unit}", "dry_run": "true"}, multipart=True),
    # an upload as a job (accepted, then failed: the file is not a spreadsheet); a job is its uploader's (and the
    # province's): one nobody started answers 404 to every admin
    Row("post", "/api/v1/forms/{form}/imports", "P 202 | C 202 403 | K 202 403 | V 403 | S 403 | A 401",
        query={"unit_id": "{unit}", "dry_run": "true"}, multipart=True),
    Row("get", "/api/v1/forms/import-jobs/{job_id}", "P 404 | C 404 | K 404 | V 404 | S 403 | A 401",
        by_role=NO_JOB),
    Row("delete", "/api/v1/forms/import-jobs/{job_id}", "P 404 | C 404 | K 404 | V 403 | S 403 | A 401",
        by_role=NO_JOB),
    Row("post", "/api/v1/forms/import-jobs/{job_id}/cancel", "P 404 | C 404 | K 404 | V 403 | S 403 | A 401",
        by_role=NO_JOB),
    Row("get", "/api/v1/forms/import-jobs/{job_id}/problems", "P 404 | C 404 | K 404 | V 404 | S 403 | A 401",
        by_role=NO_JOB),
    Row("get", "/api/v1/forms/import-jobs/{job_id}/marked.xlsx",
        "P 404 | C 404 | K 404 | V 404 | S 403 | A 401", by_role=NO_JOB),
    # ---- activities (writes on the cancelled activity of the branch)
    Row("post", "/api/v1/activities", "P 201 | C 201 403 | K 201 403 | V 403 | S 403 | A 401", body=ACTIVITY),
    # the public listing: a volunteer may filter by any unit, an admin's filter is a unit of its scope
    Row("get", "/api/v1/activities", "P 200 | C 200 404 | K 200 404 | V 200 | S 200 | A 401",
        query={"unit_id": "{unit}"}),
    Row("get", "/api/v1/activities/{activity_id}", "P 200 | C 200 | K 200 | V 200 | S 200 | A 401"),
    Row("patch", "/api/v1/activities/{activity_id}", "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401",
        body={"capacity": 6}),
    Row("post", "/api/v1/activities/{activity_id}/publish", "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401"),
    Row("post", "/api/v1/activities/{activity_id}/start", "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401"),
    Row("post", "/api/v1/activities/{activity_id}/complete",
        "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401"),
    Row("post", "/api/v1/activities/{activity_id}/cancel", "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401",
        body={"reason": "矩阵"}),
    Row("post", "/api/v1/activities/{activity_id}/publicity",
        "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401", body={"summary": "宣传稿", "people_served": 10}),
    # an admin signs up only a volunteer of its scope; the attack is "my activity, someone else's volunteer"
    Row("post", "/api/v1/activities/{activity_id}/signups",
        "P 409 | C 409 403 | K 409 403 | V 409 | S 403 | A 401",
        body={"volunteer_id": "{volunteer}"}, other={"activity": "own"}, by_role={"V": {"body": {}}}),
    Row("get", "/api/v1/activities/{activity_id}/signups", "P 200 | C 200 404 | K 200 404 | V 404 | S 403 | A 401"),
    Row("delete", "/api/v1/activities/{activity_id}/signups/{volunteer_id}",
        "P 409 | C 409 403 | K 409 403 | V 409 403 | S 403 | A 401"),
    Row("post", "/api/v1/activities/{activity_id}/signups/{volunteer_id}/approve",
        "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401"),
    Row("post", "/api/v1/activities/{activity_id}/signups/{volunteer_id}/reject",
        "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401"),
    Row("post", "/api/v1/activities/{activity_id}/checkin", "P 409 | C 409 403 | K 409 403 | V 409 | S 403 | A 401",
        body={"volunteer_id": "{volunteer}", "at": "{now}"}, other={"activity": "own"},
        by_role={"V": {"body": {"code": "{code}"}}}),
    Row("post", "/api/v1/activities/{activity_id}/checkout",
        "P 409 | C 409 403 | K 409 403 | V 409 | S 403 | A 401",
        body={"volunteer_id": "{volunteer}", "at": "{now}"}, other={"activity": "own"},
        by_role={"V": {"body": {"code": "{code}"}}}),
    Row("get", "/api/v1/activities/{activity_id}/checkin-code",
        "P 200 | C 200 404 | K 200 404 | V 404 | S 403 | A 401"),
    Row("get", "/api/v1/activities/{activity_id}/attendance",
        "P 200 | C 200 404 | K 200 404 | V 404 | S 403 | A 401"),
    Row("post", "/api/v1/activities/{activity_id}/attendance/{volunteer_id}/correction",
        "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401", body={"hours": "1.5", "reason": "矩阵"},
        other={"activity": "own"}),
    # ---- demands: an admin sees its subtree's and those of the units above it
    Row("post", "/api/v1/demands", "P 201 | C 201 403 | K 201 403 | V 403 | S 403 | A 401", body=DEMAND),
    Row("get", "/api/v1/demands", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401",
        query={"unit_id": "{unit}"}),
    Row("get", "/api/v1/demands/{demand_id}", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401"),
    Row("patch", "/api/v1/demands/{demand_id}", "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401",
        body={"status": "open"}),
    # ---- reporting
    Row("get", "/api/v1/compliance", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401",
        query={"unit_id": "{unit}"}),
    Row("get", "/api/v1/stats/units/{unit_id}", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401"),
    Row("get", "/api/v1/stats/volunteers/{volunteer_id}",
        "P 200 | C 200 404 | K 200 404 | V 200 404 | S 403 | A 401"),
    Row("post", "/api/v1/action-plans", "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401",
        body={"unit_id": "{unit}", "year": 2026, "text": "行动计划"}),
    Row("get", "/api/v1/monthly-reports/{unit_id}/{month}",
        "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401"),
    Row("post", "/api/v1/monthly-reports/{unit_id}/{month}/submit",
        "P 409 | C 409 403 | K 409 403 | V 403 | S 403 | A 401"),
    # ---- reports read back, amended (a new version each time: nothing else depends on it) and reviewed (a stale
    # version: refused by the report's state once the scope let it through, nothing changes)
    Row("get", "/api/v1/action-plans", "P 200 | C 200 404 | K 200 404 | V 404 | S 403 | A 401",
        query={"unit_id": "{unit}", "year": "2026"}),
    Row("get", "/api/v1/action-plans/{unit_id}/{year}", "P 200 | C 200 404 | K 200 404 | V 404 | S 403 | A 401",
        by_role=YEAR),
    Row("post", "/api/v1/action-plans/{unit_id}/{year}/versions",
        "P 201 | C 201 403 | K 201 403 | V 403 | S 403 | A 401", body={"text": "修改后的行动计划"}, by_role=YEAR),
    Row("post", "/api/v1/action-plans/{unit_id}/{year}/review", "P 409 | C 403 | K 403 | V 403 | S 403 | A 401",
        body={"decision": "accept", "version": 999}, by_role=YEAR),
    Row("get", "/api/v1/monthly-reports", "P 200 | C 200 404 | K 200 404 | V 404 | S 403 | A 401",
        query={"unit_id": "{unit}", "month": "{month}"}),
    Row("get", "/api/v1/monthly-reports/{unit_id}/{month}/submission",
        "P 200 | C 200 404 | K 200 404 | V 404 | S 403 | A 401"),
    Row("post", "/api/v1/monthly-reports/{unit_id}/{month}/versions",
        "P 201 | C 201 403 | K 201 403 | V 403 | S 403 | A 401", body={"note": "更正"}),
    Row("post", "/api/v1/monthly-reports/{unit_id}/{month}/review", "P 409 | C 403 | K 403 | V 403 | S 403 | A 401",
        body={"decision": "accept", "version": 999}),
    Row("get", "/api/v1/exports/compliance.xlsx", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401",
        query={"unit_id": "{unit}"}),
    Row("get", "/api/v1/exports/monthly/{unit_id}/{month}.xlsx",
        "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401"),
    Row("get", "/api/v1/certificates/volunteers/{volunteer_id}.pdf",
        "P 200 | C 200 404 | K 200 404 | V 200 404 | S 403 | A 401", query={"unit_id": "{unit}"}),
    Row("get", "/api/v1/certificates/{number}", "P 404 | C 404 | K 404 | V 404 | S 403 | A 401"),
    Row("get", "/api/v1/charts/headcount.svg", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401",
        query={"unit_id": "{unit}"}),
    Row("get", "/api/v1/charts/quota-heatmap.svg", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401",
        query={"unit_id": "{unit}"}),
    # ---- notifier
    Row("get", "/api/v1/notifications", "P 200 | C 200 404 | K 200 404 | V 200 404 | S 403 | A 401",
        query={"unit": "{unit}"}, by_role={"V": {"query": {"recipient": "volunteer:{volunteer}"}}}),
    Row("get", "/api/v1/deadlines", "P 200 | C 200 | K 200 | V 404 | S 200 | A 401"),
    Row("get", "/api/v1/obligations/{unit_id}", "P 200 | C 200 404 | K 200 404 | V 404 | S 200 | A 401"),
    Row("get", "/api/v1/subscriptions", "P 200 | C 403 | K 403 | V 404 | S 200 | A 401"),
    Row("post", "/api/v1/subscriptions", "P 422 | C 403 | K 403 | V 403 | S 403 | A 401", body=SUB),
    Row("delete", "/api/v1/subscriptions/{subscription_id}", "P 404 | C 403 | K 403 | V 403 | S 403 | A 401"),
    Row("post", "/api/v1/subscriptions/{subscription_id}/resume",
        "P 404 | C 403 | K 403 | V 403 | S 403 | A 401"),
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    role: str
    own: bool
    row: Row
    path: str
    query: dict[str, str]
    body: Any
    content_type: str | None
    expected: int

    def __str__(self) -> str:
        side = "own" if self.own else "other"
        media = f" [{self.content_type}]" if self.content_type else ""
        return f"{self.role} {side:<5} {self.row.method.upper():<6} {self.path}{media}"


PATH_NAMES = {
    "account_id": "account",
    "unit_id": "unit",
    "volunteer_id": "volunteer",
    "activity_id": "activity",
    "demand_id": "demand",
    "subscription_id": "subscription",
}


def resolve(value: Any, refs: Mapping[str, str]) -> Any:
    """``value`` with every ``{name}`` replaced from ``refs`` (a whole-string placeholder may stand for an object)."""
    if isinstance(value, str):
        whole = re.fullmatch(r"\{(\w+)\}", value)
        if whole and not isinstance(refs.get(whole.group(1), ""), str):
            return refs[whole.group(1)]
        return re.sub(r"\{(\w+)\}", lambda m: str(refs[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value


def build(row: Row, role: str, own: bool, refs_of: Any) -> tuple[str, dict[str, str], Any]:
    """The path, query and body of one case (fresh placeholders: a created record gets a new name each time)."""
    refs = dict(refs_of(role, own))
    if not own and role in ("C", "K"):  # an admin's attack: its own record with someone else's
        mine = refs_of(role, True)
        refs.update({k: mine[k] for k, v in row.other.items() if v == "own"})
    special = row.by_role.get(role, {})
    for name, value in special.get("path", {}).items():
        refs[name] = resolve(value, refs)
    template = row.template
    for param, name in PATH_NAMES.items():
        template = template.replace("{" + param + "}", "{" + name + "}")
    path = resolve(template, refs)
    query = resolve(dict(special.get("query", row.query)), refs)
    body = resolve(special.get("body", row.body), refs)
    return path, query, body


def cases(rows: tuple[Row, ...], refs_of: Any) -> list[Case]:
    """Every row x role x side (x media type for JSON bodies). ``refs_of(role, own)`` gives the placeholders."""
    out = []
    for row in rows:
        expected = row.expected()
        for role in ROLES:
            for own in (True, False):
                status = expected[role][0 if own else 1]
                has_body = (row.by_role.get(role, {}).get("body", row.body)) is not None
                types: tuple[str | None, ...] = (None,)
                if has_body and not row.multipart:
                    types = ("application/json", ALT_JSON)
                for content_type in types:
                    path, query, body = build(row, role, own, refs_of)
                    out.append(Case(role, own, row, path, query, body, content_type, status))
    return out
