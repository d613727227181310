"""Everything else below /api/v1: the operation found in the services' documents, its declaration enforced, then
forwarded to the service that declares it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.routing import Match as RouteMatch

from services.gateway.adapters.upstream import forward
from services.gateway.domain.errors import GatewayError
from services.gateway.domain.routes import READS, Match, Unavailable, is_upload

from .deps import CallerDep, UseCasesDep

PREFIX = "/api/v1"
router = APIRouter()


def _own_path(request: Request) -> bool:
    """A path of the gateway's own routes below /api/v1 (``/api/v1/audit``) asked with another method."""
    return any(
        route.matches(request.scope)[0] == RouteMatch.PARTIAL
        and str(getattr(route, "path", None) or PREFIX + "/").startswith(PREFIX + "/")
        for route in request.app.router.routes
    )


async def _find(request: Request, uc: UseCasesDep, segments: list[str]) -> Match:
    """The operation a request calls; a path no known document declares sends for the documents again first."""
    if _own_path(request):
        raise GatewayError(405, "method_not_allowed", "该接口不支持此请求方法")
    try:
        return uc.docs.table().find(request.method, segments)
    except Unavailable:
        if not await uc.docs.refresh_if_due():
            raise
    except GatewayError as exc:  # a route deployed since the documents were read is learned within 30 s
        if exc.status != 404 or not await uc.docs.refresh_if_due(known_too=True):
            raise
    return uc.docs.table().find(request.method, segments)


@router.api_route(
    PREFIX + "/{path:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def proxy(request: Request, path: str, caller: CallerDep, uc: UseCasesDep) -> Response:
    segments = path.strip("/").split("/")
    match = await _find(request, uc, segments)
    identity = caller.identity
    query = list(request.query_params.multi_items())
    await uc.access.authorize(identity, request.method, match, query)
    body = None
    write = request.method not in READS
    if write and (
        identity.role == "volunteer"
        or (identity.role == "unit_admin" and not is_upload(request.headers.get("content-type", "")))
    ):
        # small: bounded by max_body_bytes (a volunteer's writes are small JSON, read whole whatever the type says)
        body = await request.body()
        await uc.access.check_body(identity, match, body)
    service = match.operation.service
    return await forward(request, uc.upstreams, service, match.upstream, identity, body)
