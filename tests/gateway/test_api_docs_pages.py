"""Swagger UI and ReDoc (``/docs``, ``/redoc``) load their files from the platform itself, never from a CDN: the
files come from the npm packages swagger-ui-dist and redoc, copied into the console's build (``web/dist/api-docs``)
and served with it (issue 18 §1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app

REPO = Path(__file__).resolve().parents[2]
BUILT = (REPO / "web" / "dist" / "api-docs" / "swagger-ui-bundle.js").is_file()


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())  # no lifespan: the pages and the console's files need no platform


def _references(html: str) -> list[str]:
    return re.findall(r"""(?:src|href|url)\s*[=:(]\s*['"]?([^'"\s)>]+)""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_reference_no_external_url(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://", r.text), re.findall(r"https?://[^'\"\s]+", r.text)
    references = _references(r.text)
    assert any(ref.startswith("/api-docs/") for ref in references), references
    assert "/openapi.json" in r.text


@pytest.mark.skipif(not BUILT, reason="web console not built (make install builds it)")
def test_the_pages_files_are_served_with_the_console(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        for ref in _references(client.get(page).text):
            if ref.startswith("/api-docs/"):
                r = client.get(ref)
                assert r.status_code == 200 and len(r.content) > 100, ref
