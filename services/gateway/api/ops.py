"""The operators' and readers' routes of the gateway itself: one OpenAPI document (the gateway's routes and every
service's), its Swagger UI and ReDoc pages (their files served locally with the console), readiness with the
services' health, the gateway's own dead letters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse

from shared.identity import Identity
from shared.problems import Problem
from shared.service import Readiness, dlq_router

from .deps import CallerDep, UseCasesDep

PREFIX = "/api/v1"
OPENAPI = "/openapi.json"
# Swagger UI's and ReDoc's files, from the npm packages swagger-ui-dist and redoc, copied into the console's build
# (web/dist/api-docs, `npm run build`) and served with it: the pages load nothing from a CDN.
ASSETS = "/api-docs"
router = APIRouter(tags=["运维"])


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get(OPENAPI, include_in_schema=False)
async def openapi(request: Request, uc: UseCasesDep) -> JSONResponse:
    return JSONResponse(await uc.docs.document(request.app.openapi()))


@router.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
async def swagger(request: Request) -> HTMLResponse:
    assets = _root(request) + ASSETS
    return get_swagger_ui_html(
        openapi_url=_root(request) + OPENAPI,
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=_root(request) + "/docs/oauth2-redirect",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon-32x32.png",
    )


@router.api_route("/docs/oauth2-redirect", methods=["GET", "HEAD"], include_in_schema=False)
async def swagger_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.api_route("/redoc", methods=["GET", "HEAD"], include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    assets = _root(request) + ASSETS
    return get_redoc_html(
        openapi_url=_root(request) + OPENAPI,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{assets}/redoc.standalone.js",
        redoc_favicon_url=f"{assets}/favicon-32x32.png",
        with_google_fonts=False,
    )


@router.get(
    "/readyz",
    summary="依赖就绪（Kafka、MongoDB、各服务 /healthz）",
    operation_id="gateway_readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
)
async def readyz(uc: UseCasesDep) -> JSONResponse:
    ok, checks = await uc.service.readiness()
    checks["services"] = await uc.upstreams.health()
    return JSONResponse({"status": "ready" if ok else "not_ready", **checks}, status_code=200 if ok else 503)


def _province(caller: CallerDep) -> Identity:
    if caller.identity.role != "province_admin":
        raise Problem(403, "forbidden_role", "仅省级管理员可管理死信")
    return caller.identity


PROVINCE: Any = Depends(_province)
# The gateway's own dead letters (its unit-tree and volunteer copies), for province admins signed in to the gateway.
dead_letters = dlq_router(f"{PREFIX}/gateway/admin/dlq", province=PROVINCE, consumer_of="网关")
