"""Statistics: a unit's year (own and with its subtree), a volunteer's hours and stars."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from shared.access import access
from shared.identity import IdentityDep

from .deps import QueriesDep
from .schemas import UnitStats, VolunteerStats

router = APIRouter(tags=["统计与报送"])


@router.get(
    "/stats/units/{unit_id}",
    openapi_extra=access("unit_admin", "system", units=["path:unit_id"]),
    summary="队伍本级及汇总（含下级）统计",
    response_model=UnitStats,
)
async def get_unit_stats(
    queries: QueriesDep, identity: IdentityDep, unit_id: str, year: int | None = Query(None, ge=2000, le=2100)
) -> Any:
    return await queries.unit_stats(identity, unit_id, year)


@router.get(
    "/stats/volunteers/{volunteer_id}",
    openapi_extra=access("unit_admin", "volunteer:self", volunteers=["path:volunteer_id"]),
    summary="志愿者服务时长、活动次数与星级",
    response_model=VolunteerStats,
)
async def get_volunteer_stats(queries: QueriesDep, identity: IdentityDep, volunteer_id: str) -> Any:
    return await queries.volunteer_record(identity, volunteer_id)
