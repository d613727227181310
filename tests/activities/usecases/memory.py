"""An in-memory implementation of the activities' storage port (:class:`services.activities.usecases.ports.Storage`),
for the use-case tests: the same contract — claims held one at a time, a commit written only while its premise holds,
events announced when a change is finished — without a database or Kafka.

``before_commit`` lets a test change the activity between a decision and its commit, as another replica would.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from services.activities.domain import SignUpStatus
from services.activities.usecases import search
from services.activities.usecases.ports import (
    ActivityQuery,
    Change,
    Claim,
    Committed,
    DecideDemand,
    DemandQuery,
    Premise,
    Record,
)
from shared.aggregates import VERSION, Contended
from shared.contracts.envelope import Envelope
from shared.identity import Identity
from shared.scope import Reach

RUNNING = ("published", "ongoing")


def dotted(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def add_dotted(record: Record, path: str, delta: int) -> None:
    *parents, last = path.split(".")
    target = record
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = int(target.get(last) or 0) + delta


def count(record: Mapping[str, Any], status: SignUpStatus) -> int:
    return int((record.get("counts") or {}).get(status.value, 0))


class MemoryStorage:
    """Activities, sign-ups, the local copies and demands in dictionaries; ``events`` in the order announced."""

    def __init__(self) -> None:
        self.activities: dict[str, Record] = {}
        self.signups: dict[tuple[str, str], Record] = {}
        self.claims: dict[tuple[str, str], str] = {}
        self.copies: dict[str, Record] = {}
        self.demands: dict[str, Record] = {}
        self.units: dict[str, list[str]] = {}  # unit → its ancestors
        self.cities: dict[str, str] = {}  # unit → its city
        self.terms: dict[str, list[str]] = {}  # activity → its keyword terms
        self.migrations: set[str] = set()
        self.events: list[Envelope[Any]] = []
        self.commits = 0
        self.before_commit: Callable[[Record], None] | None = None

    # -- activities and demands
    async def activity(self, activity_id: str, *, pending: bool = True) -> Record | None:
        return copy.deepcopy(self.activities.get(activity_id))

    async def insert_activity(self, record: Record) -> None:
        self.activities[record["_id"]] = copy.deepcopy(record)

    def holds(self, activity_id: str, premise: Premise) -> bool:
        record = self.activities.get(activity_id)
        if record is None or any(dotted(record, k) != v for k, v in premise.unchanged.items()):
            return False
        confirmed, waitlisted = count(record, SignUpStatus.CONFIRMED), count(record, SignUpStatus.WAITLISTED)
        return premise.places is None or premise.places.holds(int(record["capacity"]), confirmed, waitlisted)

    async def save_activity(
        self, activity_id: str, changes: Mapping[str, Any], events: Sequence[Envelope[Any]], premise: Premise
    ) -> bool:
        if not self.holds(activity_id, premise):
            return False
        record = self.activities[activity_id]
        record.update(copy.deepcopy(dict(changes)))
        record[VERSION] = int(record.get(VERSION) or 0) + 1
        self.events.extend(events)
        return True

    async def find_activities(self, query: ActivityQuery, offset: int, limit: int) -> tuple[int, list[Record]]:
        found = sorted(
            (r for r in self.activities.values() if search.matches(query, r)),
            key=lambda r: search.sort_key(query, r),
            reverse=query.sort[1] < 0,
        )
        return len(found), copy.deepcopy(found[offset : offset + limit])

    async def save_terms(self, activity_id: str, terms: Sequence[str], *, only_new: bool = False) -> None:
        if not (only_new and activity_id in self.terms):
            self.terms[activity_id] = list(terms)

    async def activities_after(self, after: str | None, limit: int) -> list[Record]:
        ids = sorted(a for a in self.activities if after is None or a > after)[:limit]
        return [copy.deepcopy(self.activities[a]) for a in ids]

    async def migrated(self, name: str) -> bool:
        return name in self.migrations

    async def mark_migrated(self, name: str) -> None:
        self.migrations.add(name)

    async def with_terms(self, terms: Sequence[str]) -> frozenset[str]:
        return frozenset(a for a, have in self.terms.items() if set(terms) <= set(have))

    async def units_below(self, unit_id: str) -> frozenset[str]:
        return frozenset({unit_id} | {u for u, ancestors in self.units.items() if unit_id in ancestors})

    async def city_units(self, city: str) -> frozenset[str]:
        return frozenset(u for u, c in self.cities.items() if c == city)

    async def signed_up(self, volunteer_id: str, activity_ids: Sequence[str]) -> frozenset[str]:
        return frozenset(
            a
            for a in activity_ids
            if SignUpStatus((self.signups.get((a, volunteer_id)) or {}).get("status", "cancelled")).is_active
        )

    async def demand(self, demand_id: str) -> Record | None:
        return copy.deepcopy(self.demands.get(demand_id))

    async def insert_demand(self, record: Record, events: Sequence[Envelope[Any]]) -> None:
        self.demands[record["_id"]] = copy.deepcopy(record)
        self.events.extend(events)

    async def change_demand(self, demand_id: str, decide: DecideDemand) -> None:
        changes, events = decide(copy.deepcopy(self.demands.get(demand_id)))
        self.demands[demand_id].update(changes)
        self.events.extend(events)

    async def find_demands(self, query: DemandQuery, offset: int, limit: int) -> tuple[int, list[Record]]:
        found = [
            d
            for d in sorted(self.demands.values(), key=lambda d: (d["recorded_at"], d["_id"]))
            if (query.unit_ids is None or d["unit_id"] in query.unit_ids)
            and (query.status is None or d["status"] == query.status)
        ]
        return len(found), copy.deepcopy(found[offset : offset + limit])

    # -- the local copies
    async def reach(self, identity: Identity) -> Reach:
        if identity.role in ("province_admin", "system"):
            return Reach(identity, None)
        if identity.role != "unit_admin" or not identity.unit_id:
            return Reach(identity, frozenset())
        own = identity.unit_id
        below = {u for u, ancestors in self.units.items() if own in ancestors}
        return Reach(identity, frozenset(below | {own}))

    async def unit_ancestors(self, unit_id: str) -> list[str]:
        return list(self.units.get(unit_id, []))

    async def volunteers(self, volunteer_ids: Sequence[str]) -> dict[str, Record]:
        return {v: copy.deepcopy(self.copies[v]) for v in volunteer_ids if v in self.copies}

    async def apply_volunteer(self, volunteer_id: str, version: int, change: Mapping[str, Any]) -> bool:
        copy_ = self.copies.setdefault(volunteer_id, {"_id": volunteer_id})
        if int(copy_.get("version") or 0) >= version:
            return False
        copy_.update({k: v for k, v in change.items() if k not in ("join", "leave")}, version=version)
        units = list(copy_.get("unit_ids") or [])
        if "join" in change and change["join"] not in units:
            units.append(change["join"])
        if "leave" in change:
            units = [u for u in units if u != change["leave"]]
        copy_["unit_ids"] = units
        return True

    # -- sign-ups: claim → commit → finish
    def _claim(self, activity_id: str, volunteer_id: str) -> Claim | None:
        key = (activity_id, volunteer_id)
        if key in self.claims:
            return None
        token = uuid.uuid4().hex
        self.claims[key] = token
        doc = self.signups.get(key) or {"activity_id": activity_id, "volunteer_id": volunteer_id}
        return Claim(activity_id, volunteer_id, token, datetime.now(UTC), copy.deepcopy(doc))

    async def claim(self, activity_id: str, volunteer_id: str) -> Claim:
        for _ in range(1_000):  # another task holds it: it finishes within a few turns of the loop
            got = self._claim(activity_id, volunteer_id)
            if got is not None:
                return got
            await asyncio.sleep(0)
        raise Contended("signups", f"{activity_id}|{volunteer_id}", 1_000)

    async def release(self, claim: Claim) -> None:
        key = (claim.activity_id, claim.volunteer_id)
        if self.claims.get(key) == claim.token:
            del self.claims[key]

    async def claim_waitlist_head(self, activity: Record) -> Claim | Literal["none", "retry"]:
        if count(activity, SignUpStatus.WAITLISTED) == 0:
            return "none"
        waiting = [r for r in await self.roster(activity) if r["status"] == SignUpStatus.WAITLISTED.value]
        if not waiting:
            return "retry"
        got = self._claim(activity["_id"], waiting[0]["volunteer_id"])
        return "retry" if got is None else got

    async def commit(
        self,
        activity_id: str,
        changes: Sequence[Change],
        *,
        premise: Premise,
        inc: Mapping[str, int] | None = None,
        sets: Mapping[str, Any] | None = None,
    ) -> Committed | None:
        if self.before_commit is not None and activity_id in self.activities:
            hook, self.before_commit = self.before_commit, None
            hook(self.activities[activity_id])
        if not self.holds(activity_id, premise):
            return None
        self.commits += 1
        record = self.activities[activity_id]
        record["roster_v"] = int(record.get("roster_v") or 0) + 1
        for path, delta in (inc or {}).items():
            add_dotted(record, path, delta)
        record.update(copy.deepcopy(dict(sets or {})))
        committed = Committed(copy.deepcopy(record))
        for change in changes:
            fields = copy.deepcopy(dict(change.fields))
            if change.sequence:
                record["next_seq"] = int(record.get("next_seq") or 0) + 1
                fields["sequence"] = record["next_seq"]
            key = (activity_id, change.claim.volunteer_id)
            self.signups[key] = {**self.signups.get(key, change.claim.doc), **fields}
            committed.fields[change.claim.volunteer_id] = fields
        committed.doc["next_seq"] = record.get("next_seq")
        return committed

    async def finish(self, committed: Committed, changes: Sequence[Change]) -> None:
        for change in changes:
            self.events.extend(change.events)
            await self.release(change.claim)

    async def roster(self, activity: Record) -> list[Record]:
        entries = [r for (a, _), r in self.signups.items() if a == activity["_id"] and "status" in r]
        return copy.deepcopy(sorted(entries, key=lambda r: int(r["sequence"])))

    async def signup(self, activity: Record, volunteer_id: str) -> Record | None:
        return copy.deepcopy(self.signups.get((activity["_id"], volunteer_id)))

    # -- repair
    async def repair_turn(self) -> bool:
        return True

    async def settle_stale_claims(self) -> int:
        return 0

    async def activities_owing_places(self) -> list[str]:
        return [
            r["_id"]
            for r in self.activities.values()
            if r["status"] in RUNNING
            and count(r, SignUpStatus.WAITLISTED) > 0
            and count(r, SignUpStatus.CONFIRMED) < int(r["capacity"])
        ]
