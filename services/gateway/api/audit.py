"""The audit log's listing (province admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.usecases import AuditQuery

from .deps import CallerDep, UseCasesDep
from .schemas import AuditEntry, AuditPage

PREFIX = "/api/v1"
router = APIRouter(prefix=f"{PREFIX}/audit", tags=["审计日志"])


@router.get(
    "",
    summary="审计日志：管理员写操作与个人信息的查看、导出（仅省级管理员；新记录在前）",
    response_model=AuditPage,
)
async def list_audit(
    caller: CallerDep,
    uc: UseCasesDep,
    actor: Annotated[str | None, Query(max_length=64, description="账号 id 或用户名")] = None,
    unit_id: Annotated[str | None, Query(max_length=64, description="涉及的队伍（请求所指或操作者所属）")] = None,
    since: Annotated[datetime | None, Query(description="起（含），带时区")] = None,
    until: Annotated[datetime | None, Query(description="止（不含），带时区")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="上一页的 next_cursor")] = None,
) -> AuditPage:
    query = AuditQuery(actor, unit_id, since, until, cursor)
    docs, next_cursor = await uc.audit.page(caller.identity, query, limit)
    items = [AuditEntry.model_validate({**d, "id": d["_id"]}) for d in docs]
    return AuditPage(items=items, next_cursor=next_cursor)
