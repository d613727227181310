"""Pure rules of the gateway: scope, routing table, OpenAPI merging, tokens, settings."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from services.gateway.adapters.openapi import merge
from services.gateway.domain.certificates import mask_name
from services.gateway.domain.errors import GatewayError
from services.gateway.domain.routes import Table, Unavailable
from services.gateway.domain.scope import covers
from services.gateway.domain.sessions import AUDIENCE, ISSUER, decode_access_token, issue_access_token
from services.gateway.settings import GatewaySettings
from shared.access import INTERNAL, PROVINCE_ONLY, access
from shared.identity import Identity

C1_ADMIN = Identity(subject="a", role="unit_admin", unit_id="C1")


def test_scope_covers_the_unit_and_what_is_below_only() -> None:
    assert covers(C1_ADMIN, "C1", None)
    assert covers(C1_ADMIN, "K1", {"ancestors": ["P", "C1"]})
    assert not covers(C1_ADMIN, "C2", {"ancestors": ["P"]})
    assert not covers(C1_ADMIN, "P", {"ancestors": []})
    assert not covers(C1_ADMIN, "X", None)
    assert covers(Identity(subject="p", role="province_admin"), "anything", None)
    assert not covers(Identity(subject="v", role="volunteer", volunteer_id="V"), "C1", None)
    assert not covers(Identity(subject="s", role="system"), "C1", None)


DOCS: dict[str, Any] = {
    "registry": {"paths": {
        "/units/{unit_id}": {"get": access("unit_admin", units=["path:unit_id"]), "patch": access("unit_admin")},
        "/units/suggest-name": {"get": access("unit_admin")},
        "/healthz": {"get": INTERNAL},
        "/undeclared": {"get": {}},
        "/admin/dlq/replay": {"post": PROVINCE_ONLY},
    }},
    "reporting": {"paths": {"/certificates/volunteers/{volunteer_id}.pdf": {"get": access("volunteer:self")}}},
}  # fmt: skip


def _status(table: Table, method: str, path: str) -> int:
    with pytest.raises(GatewayError) as err:
        table.find(method, path.split("/"))
    return err.value.status


def test_the_routing_table_is_what_the_services_declare() -> None:
    table = Table.of({**DOCS, "activities": {"paths": {}}, "notifier": {"paths": {}}})
    found = table.find("GET", ["units", "u1"])
    assert (found.operation.service, found.operation.template, found.params) == (
        "registry", "/units/{unit_id}", {"unit_id": "u1"}
    )  # fmt: skip
    assert table.find("HEAD", ["units", "u1"]).operation.method == "GET"
    assert table.find("GET", ["units", "suggest-name"]).operation.template == "/units/suggest-name", "literal first"
    pdf = table.find("GET", ["certificates", "volunteers", "V1.pdf"])
    assert (pdf.operation.service, pdf.params) == ("reporting", {"volunteer_id": "V1"})
    dlq = table.find("POST", ["registry", "admin", "dlq", "replay"])
    assert (dlq.operation.service, dlq.upstream, dlq.operation.access.province_only) == (
        "registry", ["admin", "dlq", "replay"], True
    )  # fmt: skip
    assert _status(table, "DELETE", "units/u1") == 405
    for bad in ("nope", "units/../healthz", "healthz", "undeclared", "registry/healthz", ""):
        assert _status(table, "GET", bad) == 404, bad


def test_a_path_no_known_document_declares_is_503_while_a_service_is_missing() -> None:
    table = Table.of(DOCS)
    assert table.find("GET", ["units", "u1"]).operation.service == "registry", "a known operation is served"
    with pytest.raises(Unavailable) as err:
        table.find("GET", ["deadlines"])
    assert (err.value.status, err.value.code, err.value.services) == (
        503,
        "service_unavailable",
        ["activities", "notifier"],
    )
    assert "活动服务暂时不可用" in err.value.detail and "通知服务暂时不可用" in err.value.detail
    assert err.value.headers["Retry-After"]


def test_the_audit_log_knows_personal_reads_from_the_declarations() -> None:
    table = Table.of({"registry": {"paths": {
        "/volunteers/{volunteer_id}": {"get": access("unit_admin", personal=True), "patch": access("unit_admin")},
        "/units/{unit_id}": {"get": access("unit_admin")},
    }}})  # fmt: skip
    assert table.personal("GET", "/volunteers/{volunteer_id}")
    assert not table.personal("PATCH", "/volunteers/{volunteer_id}")
    assert not table.personal("GET", "/units/{unit_id}")


def test_openapi_merge_takes_owned_paths_and_renames_clashing_schemas() -> None:
    own: dict[str, Any] = {"paths": {"/api/v1/auth/signin": {}}, "components": {"schemas": {"Err": {"type": "object"}}}}
    ref = {"$ref": "#/components/schemas/Err"}
    registry = {
        "paths": {
            "/units/{id}": {
                "get": {"responses": {"200": {"content": {"application/json": {"schema": ref}}}}, **access()}
            },
            "/activities": {"get": {}},  # not declared: left out
            "/healthz": {"get": INTERNAL},
            "/admin/dlq": {"get": PROVINCE_ONLY},
        },
        "components": {"schemas": {"Err": {"type": "string"}}},
    }
    doc = merge(own, {"registry": registry})
    assert set(doc["paths"]) == {"/api/v1/auth/signin", "/api/v1/units/{id}", "/api/v1/registry/admin/dlq"}
    schema = doc["paths"]["/api/v1/units/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/registry_Err"}
    assert doc["components"]["schemas"]["registry_Err"] == {"type": "string"}
    assert doc["components"]["schemas"]["Err"] == {"type": "object"}


def test_access_tokens_round_trip_and_expire() -> None:
    settings = GatewaySettings(access_ttl_s=30)
    token = issue_access_token(settings, {"_id": "acc", "token_version": 3, "role": "volunteer"}, "sid")
    claims = decode_access_token(settings, token)
    assert (claims["sub"], claims["ver"], claims["sid"]) == ("acc", 3, "sid")
    other = GatewaySettings(jwt_secret="another-secret-that-is-long-enough-32")
    with pytest.raises(GatewayError) as err:
        decode_access_token(other, token)
    assert err.value.status == 401


def test_production_refuses_the_development_jwt_secret() -> None:
    with pytest.raises(ValueError, match="STVS_JWT_SECRET"):
        GatewaySettings(production=True, internal_token="Zq7-uR2x_Lm9VbT4kW8nJ3cY5pH1sG6d").check_production()
    GatewaySettings(
        production=True,
        internal_token="Zq7-uR2x_Lm9VbT4kW8nJ3cY5pH1sG6d",
        jwt_secret="Pw3_kE8vN1-tX6qB9mF2aL5yC7rJ4hD0",
    ).check_production()
    with pytest.raises(ValueError, match="32"):
        GatewaySettings(jwt_secret="short")


def test_names_are_masked_for_anonymous_verification() -> None:
    assert [mask_name(n) for n in ("张科普", "张三", "欧阳娜娜", "李", "", None)] == [
        "张*普",
        "张*",
        "欧**娜",
        "*",
        None,
        None,
    ]


def test_an_expired_access_token_is_refused() -> None:
    settings = GatewaySettings()
    now = int(time.time())
    claims = {"sub": "acc", "ver": 1, "sid": "s", "aud": AUDIENCE, "iss": ISSUER, "iat": now - 100, "exp": now - 10}
    token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), "HS256")
    with pytest.raises(GatewayError) as err:
        decode_access_token(settings, token)
    assert (err.value.status, err.value.code) == (401, "token_expired")
