"""Routes of the demand library (企业创新难题需求库)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.activities.domain import DemandStatus
from services.activities.usecases import demands
from shared.access import access
from shared.identity import Identity, IdentityDep
from shared.storage import MAX_PAGE_OFFSET

from .deps import ADMINS, StorageDep
from .schemas import DemandBody, DemandOut, DemandPage, DemandStatusBody

router = APIRouter(tags=["需求库"])


@router.post(
    "/demands",
    openapi_extra=access("unit_admin", units=["body:unit_id"]),
    status_code=201,
    summary="登记企业创新难题需求",
)
async def create_demand(storage: StorageDep, body: DemandBody, identity: Identity = ADMINS) -> DemandOut:
    new = demands.NewDemand(body.unit_id, body.enterprise, body.title, body.description)
    return DemandOut.of(await demands.record(storage, new, identity))


@router.get("/demands", openapi_extra=access("unit_admin", "system", units=["query:unit_id"]), summary="需求列表")
async def list_demands(
    storage: StorageDep,
    identity: IdentityDep,
    unit_id: str | None = None,
    status: DemandStatus | None = None,
    offset: Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET, description="跳过的条数")] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DemandPage:
    total, records = await demands.find(storage, unit_id, status, identity, offset, limit)
    return DemandPage(items=[DemandOut.of(r) for r in records], total=total, offset=offset, limit=limit)


@router.get("/demands/{demand_id}", openapi_extra=access("unit_admin", "system"), summary="需求详情")
async def get_demand(storage: StorageDep, demand_id: str, identity: IdentityDep) -> DemandOut:
    return DemandOut.of(await demands.get(storage, demand_id, identity))


@router.patch(
    "/demands/{demand_id}", openapi_extra=access("unit_admin"), summary="更新需求状态（待对接/已对接/已解决）"
)
async def change_demand(
    storage: StorageDep, demand_id: str, body: DemandStatusBody, identity: Identity = ADMINS
) -> DemandOut:
    return DemandOut.of(await demands.change_status(storage, demand_id, body.status, identity))
