"""Exports: the compliance table and the monthly report as workbooks (one sheet per level of the hierarchy)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.responses import Response

from shared.access import access
from shared.identity import IdentityDep

from .deps import QueriesDep
from .responses import XlsxResponse, xlsx_response

router = APIRouter(tags=["统计与报送"])


@router.get(
    "/exports/compliance.xlsx",
    openapi_extra=access("unit_admin", "system", units=["query:unit_id"], personal=True),
    summary="导出达标情况表（每个层级一个工作表）",
    response_class=XlsxResponse,
)
async def export_compliance(
    queries: QueriesDep,
    identity: IdentityDep,
    unit_id: str | None = None,
    year: int | None = Query(None, ge=2000, le=2100),
    quarter: int | None = Query(None, ge=1, le=4),
    at: datetime | None = None,
) -> Response:
    content, name = await queries.compliance_xlsx(identity, unit_id, year, quarter, at)
    return xlsx_response(content, name)


@router.get(
    "/exports/monthly/{unit_id}/{month}.xlsx",
    openapi_extra=access("unit_admin", "system", units=["path:unit_id"], personal=True),
    summary="导出月报（含下级汇总，每个层级一个工作表）",
    response_class=XlsxResponse,
)
async def export_monthly(queries: QueriesDep, identity: IdentityDep, unit_id: str, month: str) -> Response:
    content = await queries.monthly_xlsx(identity, unit_id, month)
    return xlsx_response(content, f"monthly-{unit_id}-{month}.xlsx")
