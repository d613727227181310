"""The gateway's console files (services/gateway/console.py): SPA fallback, caching headers, reserved paths."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway.console import IMMUTABLE, mount_console
from shared.problems import install_problem_handlers


def app_with(dist: Path) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    mount_console(app, dist)
    return TestClient(app)


def test_assets_are_immutable_index_is_revalidated_and_client_routes_fall_back(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    client = app_with(tmp_path)

    asset = client.get("/assets/index-abc123.js")
    assert asset.status_code == 200 and asset.headers["cache-control"] == IMMUTABLE
    for path in ("/", "/unit/volunteers", "/me/activities/a1"):
        page = client.get(path)
        assert page.status_code == 200 and "console" in page.text, path
        assert page.headers["cache-control"] == "no-cache" and page.headers["content-type"].startswith("text/html")
    assert client.get("/favicon.svg").headers["cache-control"] == "no-cache"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_api_and_operator_paths_and_missing_assets_never_get_the_page(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    client = app_with(tmp_path)
    for path in ("/api/v2/nothing", "/api", "/docs/x", "/readyz", "/metrics", "/assets/gone.js"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json", path
    assert client.get("/openapi.json").headers["content-type"] == "application/json"  # the app's own
    assert client.get("/../../etc/passwd").status_code in (200, 404)  # normalised by the client: never a file
    assert "root:" not in client.get("/%2e%2e/%2e%2e/etc/passwd").text


def test_a_missing_build_is_a_clear_page(tmp_path: Path) -> None:
    client = app_with(tmp_path / "dist")
    r = client.get("/unit")
    assert r.status_code == 503 and "make install" in r.text and "尚未构建" in r.text
