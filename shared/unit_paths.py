"""The units' paths kept beside a service's own data, and the caller's reach read from them.

Activities and notifier keep ``scope_units`` (``_id``, ``ancestors``, ``version``) from the registry's unit events
(:func:`attach_unit_paths`); :func:`reach` reads a caller's subtree from such a copy (or from any collection of
units with ``_id`` and ``ancestors``) in one indexed query and applies the rule of :mod:`shared.scope`.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from shared.contracts.envelope import Envelope
from shared.contracts.events import UNITS, UnitRegistered, UnitUpdated
from shared.scope import Caller, Reach, subtree_reach
from shared.service import Service

SCOPE_UNITS = "scope_units"  # the copy kept by attach_unit_paths


async def reach(identity: Caller, units: Any, *, system_reads: bool = False) -> Reach:
    """The caller's :class:`Reach`, its subtree read from ``units`` (a collection with ``_id`` / ``ancestors``;
    one indexed query, only for a unit admin)."""
    if identity.role != "unit_admin" or not identity.unit_id:
        return subtree_reach(identity, (), system_reads=system_reads)
    own = identity.unit_id
    found = [str(d["_id"]) async for d in units.find({"$or": [{"_id": own}, {"ancestors": own}]}, {"_id": 1})]
    return subtree_reach(identity, found, system_reads=system_reads)


def attach_unit_paths(service: Service) -> None:
    """A consumer ``scope-units`` keeping ``scope_units`` (``_id``, ``ancestors``, ``city``, ``version``) from the
    registry's unit events, newest version wins (one conditional upsert per event), for :func:`reach`."""
    consumer = service.consumer("scope-units", [UNITS])
    collection = service.db[SCOPE_UNITS]

    @consumer.on(UnitRegistered, UnitUpdated)
    async def on_unit(env: Envelope[Any]) -> None:
        d = env.data
        older = {"$or": [{"version": {"$lt": d.version}}, {"version": {"$exists": False}}]}
        fields = {"ancestors": list(d.ancestors), "city": d.city, "version": d.version}
        try:
            await collection.update_one({"_id": d.unit_id, **older}, {"$set": fields}, upsert=True)
        except DuplicateKeyError:
            return  # the copy is as new or newer
