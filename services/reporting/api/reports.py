"""Reports (信息报送): the action plan, the monthly report (generated from the statistics) and its submission."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from services.reporting.usecases.submissions import ActionPlan
from shared.access import access
from shared.identity import Identity, IdentityDep

from .deps import SUBMITTERS, QueriesDep, SubmitDep
from .responses import json_response
from .schemas import ActionPlanIn, MonthlyReport, Submission

router = APIRouter(tags=["统计与报送"])


@router.post(
    "/action-plans",
    openapi_extra=access("unit_admin", units=["body:unit_id"]),
    status_code=201,
    summary="报送行动计划（4月30日前）",
    response_model=Submission,
)
async def submit_action_plan(submit: SubmitDep, body: ActionPlanIn, identity: Identity = SUBMITTERS) -> Any:
    links = [str(link) for link in body.attachment_links]
    return await submit.action_plan(identity, ActionPlan(body.unit_id, body.year, body.text, links))


@router.get(
    "/monthly-reports/{unit_id}/{month}",
    openapi_extra=access("unit_admin", "system", units=["path:unit_id"]),
    summary="月报（由统计数据生成，含下级汇总）",
    response_model=MonthlyReport,
)
async def get_monthly_report(queries: QueriesDep, identity: IdentityDep, unit_id: str, month: str) -> Response:
    return json_response(await queries.monthly_report(identity, unit_id, month))


@router.post(
    "/monthly-reports/{unit_id}/{month}/submit",
    openapi_extra=access("unit_admin", units=["path:unit_id"]),
    status_code=201,
    summary="报送月报",
    response_model=Submission,
)
async def submit_monthly_report(submit: SubmitDep, unit_id: str, month: str, identity: Identity = SUBMITTERS) -> Any:
    return await submit.monthly_report(identity, unit_id, month)
