"""Storage of the reporting service, shaped for FerretDB v1: every document is found by ``_id`` alone.

Projection collections (rebuilt by ``python -m services.reporting.replay``):

- ``units``: _id = unit id; the latest snapshot (newer ``version`` wins) plus ``volunteers`` (active members,
  kept by ``$inc``), ``new_volunteers.<YYYY-MM>`` (who joined it that month) and ``contact_given_at`` (time of
  the first snapshot that named a contact person).
- ``unit_stats``: _id = f"{unit}:{year}"; activities, per quarter / line of work / theme, hours (also per quarter:
  ``quarter_hours_c``), people served,
  and the unit's submissions (action plan, monthly reports) of that campaign year.
- ``volunteer_stats``: _id = volunteer id; platform number, name, status, units (membership).
- ``volunteer_hours``: _id = bucket (the volunteer id hashed, see ``projections.hours_bucket``); per volunteer
  ``v.<id>`` = {h: hours in hundredths, a: activities, n: name from an activity, until the registration arrives}.
- ``month_stats``: _id = f"{unit}:{YYYY-MM}"; activities, hours, people served, what was carried out (``done``).

Hours are kept as integer hundredths (``hours_c``) so sums are exact and a replay in another order is identical.
Kept by this service, not rebuilt: ``submissions`` (outbox aggregate of reports) and ``certificates``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.storage import Doc, Indexes

UNITS = "units"
UNIT_STATS = "unit_stats"
VOLUNTEER_STATS = "volunteer_stats"
MONTH_STATS = "month_stats"
VOLUNTEER_HOURS = "volunteer_hours"
PROJECTIONS: tuple[str, ...] = (UNITS, UNIT_STATS, VOLUNTEER_STATS, MONTH_STATS, VOLUNTEER_HOURS)
SUBMISSIONS = "submissions"
CERTIFICATES = "certificates"
SOURCE = "/stvs/reporting"

HIDDEN = {"_applied": 0}
# Below this many ids, fetch them one by one (pushed down); above, one scan of the collection is cheaper.
FETCH_ONE_BY_ONE = 64
FETCH_CONCURRENCY = 32


def indexes() -> Indexes:
    """Every lookup is by ``_id``: no secondary index (the outbox adds its own on ``submissions``)."""
    return Indexes()


def hours(hours_c: Any) -> float:
    """Stored hundredths of an hour → hours."""
    return round(int(hours_c or 0) / 100, 2)


def centi(value: float) -> int:
    return round(value * 100)


async def all_units(db: AsyncDatabase[Doc]) -> dict[str, Doc]:
    """Every unit the projection knows a snapshot of (1,500 in a province: one scan)."""
    out: dict[str, Doc] = {}
    async for doc in db[UNITS].find({}, HIDDEN):
        if doc.get("kind"):
            out[str(doc["_id"])] = doc
    return out


def subtree(units: Mapping[str, Doc], root: str) -> list[Doc]:
    """The unit and every unit below it (from the snapshots' ancestors), root first, then by depth and name."""
    found = [u for u in units.values() if u["_id"] == root or root in (u.get("ancestors") or [])]
    return sorted(found, key=lambda u: (u["_id"] != root, len(u.get("ancestors") or []), u.get("name", "")))


def descendants_index(units: Iterable[Doc]) -> dict[str, list[str]]:
    """unit id → ids of the unit and all its descendants."""
    out: dict[str, list[str]] = {}
    for unit in units:
        uid = str(unit["_id"])
        out.setdefault(uid, []).append(uid)
        for ancestor in unit.get("ancestors") or []:
            out.setdefault(str(ancestor), []).append(uid)
    return out


async def docs_by_ids(collection: AsyncCollection[Doc], ids: Sequence[str], *, sparse: bool = False) -> dict[str, Doc]:
    """Documents by ``_id``: one by one (pushed down) for a few, one scan for many.

    ``sparse``: the ids are a small part of the collection (e.g. one month of ``month_stats``, a twelfth of it), so
    fetching them one by one beats a scan even for a whole province.
    """
    wanted = set(ids)
    if len(wanted) <= FETCH_ONE_BY_ONE or (sparse and FETCH_ONE_BY_ONE > 0):
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def one(doc_id: str) -> Doc | None:
            async with gate:
                return await collection.find_one({"_id": doc_id}, HIDDEN)

        found = await asyncio.gather(*(one(i) for i in wanted))
        return {str(d["_id"]): d for d in found if d is not None}
    out: dict[str, Doc] = {}
    async for doc in collection.find({}, HIDDEN):
        if doc["_id"] in wanted:
            out[str(doc["_id"])] = doc
    return out


def add_into(total: dict[str, Any], doc: Mapping[str, Any], fields: Iterable[str]) -> None:
    """Sum numeric fields (and dicts of numbers, e.g. per quarter) of ``doc`` into ``total``."""
    for name in fields:
        value = doc.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            total[name] = total.get(name, 0) + value
        elif isinstance(value, Mapping):
            bucket = total.setdefault(name, {})
            for key, number in value.items():
                if isinstance(number, int | float) and not isinstance(number, bool):
                    bucket[key] = bucket.get(key, 0) + number
