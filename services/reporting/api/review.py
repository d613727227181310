"""Submitted reports read back, amended, reviewed and listed: the action plan of a year and the monthly report of a
month, each with every version kept and the province office's decisions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from services.reporting.domain.periods import parse_month, parse_year
from services.reporting.domain.reports import ReviewDecision
from services.reporting.usecases.submissions import ActionPlan
from shared.access import access
from shared.identity import Identity

from .deps import REVIEWERS, SUBMITTERS, ReportsDep
from .schemas import AmendActionPlanIn, AmendMonthlyIn, ListedStatus, Report, ReportListing, ReviewIn

router = APIRouter(tags=["报送审核"])
READERS = SUBMITTERS  # the admins of the unit and of the units above it (the scope rule decides which)
YEAR = Query(ge=2000, le=2100, description="年份")


# ---- action plans


@router.get(
    "/action-plans",
    openapi_extra=access("unit_admin", units=["query:unit_id"]),
    summary="行动计划报送情况（各队伍：已报送、逾期、未报送、已退回、已通过）",
    response_model=ReportListing,
)
async def list_action_plans(
    reports: ReportsDep,
    year: int = YEAR,
    unit_id: str | None = Query(default=None, description="从该队伍起列出其下各队伍（默认本账号队伍或全省）"),
    status: ListedStatus | None = Query(default=None, description="只列出该状态的队伍"),
    identity: Identity = READERS,
) -> Any:
    return await reports.listing(identity, "action_plan", str(year), unit_id, status)


@router.get(
    "/action-plans/{unit_id}/{year}",
    openapi_extra=access("unit_admin", units=["path:unit_id"]),
    summary="查看行动计划全文（含历次版本与审核意见）",
    response_model=Report,
)
async def get_action_plan(reports: ReportsDep, unit_id: str, year: str, identity: Identity = READERS) -> Any:
    return await reports.read(identity, "action_plan", unit_id, str(parse_year(year)))


@router.post(
    "/action-plans/{unit_id}/{year}/versions",
    openapi_extra=access("unit_admin", units=["path:unit_id"]),
    status_code=201,
    summary="修改行动计划（提交新版本，审核通过前可修改）",
    response_model=Report,
)
async def amend_action_plan(
    reports: ReportsDep, unit_id: str, year: str, body: AmendActionPlanIn, identity: Identity = SUBMITTERS
) -> Any:
    plan = ActionPlan(unit_id, parse_year(year), body.text, [str(link) for link in body.attachment_links])
    return await reports.amend_action_plan(identity, plan, body.note)


@router.post(
    "/action-plans/{unit_id}/{year}/review",
    openapi_extra=access(units=["path:unit_id"]),  # the province office alone
    summary="审核行动计划（省级办公室：通过或退回并附意见）",
    response_model=Report,
)
async def review_action_plan(
    reports: ReportsDep, unit_id: str, year: str, body: ReviewIn, identity: Identity = REVIEWERS
) -> Any:
    decision = ReviewDecision(body.decision)
    period = str(parse_year(year))
    return await reports.review(identity, "action_plan", unit_id, period, decision, body.version, body.comment)


# ---- monthly reports


@router.get(
    "/monthly-reports",
    openapi_extra=access("unit_admin", units=["query:unit_id"]),
    summary="月报报送情况（各队伍：已报送、逾期、未报送、已退回、已通过）",
    response_model=ReportListing,
)
async def list_monthly_reports(
    reports: ReportsDep,
    month: str = Query(description="月份，YYYY-MM", pattern=r"^\d{4}-\d{2}$"),
    unit_id: str | None = Query(default=None, description="从该队伍起列出其下各队伍（默认本账号队伍或全省）"),
    status: ListedStatus | None = Query(default=None, description="只列出该状态的队伍"),
    identity: Identity = READERS,
) -> Any:
    parse_month(month)
    return await reports.listing(identity, "monthly", month, unit_id, status)


@router.get(
    "/monthly-reports/{unit_id}/{month}/submission",
    openapi_extra=access("unit_admin", units=["path:unit_id"]),
    summary="查看已报送的月报全文（含历次版本与审核意见）",
    response_model=Report,
)
async def get_monthly_submission(reports: ReportsDep, unit_id: str, month: str, identity: Identity = READERS) -> Any:
    parse_month(month)
    return await reports.read(identity, "monthly", unit_id, month)


@router.post(
    "/monthly-reports/{unit_id}/{month}/versions",
    openapi_extra=access("unit_admin", units=["path:unit_id"]),
    status_code=201,
    summary="修改月报（按当前统计数据重新生成新版本，审核通过前可修改）",
    response_model=Report,
)
async def amend_monthly_report(
    reports: ReportsDep, unit_id: str, month: str, body: AmendMonthlyIn, identity: Identity = SUBMITTERS
) -> Any:
    return await reports.amend_monthly(identity, unit_id, month, body.note)


@router.post(
    "/monthly-reports/{unit_id}/{month}/review",
    openapi_extra=access(units=["path:unit_id"]),  # the province office alone
    summary="审核月报（省级办公室：通过或退回并附意见）",
    response_model=Report,
)
async def review_monthly_report(
    reports: ReportsDep, unit_id: str, month: str, body: ReviewIn, identity: Identity = REVIEWERS
) -> Any:
    parse_month(month)
    decision = ReviewDecision(body.decision)
    return await reports.review(identity, "monthly", unit_id, month, decision, body.version, body.comment)
