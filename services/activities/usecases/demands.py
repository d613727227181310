"""Use cases of the enterprise innovation-demand library (企业创新难题需求库): record, list, read, change status."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.activities import domain
from services.activities.domain import ActivityValidationError, Demand, DemandNotFound, DemandStatus
from shared import clock
from shared.contracts.envelope import Envelope
from shared.contracts.events import DemandRecorded
from shared.identity import Identity

from .ports import DemandQuery, Record, Storage
from .records import DemandRecord, demand_record, envelope, plain, to_demand
from .scope import demand_units, require_admin_of


def demand_event(demand: Demand, recorded_at: datetime) -> Envelope[Any]:
    data = DemandRecorded(
        demand_id=demand.id,
        unit_id=demand.unit_id,
        enterprise=demand.enterprise,
        title=demand.title,
        status=demand.status.value,
        recorded_at=recorded_at,
    )
    return envelope(data, demand.id)


@dataclass(frozen=True)
class NewDemand:
    unit_id: str
    enterprise: str
    title: str
    description: str


async def record(storage: Storage, new: NewDemand, identity: Identity) -> DemandRecord:
    """A demand recorded by a unit the caller manages."""
    require_admin_of(await storage.reach(identity), new.unit_id)
    try:
        demand = Demand(
            id=str(uuid.uuid4()),
            unit_id=new.unit_id,
            enterprise=new.enterprise,
            title=new.title,
            description=new.description,
        )
    except ValidationError as exc:
        raise ActivityValidationError(domain.violations_from_validation_error(exc)) from exc
    now = clock.now()
    doc: Record = {"_id": demand.id, **plain(demand.model_dump(exclude={"id"})), "recorded_at": now, "updated_at": now}
    await storage.insert_demand(doc, [demand_event(demand, now)])
    return demand_record(doc)


async def find(
    storage: Storage, unit_id: str | None, status: DemandStatus | None, identity: Identity, offset: int, limit: int
) -> tuple[int, list[DemandRecord]]:
    """The demands the caller sees, in the order they were recorded."""
    visible = await demand_units(storage, await storage.reach(identity))
    units = visible
    if unit_id is not None:
        units = frozenset({unit_id}) if visible is None or unit_id in visible else frozenset()
    query = DemandQuery(unit_ids=units, status=None if status is None else status.value)
    total, docs = await storage.find_demands(query, offset, limit)
    return total, [demand_record(d) for d in docs]


async def get(storage: Storage, demand_id: str, identity: Identity) -> DemandRecord:
    doc = await storage.demand(demand_id)
    visible = await demand_units(storage, await storage.reach(identity))
    if doc is None or (visible is not None and doc["unit_id"] not in visible):
        raise DemandNotFound()
    return demand_record(doc)


async def change_status(storage: Storage, demand_id: str, status: DemandStatus, identity: Identity) -> DemandRecord:
    """Open → matched → solved (or back to open), by an admin of the demand's unit."""
    reach = await storage.reach(identity)

    def decide(doc: Record | None) -> tuple[Record, Sequence[Envelope[Any]]]:
        if doc is None:
            raise DemandNotFound()
        require_admin_of(reach, doc["unit_id"])
        changed, now = domain.change_demand_status(to_demand(doc), status), clock.now()
        return {"status": changed.status.value, "updated_at": now}, [demand_event(changed, now)]

    await storage.change_demand(demand_id, decide)
    doc = await storage.demand(demand_id)
    assert doc is not None
    return demand_record(doc)
