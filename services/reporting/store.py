"""Storage of the reporting service: read models kept by atomic upserts, read by indexed queries.

Projection collections (rebuilt by ``python -m services.reporting.replay``):

- ``units``: _id = unit id; the latest snapshot (newer ``version`` wins) plus ``volunteers`` (active members,
  kept by ``$inc``), ``new_volunteers.<YYYY-MM>`` (who joined it that month) and ``contact_given_at`` (time of
  the first snapshot that named a contact person). A subtree is found by ``ancestors`` (indexed).
- ``unit_stats``: _id = f"{unit}:{year}", with ``unit_id`` and ``year`` (indexed together); activities, per
  quarter / line of work / theme, hours (also per quarter: ``quarter_hours_c``), people served, and the unit's
  submissions (action plan, monthly reports) of that campaign year.
- ``volunteer_stats``: _id = volunteer id; platform number, name, status, units (membership).
- ``volunteer_hours``: _id = bucket (the volunteer id hashed, see ``projections.hours_bucket``); per volunteer
  ``v.<id>`` = {h: hours in hundredths, a: activities, n: name from an activity, until the registration arrives}.
  Buckets, not a document per volunteer: a poll of 5,000 activities (60,000 participations) is then about a
  thousand writes, not 60,000.
- ``month_stats``: _id = f"{unit}:{YYYY-MM}", with ``unit_id`` and ``month`` (indexed together); activities, hours,
  people served, what was carried out (``done``).
- ``applied_events``: _id = id of an activity event applied (written in the same transaction as its effects),
  ``at``; a TTL index removes it after :data:`APPLIED_RETENTION`.

Hours are kept as integer hundredths (``hours_c``) so sums are exact and a replay in another order is identical.
Kept by this service, not rebuilt: ``submissions`` (outbox aggregate of reports) and ``certificates``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.storage import Doc, Indexes

UNITS = "units"
UNIT_STATS = "unit_stats"
VOLUNTEER_STATS = "volunteer_stats"
MONTH_STATS = "month_stats"
VOLUNTEER_HOURS = "volunteer_hours"
APPLIED = "applied_events"
PROJECTIONS: tuple[str, ...] = (UNITS, UNIT_STATS, VOLUNTEER_STATS, MONTH_STATS, VOLUNTEER_HOURS)
# Changing it needs a replay (the bucket of a volunteer is part of the stored layout).
VOLUNTEER_BUCKETS = 1024
SUBMISSIONS = "submissions"
CERTIFICATES = "certificates"
SOURCE = "/stvs/reporting"

# How long an applied activity event's id is remembered: longer than any copy of it can come back (a dead letter
# stays 30 days on its topic and can be re-published until then; a redelivery or an outbox's second copy comes
# within minutes). A replay drops the projections, these ids included, and starts from the first event.
APPLIED_RETENTION = timedelta(days=35)


def indexes() -> Indexes:
    """The reads of the views (subtrees, a year's or a month's figures of many units) and the TTL of applied ids."""
    found = Indexes()
    found.add(UNITS, "ancestors")
    found.add(UNITS, "kind")
    found.add(UNIT_STATS, "year", "unit_id")
    found.add(MONTH_STATS, "month", "unit_id")
    found.add(APPLIED, "at", expire_after_s=int(APPLIED_RETENTION.total_seconds()))
    return found


def hours(hours_c: Any) -> float:
    """Stored hundredths of an hour → hours."""
    return round(int(hours_c or 0) / 100, 2)


def centi(value: float) -> int:
    return round(value * 100)


async def all_units(db: AsyncDatabase[Doc]) -> dict[str, Doc]:
    """Every unit the projection knows a snapshot of (1,500 in a province)."""
    return {str(d["_id"]): d async for d in db[UNITS].find({"kind": {"$exists": True}})}


async def subtree_units(db: AsyncDatabase[Doc], root: str) -> dict[str, Doc]:
    """The unit and every unit below it (by ``_id`` and the indexed ``ancestors``), those with a snapshot."""
    query = {"$or": [{"_id": root}, {"ancestors": root}]}
    return {str(d["_id"]): d async for d in db[UNITS].find(query) if d.get("kind")}


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


async def figures_of(
    collection: AsyncCollection[Doc], key: str, value: Any, unit_ids: Sequence[str] | None
) -> dict[str, Doc]:
    """The documents of these units (None: of every unit) for one year or month (``key``: ``year`` / ``month``),
    by unit id: one indexed query."""
    query: Doc = {key: value} if unit_ids is None else {key: value, "unit_id": {"$in": list(unit_ids)}}
    return {str(d["unit_id"]): d async for d in collection.find(query)}


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
