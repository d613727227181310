"""HTTP API of the reporting service: compliance, statistics, reports (with their events), exports, certificates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, HttpUrl
from pymongo.errors import DuplicateKeyError

from shared.calendar import action_plan_due, is_late, month_key, monthly_report_due
from shared.contracts.envelope import Envelope
from shared.contracts.events import ActionPlanSubmitted, MonthlyReportSubmitted
from shared.identity import Identity, IdentityDep, require_roles
from shared.problems import Problem
from shared.scope import covers, unit_path
from shared.service import ServiceDep
from shared.storage import Doc

from . import certificates, charts, exports, registry, views
from .domain import campaign_quarters
from .settings import ReportingSettings
from .store import CERTIFICATES, SOURCE, SUBMISSIONS, UNITS, all_units

router = APIRouter(tags=["统计与报送"])
submitters = require_roles("unit_admin", "province_admin")


def settings_of(request: Request) -> ReportingSettings:
    settings: ReportingSettings = request.app.state.service.settings
    return settings


def now_of(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def _as_of(request: Request, at: datetime | None) -> datetime:
    if at is None:
        return now_of(request)
    if at.tzinfo is None:
        raise Problem(422, "naive_datetime", "时间须带时区，例如 2026-05-01T00:00:00+08:00")
    return at


# ---------------------------------------------------------------- compliance and statistics


def json_response(body: Doc) -> Response:
    """``body`` as FastAPI would encode it (datetimes in ISO 8601), many times faster: a province's compliance
    table is 1,500 units × 21 rules (~6 MB), and FastAPI's generic encoder took longer than everything else
    together; orjson writes it in a few milliseconds."""
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/compliance", summary="队伍及其下级对照各项要求的达标情况（含差额）", response_model=Doc)
async def get_compliance(
    request: Request,
    service: ServiceDep,
    identity: IdentityDep,
    unit_id: str,
    year: int | None = Query(None, ge=2000, le=2100),
    quarter: int | None = Query(None, ge=1, le=4),
    at: datetime | None = Query(None, description="按此时刻评估（默认当前时间）"),
) -> Response:
    settings = settings_of(request)
    tree = await views.load_tree(service.db, unit_id, identity)
    body = await views.compliance(
        service.db,
        tree,
        year or settings.campaign_year,
        _as_of(request, at),
        quarter=quarter,
        monthly_report_day=settings.monthly_report_day,
        campaign_start_month=settings.campaign_start_month,
    )
    return json_response(body)


@router.get("/stats/units/{unit_id}", summary="队伍本级及汇总（含下级）统计")
async def get_unit_stats(
    request: Request,
    service: ServiceDep,
    identity: IdentityDep,
    unit_id: str,
    year: int | None = Query(None, ge=2000, le=2100),
) -> Doc:
    tree = await views.load_tree(service.db, unit_id, identity)
    return await views.unit_stats(service.db, tree, year or settings_of(request).campaign_year)


@router.get("/stats/volunteers/{volunteer_id}", summary="志愿者服务时长、活动次数与星级")
async def get_volunteer_stats(service: ServiceDep, identity: IdentityDep, volunteer_id: str) -> Doc:
    found = await views.volunteer_stats(service.db, volunteer_id)
    if found is None or not await _reaches_volunteer(service, identity, volunteer_id, found):
        raise Problem(404, "volunteer_not_found", f"未找到志愿者 {volunteer_id} 的服务记录")
    return found


async def _reaches_volunteer(service: Any, identity: Identity, volunteer_id: str, record: Doc) -> bool:
    """The shared rule (shared.scope): the province, the volunteer itself, an admin of one of its units or above."""
    if identity.role == "province_admin":
        return True
    if identity.role == "volunteer":
        return identity.volunteer_id == volunteer_id
    if identity.role != "unit_admin":
        return False  # a system key reads no person's record
    return views.covers_volunteer_units(identity, await all_units(service.db), record.get("unit_ids") or [])


# ---------------------------------------------------------------- reports (信息报送)


class ActionPlanIn(BaseModel):
    unit_id: str = Field(min_length=1, max_length=100)
    year: int = Field(ge=2000, le=2100)
    text: str = Field(min_length=1, max_length=50_000, description="行动计划正文")
    attachment_links: list[HttpUrl] = Field(
        default_factory=list, max_length=20, description="附件链接（附件1、附件2等）"
    )


async def _submittable_unit(service: Any, identity: Identity, unit_id: str) -> Doc:
    """The unit a submission is for: the caller's own or one below it (the shared rule, shared.scope)."""
    unit: Doc | None = await service.db[UNITS].find_one({"_id": unit_id})
    if identity.role == "unit_admin" and not covers(identity, unit_path(unit) if unit else [unit_id]):
        raise Problem(403, "forbidden_unit", "只能报送本队伍及下级队伍的材料")
    if unit is None or not unit.get("kind"):
        raise Problem(404, "unit_not_found", f"未找到队伍 {unit_id}（或其注册事件尚未到达）")
    return unit


async def _record(service: Any, doc: Doc, event: Envelope[Any], what_zh: str) -> None:
    try:
        await service.outbox.insert_one(SUBMISSIONS, doc, [event])
    except DuplicateKeyError as exc:
        raise Problem(409, "already_submitted", f"{what_zh}已报送，不能重复报送") from exc


def _submission_out(doc: Doc) -> Doc:
    return {k: doc[k] for k in ("_id", "kind", "unit_id", "period", "submitted_at", "submitted_by", "late", "due_at")}


@router.post("/action-plans", status_code=201, summary="报送行动计划（4月30日前）")
async def submit_action_plan(
    request: Request, service: ServiceDep, body: ActionPlanIn, identity: Identity = submitters
) -> Doc:
    await _submittable_unit(service, identity, body.unit_id)
    now = now_of(request)
    due = action_plan_due(body.year)
    late = is_late(now, due)
    doc: Doc = {
        "_id": f"action_plan:{body.unit_id}:{body.year}",
        "kind": "action_plan",
        "unit_id": body.unit_id,
        "period": str(body.year),
        "text": body.text,
        "attachment_links": [str(link) for link in body.attachment_links],
        "submitted_at": now,
        "submitted_by": identity.subject,
        "submitted_by_name": identity.display_name,
        "late": late,
        "due_at": due,
    }
    event = ActionPlanSubmitted(
        unit_id=body.unit_id, year=body.year, submitted_at=now, submitted_by=identity.subject, late=late
    )
    await _record(service, doc, Envelope.new(event, source=SOURCE, subject=body.unit_id), f"{body.year}年行动计划")
    return _submission_out(doc)


@router.get("/monthly-reports/{unit_id}/{month}", summary="月报（由统计数据生成，含下级汇总）", response_model=Doc)
async def get_monthly_report(
    request: Request, service: ServiceDep, identity: IdentityDep, unit_id: str, month: str
) -> Response:
    views.parse_month(month)
    tree = await views.load_tree(service.db, unit_id, identity)
    return json_response(await views.monthly_report(service.db, tree, month, settings_of(request).monthly_report_day))


@router.post("/monthly-reports/{unit_id}/{month}/submit", status_code=201, summary="报送月报")
async def submit_monthly_report(
    request: Request, service: ServiceDep, unit_id: str, month: str, identity: Identity = submitters
) -> Doc:
    year, mon = views.parse_month(month)
    await _submittable_unit(service, identity, unit_id)
    now = now_of(request)
    if month > month_key(now):
        raise Problem(422, "future_month", f"{month} 尚未开始，不能报送月报")
    tree = await views.load_tree(service.db, unit_id, identity)
    report = await views.monthly_report(service.db, tree, month, settings_of(request).monthly_report_day)
    due = monthly_report_due(year, mon, settings_of(request).monthly_report_day)
    late = is_late(now, due)
    report.pop("submission", None)
    doc: Doc = {
        "_id": f"monthly:{unit_id}:{month}",
        "kind": "monthly",
        "unit_id": unit_id,
        "period": month,
        "report": report,
        "submitted_at": now,
        "submitted_by": identity.subject,
        "submitted_by_name": identity.display_name,
        "late": late,
        "due_at": due,
    }
    event = MonthlyReportSubmitted(
        unit_id=unit_id, month=month, submitted_at=now, submitted_by=identity.subject, late=late
    )
    await _record(service, doc, Envelope.new(event, source=SOURCE, subject=unit_id), f"{month}月报")
    return _submission_out(doc)


def xlsx_response(content: bytes, filename: str) -> Response:
    return Response(
        content,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )


# ---------------------------------------------------------------- exports


@router.get("/exports/compliance.xlsx", summary="导出达标情况表（每个层级一个工作表）")
async def export_compliance(
    request: Request,
    service: ServiceDep,
    identity: IdentityDep,
    unit_id: str | None = None,
    year: int | None = Query(None, ge=2000, le=2100),
    quarter: int | None = Query(None, ge=1, le=4),
    at: datetime | None = None,
) -> Response:
    settings = settings_of(request)
    tree = await views.load_tree(service.db, unit_id, identity)
    body = await views.compliance(
        service.db,
        tree,
        year or settings.campaign_year,
        _as_of(request, at),
        quarter=quarter,
        monthly_report_day=settings.monthly_report_day,
        campaign_start_month=settings.campaign_start_month,
    )
    name = f"compliance-{tree.root['_id']}-{year or settings.campaign_year}.xlsx"
    return xlsx_response(exports.compliance_xlsx(body), name)


@router.get("/exports/monthly/{unit_id}/{month}.xlsx", summary="导出月报（含下级汇总，每个层级一个工作表）")
async def export_monthly(
    request: Request, service: ServiceDep, identity: IdentityDep, unit_id: str, month: str
) -> Response:
    views.parse_month(month)
    tree = await views.load_tree(service.db, unit_id, identity)
    report = await views.monthly_report(service.db, tree, month, settings_of(request).monthly_report_day)
    return xlsx_response(exports.monthly_xlsx(report), f"monthly-{unit_id}-{month}.xlsx")


# ---------------------------------------------------------------- certificates (志愿服务记录证明)


def _secret(request: Request) -> str:
    return settings_of(request).certificate_secret.get_secret_value()


@router.get("/certificates/volunteers/{volunteer_id}.pdf", summary="出具志愿服务记录证明（PDF）")
async def issue_certificate(
    request: Request, service: ServiceDep, identity: IdentityDep, volunteer_id: str, unit_id: str | None = None
) -> Response:
    if identity.role == "system":  # issuing writes a certificate: a read-only key may not
        raise Problem(403, "read_only", "系统账号只能读取数据，不能出具证明")
    record = await views.volunteer_stats(service.db, volunteer_id)
    if record is None or not await _reaches_volunteer(service, identity, volunteer_id, record):
        raise Problem(404, "volunteer_not_found", f"未找到志愿者 {volunteer_id} 的服务记录")
    units = await all_units(service.db)
    member_of = [u for u in record["unit_ids"] if u in units]
    province = next((u for u, d in units.items() if d["kind"] == "province_corps"), None)
    issuer_id = unit_id or (identity.unit_id if identity.role == "unit_admin" else None)
    issuer_id = issuer_id or (member_of[0] if member_of else province)
    if issuer_id is None or issuer_id not in units:
        raise Problem(422, "no_issuing_unit", "无法确定出具单位，请指定 unit_id")
    if not _may_issue_for(identity, units, issuer_id, member_of):
        raise Problem(403, "forbidden_unit", "只能以本队伍、下级队伍或本人所在队伍的名义出具证明")
    masked = await registry.masked_id_number(
        settings_of(request), identity, volunteer_id, getattr(request.app.state, "registry_transport", None)
    )
    now = now_of(request)
    cert: Doc = {
        "_id": certificates.new_number(_secret(request), now),
        "volunteer_id": volunteer_id,
        "platform_number": record["platform_number"],
        "id_number_masked": masked,
        "display_name": record["display_name"],
        "hours": record["hours"],
        "activities": record["activities"],
        "star_level": record["star_level"],
        "issuing_unit_id": issuer_id,
        "issuing_unit_name": units[issuer_id].get("name"),
        "issued_at": now,
        "issued_by": identity.subject,
    }
    await service.db[CERTIFICATES].insert_one(cert)
    return Response(
        certificates.render_pdf(cert),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f"attachment; filename=certificate-{cert['_id']}.pdf",
            "X-Certificate-Number": str(cert["_id"]),
        },
    )


def _may_issue_for(identity: Identity, units: dict[str, Doc], issuer_id: str, member_of: list[str]) -> bool:
    """An admin issues in the name of a unit in its scope, a volunteer in the name of one of its own units."""
    if identity.role == "province_admin":
        return True
    if identity.role == "volunteer":
        return issuer_id in member_of or (not member_of and units[issuer_id].get("kind") == "province_corps")
    return covers(identity, unit_path(units[issuer_id]))


@router.get("/certificates/{number}", summary="查验志愿服务记录证明（凭证明编号，无需登录）")
async def verify_certificate(request: Request, service: ServiceDep, number: str) -> Doc:
    invalid = Problem(404, "certificate_invalid", "证明编号无效：未找到该证明，或编号已被篡改")
    if not certificates.number_is_authentic(_secret(request), number):
        raise invalid
    cert = await service.db[CERTIFICATES].find_one({"_id": number})
    if cert is None:
        raise invalid
    return {
        "valid": True,
        "number": number,
        **{
            k: cert.get(k)
            for k in ("platform_number", "id_number_masked", "display_name", "hours", "activities", "star_level")
        },
        "issuing_unit_name": cert.get("issuing_unit_name"),
        "issued_at": cert.get("issued_at"),
    }


# ---------------------------------------------------------------- charts


def svg_response(svg: str) -> Response:
    return Response(svg, media_type="image/svg+xml; charset=utf-8")


@router.get("/charts/headcount.svg", summary="各市支队注册人数与首批最低人数对比图")
async def headcount_chart(service: ServiceDep, identity: IdentityDep, unit_id: str | None = None) -> Response:
    tree = await views.load_tree(service.db, unit_id, identity)
    rows = [
        {"name": u.get("name"), "volunteers": max(0, int(u.get("volunteers") or 0)), "minimum": 300}
        for u in tree.members
        if u["kind"] == "city_detachment"
    ]
    return svg_response(charts.headcount(sorted(rows, key=lambda r: str(r["name"]))))


@router.get("/charts/quota-heatmap.svg", summary="各队伍季度活动热力图")
async def quota_heatmap(
    request: Request,
    service: ServiceDep,
    identity: IdentityDep,
    unit_id: str | None = None,
    year: int | None = Query(None, ge=2000, le=2100),
    limit: int = Query(200, ge=1, le=2000),
) -> Response:
    settings = settings_of(request)
    year = year or settings.campaign_year
    tree = await views.load_tree(service.db, unit_id, identity)
    members = tree.members[:limit]
    stats = await views.year_figures(service.db, views.Tree(tree.units, tree.root, members, tree.below), year)
    rows = [
        {"name": u.get("name"), "quarters": (stats.get(str(u["_id"])) or {}).get("quarters") or {}} for u in members
    ]
    return svg_response(charts.quota_heatmap(rows, list(campaign_quarters(settings.campaign_start_month)), year))
