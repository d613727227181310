"""Compliance (达标情况): every unit of a subtree against every rule, with its gaps."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.responses import Response

from shared.access import access
from shared.identity import IdentityDep

from .deps import QueriesDep
from .responses import json_response
from .schemas import ComplianceTable

router = APIRouter(tags=["统计与报送"])


@router.get(
    "/compliance",
    openapi_extra=access("unit_admin", "system", units=["query:unit_id"]),
    summary="队伍及其下级对照各项要求的达标情况（含差额）",
    response_model=ComplianceTable,
)
async def get_compliance(
    queries: QueriesDep,
    identity: IdentityDep,
    unit_id: str,
    year: int | None = Query(None, ge=2000, le=2100),
    quarter: int | None = Query(None, ge=1, le=4),
    at: datetime | None = Query(None, description="按此时刻评估（默认当前时间）"),
) -> Response:
    # ~6 MB for a province: written by orjson, not validated again (the model documents it; tests check it)
    return json_response(await queries.compliance(identity, unit_id, year, quarter, at))
