"""Charts (SVG): the city detachments' headcounts, the units' activities per quarter."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import Response

from shared.access import access
from shared.identity import IdentityDep

from .deps import QueriesDep
from .responses import SvgResponse

router = APIRouter(tags=["统计与报送"])


@router.get(
    "/charts/headcount.svg",
    openapi_extra=access("unit_admin", "system", units=["query:unit_id"]),
    summary="各市支队注册人数与首批最低人数对比图",
    response_class=SvgResponse,
)
async def headcount_chart(queries: QueriesDep, identity: IdentityDep, unit_id: str | None = None) -> Response:
    return SvgResponse(await queries.headcount_chart(identity, unit_id))


@router.get(
    "/charts/quota-heatmap.svg",
    openapi_extra=access("unit_admin", "system", units=["query:unit_id"]),
    summary="各队伍季度活动热力图",
    response_class=SvgResponse,
)
async def quota_heatmap(
    queries: QueriesDep,
    identity: IdentityDep,
    unit_id: str | None = None,
    year: int | None = Query(None, ge=2000, le=2100),
    limit: int = Query(200, ge=1, le=2000),
) -> Response:
    return SvgResponse(await queries.quota_heatmap(identity, unit_id, year, limit))
