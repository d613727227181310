"""Pure rules of the gateway: scope, routing table, OpenAPI merging, tokens, settings."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from services.gateway.adapters.openapi import merge
from services.gateway.domain.certificates import mask_name
from services.gateway.domain.errors import GatewayError
from services.gateway.domain.routes import target, units_named, volunteers_named
from services.gateway.domain.scope import covers
from services.gateway.domain.sessions import AUDIENCE, ISSUER, decode_access_token, issue_access_token
from services.gateway.settings import GatewaySettings
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


def test_routing_table() -> None:
    assert target(["units", "u1"]) == ("registry", ["units", "u1"], False)
    assert target(["monthly-reports"]) == ("reporting", ["monthly-reports"], False)
    assert target(["obligations", "x"])[0] == "notifier"
    assert target(["notifier", "admin", "dlq", "replay"]) == ("notifier", ["admin", "dlq", "replay"], True)
    for bad in (["nope"], ["units", "..", "healthz"], ["registry", "healthz"], []):
        with pytest.raises(GatewayError) as err:
            target(bad)
        assert err.value.status == 404


def test_openapi_merge_takes_owned_paths_and_renames_clashing_schemas() -> None:
    own: dict[str, Any] = {"paths": {"/api/v1/auth/signin": {}}, "components": {"schemas": {"Err": {"type": "object"}}}}
    ref = {"$ref": "#/components/schemas/Err"}
    registry = {
        "paths": {
            "/units/{id}": {"get": {"responses": {"200": {"content": {"application/json": {"schema": ref}}}}}},
            "/activities": {"get": {}},  # not registry's: left out
            "/healthz": {"get": {}},
            "/admin/dlq": {"get": {}},
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


def test_paths_that_name_units_and_volunteers() -> None:
    assert units_named(["units", "K1", "subtree"]) == ["K1"]
    assert units_named(["units", "suggest-name"]) == []
    assert units_named(["volunteers", "V1", "units", "K1", "approve"]) == ["K1"]
    assert units_named(["exports", "monthly", "K1", "2026-05.xlsx"]) == ["K1"]
    assert units_named(["activities", "a1"]) == []
    assert volunteers_named(["certificates", "volunteers", "V1.pdf"]) == ["V1"]
    assert volunteers_named(["stats", "volunteers", "V1"]) == ["V1"]
    assert volunteers_named(["activities", "a1", "signups", "V1"]) == []


def test_an_expired_access_token_is_refused() -> None:
    settings = GatewaySettings()
    now = int(time.time())
    claims = {"sub": "acc", "ver": 1, "sid": "s", "aud": AUDIENCE, "iss": ISSUER, "iat": now - 100, "exp": now - 10}
    token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), "HS256")
    with pytest.raises(GatewayError) as err:
        decode_access_token(settings, token)
    assert (err.value.status, err.value.code) == (401, "token_expired")
