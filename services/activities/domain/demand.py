"""The enterprise innovation-demand library (企业创新难题需求库)."""

from __future__ import annotations

from pydantic import BaseModel

from .errors import InvalidDemandTransition
from .values import MODEL_CONFIG as _MODEL_CONFIG
from .values import DemandStatus, Id, LongText, Text


class Demand(BaseModel):
    """An enterprise's technical problem recorded by a unit; activities name the demands they address."""

    model_config = _MODEL_CONFIG

    id: Id
    unit_id: Id
    enterprise: Text
    title: Text
    description: LongText
    status: DemandStatus = DemandStatus.OPEN


_DEMAND_TRANSITIONS: dict[DemandStatus, frozenset[DemandStatus]] = {
    DemandStatus.OPEN: frozenset({DemandStatus.MATCHED, DemandStatus.SOLVED}),
    DemandStatus.MATCHED: frozenset({DemandStatus.OPEN, DemandStatus.SOLVED}),
    DemandStatus.SOLVED: frozenset(),
}


def change_demand_status(demand: Demand, requested: DemandStatus) -> Demand:
    if requested not in _DEMAND_TRANSITIONS[demand.status]:
        raise InvalidDemandTransition(demand.status, requested)
    return demand.model_copy(update={"status": requested})
