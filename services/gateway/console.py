"""Serves the web console (``web/dist``, built by ``npm run build`` in ``web/``) at ``/``.

Hashed assets (``/assets/…``) are cached for a year (their names change with their content); ``index.html`` is
revalidated on every load so a new build is picked up at once. Any other path that is not the API's or an
operator's falls back to ``index.html``, where the console's router takes over. When ``web/dist`` is missing the
gateway still runs: ``/`` answers a short Chinese page saying how to build the console, and one log line says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NoReturn

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from shared.problems import Problem

log = logging.getLogger("stvs.gateway.console")

# Paths the console never answers: the API, the operators' endpoints and the API documentation.
RESERVED = ("api", "docs", "redoc", "openapi.json", "healthz", "readyz", "metrics")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
HOW_TO_BUILD = "web console not built: run `make install` (or `cd web && npm ci && npm run build`) to serve it at /"

_MISSING_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>科技志愿服务平台</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.6">
<h1>网页控制台尚未构建</h1>
<p>请在项目目录运行 <code>make install</code>（或 <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>），
然后刷新本页。</p>
<p>接口文档：<a href="/docs">/docs</a></p>
</body></html>
"""


def _reserved(path: str) -> bool:
    head = path.strip("/").split("/", 1)[0]
    return head in RESERVED


def _not_found() -> NoReturn:
    raise Problem(404, "not_found", "请求的地址不存在")


def mount_console(app: FastAPI, dist: Path) -> None:
    """Adds the console's routes last, so every API and operator route keeps precedence."""
    dist = dist.resolve()
    index = dist / "index.html"
    if not index.is_file():
        log.warning(HOW_TO_BUILD + " (looked for %s)", index)

    @app.get("/{path:path}", include_in_schema=False)
    async def console(request: Request, path: str) -> Response:
        if _reserved(path):
            _not_found()
        if not index.is_file():
            return HTMLResponse(_MISSING_PAGE, status_code=503, headers={"Cache-Control": REVALIDATE})
        if path:
            candidate = (dist / path).resolve()
            # never outside dist (…/../), and only regular files
            if candidate.is_relative_to(dist) and candidate.is_file():
                immutable = candidate.parent == dist / "assets"
                return FileResponse(candidate, headers={"Cache-Control": IMMUTABLE if immutable else REVALIDATE})
            if path.startswith("assets/"):
                _not_found()  # a missing hashed file: never index.html in its place
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": REVALIDATE})
