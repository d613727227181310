"""Everything else below /api/v1: scope enforcement, then forwarding to the service that owns the resource."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.gateway.adapters.upstream import forward
from services.gateway.domain.routes import READS, is_upload, target

from .deps import CallerDep, UseCasesDep

PREFIX = "/api/v1"
router = APIRouter()


@router.api_route(
    PREFIX + "/{path:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def proxy(request: Request, path: str, caller: CallerDep, uc: UseCasesDep) -> Response:
    segments = path.strip("/").split("/")
    service, upstream_path, dlq = target(segments)
    identity = caller.identity
    query = list(request.query_params.multi_items())
    await uc.access.authorize(identity, request.method, segments, query, dlq)
    body = None
    write = request.method not in READS
    if write and (
        identity.role == "volunteer"
        or (identity.role == "unit_admin" and not is_upload(request.headers.get("content-type", "")))
    ):
        # small: bounded by max_body_bytes (a volunteer's writes are small JSON, read whole whatever the type says)
        body = await request.body()
        await uc.access.check_body(identity, request.method, body)
    return await forward(request, uc.upstreams, service, upstream_path, identity, body)
