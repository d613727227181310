"""The merged OpenAPI document (``GET /openapi.json``, written to web/openapi.json) is one clients can trust
(issue 18 §1): valid OpenAPI 3.1, security from the access declarations, every error a problem document, the
files' media types, unique operationIds."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from services.gateway.adapters.openapi import truthful
from shared.access import access
from shared.problems import PROBLEM_JSON

REPO = Path(__file__).resolve().parents[2]
METHODS = ("get", "put", "post", "delete", "patch")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _merged() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("dump_openapi", REPO / "web" / "scripts" / "dump_openapi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    document: dict[str, Any] = asyncio.run(module.merged_document())
    return json.loads(json.dumps(document))


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return _merged()


def _ops(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items() if m in METHODS}


def _schemes(op: dict[str, Any]) -> set[str]:
    return {name for requirement in op.get("security", []) for name in requirement}


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_the_published_copy_is_this_document(doc: dict[str, Any]) -> None:
    published = json.loads((REPO / "web" / "openapi.json").read_text(encoding="utf-8"))
    assert published == doc


def test_public_operations_ask_for_no_token(doc: dict[str, Any]) -> None:
    ops = _ops(doc)
    for key in [
        ("POST", "/api/v1/auth/signin"),
        ("POST", "/api/v1/auth/refresh"),
        ("GET", "/api/v1/public/certificates/{number}"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    ]:
        assert ops[key]["security"] == [], key
        assert "401" not in ops[key]["responses"], key


def test_every_other_operation_names_the_schemes_that_sign_in(doc: dict[str, Any]) -> None:
    public = {
        "/api/v1/auth/signin",
        "/api/v1/auth/refresh",
        "/api/v1/public/certificates/{number}",
        "/healthz",
        "/readyz",
    }
    for (method, path), op in _ops(doc).items():
        if path in public:
            continue
        assert "bearer" in _schemes(op), (method, path)
        assert "401" in op["responses"], (method, path)
        roles = (op.get("x-stvs-access") or {}).get("roles", [])
        assert ("apiKey" in _schemes(op)) == ("system" in roles), (method, path)
    ops = _ops(doc)
    # the gateway's own routes that need sign-in (Swagger's Authorize sends the token there too)
    for key in [("GET", "/api/v1/accounts"), ("GET", "/api/v1/auth/me"), ("GET", "/api/v1/audit")]:
        assert _schemes(ops[key]) == {"bearer"}, key
    # verifying a certificate by number inside the platform needs sign-in (the public one does not)
    assert _schemes(ops[("GET", "/api/v1/certificates/{number}")]) == {"bearer"}
    assert _schemes(ops[("GET", "/api/v1/units")]) == {"bearer", "apiKey"}
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}


def test_every_error_answer_is_a_problem_document(doc: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/Problem"}
    for (method, path), op in _ops(doc).items():
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"] == {PROBLEM_JSON: {"schema": problem}}, (method, path, status)
        if path != "/healthz":
            assert "503" in op["responses"], (method, path)
        if "{" in path:
            assert "404" in op["responses"], (method, path)
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    props = schemas["Problem"]["properties"]
    assert set(props) == {"type", "title", "status", "detail", "code", "instance", "errors"}
    for code in ("validation", "no_identity", "forbidden_role", "out_of_scope", "not_found", "service_unavailable"):
        assert f"`{code}`" in props["code"]["description"]
    ops = _ops(doc)
    assert {"413", "415", "429"} <= set(ops[("POST", "/api/v1/forms/{form}/import")]["responses"])
    assert {"413", "415"} <= set(ops[("POST", "/api/v1/forms/{form}/imports")]["responses"])
    assert "429" in ops[("GET", "/api/v1/public/certificates/{number}")]["responses"]
    assert "403" in ops[("GET", "/api/v1/accounts")]["responses"]


def test_files_are_documented_with_their_media_types(doc: dict[str, Any]) -> None:
    ops = _ops(doc)
    for path, media in [
        ("/api/v1/exports/compliance.xlsx", XLSX),
        ("/api/v1/exports/monthly/{unit_id}/{month}.xlsx", XLSX),
        ("/api/v1/forms/{form}/template", XLSX),
        ("/api/v1/forms/{form}/export", XLSX),
        ("/api/v1/forms/import-jobs/{job_id}/marked.xlsx", XLSX),
        ("/api/v1/certificates/volunteers/{volunteer_id}.pdf", "application/pdf"),
        ("/api/v1/charts/headcount.svg", "image/svg+xml"),
        ("/api/v1/charts/quota-heatmap.svg", "image/svg+xml"),
    ]:
        content = ops[("GET", path)]["responses"]["200"]["content"]
        assert [m.split(";")[0] for m in content] == [media], path


def test_operation_ids_are_unique(doc: dict[str, Any]) -> None:
    ids = Counter(op["operationId"] for op in _ops(doc).values())
    assert [i for i, n in ids.items() if n > 1] == []
    assert "registry_list_dlq_admin_dlq_get" in ids and "notifier_list_dlq_admin_dlq_get" in ids


def test_security_follows_the_declaration() -> None:
    def op(extra: dict[str, Any]) -> dict[str, Any]:
        return {"operationId": "x", "responses": {"200": {"description": "ok"}}, **extra}

    doc = {
        "paths": {
            "/api/v1/a/{a_id}": {"get": op(access("unit_admin", "system"))},
            "/api/v1/b": {"post": op(access())},
        }
    }
    out = truthful(doc, {"/api/v1/a/{a_id}": "registry", "/api/v1/b": "registry"})
    a = out["paths"]["/api/v1/a/{a_id}"]["get"]
    b = out["paths"]["/api/v1/b"]["post"]
    assert a["security"] == [{"bearer": []}, {"apiKey": []}]
    assert b["security"] == [{"bearer": []}]
    assert set(a["responses"]) == {"200", "401", "403", "404", "503"}
    assert set(b["responses"]) == {"200", "401", "403", "503"}
