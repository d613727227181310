"""In-memory implementations of the reporting service's ports (test doubles of its ports, not of MongoDB): the use
cases run on them without Kafka or a database, in milliseconds."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from services.reporting.domain.projection import (
    MONTH_STATS,
    UNIT_STATS,
    UNITS,
    VOLUNTEER_HOURS,
    VOLUNTEER_STATS,
    Decision,
    Membership,
    Record,
    UnitVersion,
)
from services.reporting.usecases.ports import AlreadyRecorded, ProjectionWrite
from services.reporting.usecases.queries import Campaign, Queries
from services.reporting.usecases.reports import Reports
from services.reporting.usecases.submissions import Submit
from shared.contracts.envelope import Envelope
from shared.identity import Identity


def _parent(doc: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, last = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    return doc, last


class _Records:
    """Every record by kind and id, and the ids of the events applied."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Record]] = {}
        self.applied: set[str] = set()


class _Write:
    """One chunk's transaction over a copy of the records (kept only if the chunk's work succeeds)."""

    def __init__(self, state: _Records) -> None:
        self.state = state

    async def applied(self, event_ids: Sequence[str]) -> set[str]:
        return {i for i in event_ids if i in self.state.applied}

    async def memberships(self, volunteer_ids: Sequence[str]) -> dict[str, Membership]:
        found = self.state.records.get(VOLUNTEER_STATS, {})
        return {
            vid: Membership(
                version=int(doc.get("membership_version") or 0),
                status=str(doc.get("status") or "active"),
                unit_ids=set(doc.get("unit_ids") or []),
                counted=set(doc.get("counted_units") or []),
            )
            for vid, doc in found.items()
            if vid in volunteer_ids
        }

    async def unit_versions(self, unit_ids: Sequence[str]) -> dict[str, UnitVersion]:
        found = self.state.records.get(UNITS, {})
        return {
            uid: UnitVersion(int(doc.get("version") or 0), bool(doc.get("contact_given_at")))
            for uid, doc in found.items()
            if uid in unit_ids
        }

    async def save(self, decision: Decision) -> None:
        self.state.applied.update(decision.fresh)
        for kind, docs in decision.batch.inserts.items():
            for doc in docs:
                assert doc["_id"] not in self.state.records.setdefault(kind, {}), "inserted twice"
                self.state.records[kind][doc["_id"]] = copy.deepcopy(doc)
        for (kind, record_id), update in decision.batch.docs.items():
            record = self.state.records.setdefault(kind, {}).setdefault(record_id, {"_id": record_id})
            for path, number in update.inc.items():
                parent, key = _parent(record, path)
                parent[key] = parent.get(key, 0) + number
            for path, value in update.set.items():
                parent, key = _parent(record, path)
                parent[key] = copy.deepcopy(value)
            for path, value in update.min.items():
                parent, key = _parent(record, path)
                parent[key] = min(parent[key], value) if key in parent else value


class MemoryReadModels:
    """:class:`ProjectionStore` and :class:`ReadModels` over dictionaries."""

    def __init__(self) -> None:
        self.state = _Records()
        self.transactions = 0

    async def in_transaction(self, work: Callable[[ProjectionWrite], Awaitable[None]]) -> None:
        staged = copy.deepcopy(self.state)
        await work(_Write(staged))
        self.state = staged  # all or nothing
        self.transactions += 1

    async def drop(self) -> None:
        self.state = _Records()

    def _all(self, kind: str) -> dict[str, Record]:
        return self.state.records.get(kind, {})

    async def province_id(self) -> str | None:
        return next((uid for uid, u in self._all(UNITS).items() if u.get("kind") == "province_corps"), None)

    async def unit(self, unit_id: str) -> Record | None:
        return self._all(UNITS).get(unit_id)

    async def all_units(self) -> dict[str, Record]:
        return {uid: u for uid, u in self._all(UNITS).items() if "kind" in u}

    async def subtree_units(self, root_id: str) -> dict[str, Record]:
        return {
            uid: u
            for uid, u in self._all(UNITS).items()
            if u.get("kind") and (uid == root_id or root_id in (u.get("ancestors") or []))
        }

    async def year_figures(self, year: int, unit_ids: Sequence[str] | None) -> dict[str, Record]:
        return self._figures(UNIT_STATS, "year", year, unit_ids)

    async def month_figures(self, month: str, unit_ids: Sequence[str] | None) -> dict[str, Record]:
        return self._figures(MONTH_STATS, "month", month, unit_ids)

    def _figures(self, kind: str, key: str, value: Any, unit_ids: Sequence[str] | None) -> dict[str, Record]:
        return {
            str(d["unit_id"]): d
            for d in self._all(kind).values()
            if d.get(key) == value and (unit_ids is None or d.get("unit_id") in unit_ids)
        }

    async def volunteer(self, volunteer_id: str) -> tuple[Record | None, Record]:
        served = self._all(VOLUNTEER_HOURS).get(volunteer_id) or {}
        return self._all(VOLUNTEER_STATS).get(volunteer_id), {k: v for k, v in served.items() if k != "_id"}


class MemorySubmissions:
    def __init__(self) -> None:
        self.docs: dict[str, Record] = {}
        self.events: list[Envelope[Any]] = []

    async def add(self, doc: Record, event: Envelope[Any]) -> None:
        if doc["_id"] in self.docs:
            raise AlreadyRecorded(doc["_id"])
        self.docs[doc["_id"]] = copy.deepcopy(doc)
        self.events.append(event)

    async def get(self, submission_id: str) -> Record | None:
        return copy.deepcopy(self.docs.get(submission_id))

    async def update(self, submission_id: str, expected: Record, fields: Record, event: Envelope[Any]) -> bool:
        doc = self.docs.get(submission_id)
        if doc is None or any(doc.get(k) != v for k, v in expected.items()):
            return False
        doc.update(copy.deepcopy(fields))
        self.events.append(event)
        return True

    async def of_period(self, kind: str, period: str, unit_ids: Sequence[str] | None) -> dict[str, Record]:
        return {
            str(d["unit_id"]): copy.deepcopy(d)
            for d in self.docs.values()
            if d["kind"] == kind and d["period"] == period and (unit_ids is None or d["unit_id"] in unit_ids)
        }


class NoDocuments:
    """Renderers are adapters of their own (tested in tests/reporting/adapters): here they only say what they got."""

    def compliance_xlsx(self, table: Mapping[str, Any]) -> bytes:
        return repr(table["unit_id"]).encode()

    def monthly_xlsx(self, report: Mapping[str, Any]) -> bytes:
        return repr(report["month"]).encode()

    def certificate_pdf(self, certificate: Mapping[str, Any]) -> bytes:
        return repr(certificate["_id"]).encode()

    def headcount_svg(self, rows: Sequence[Mapping[str, Any]]) -> str:
        return repr(list(rows))

    def quota_heatmap_svg(self, rows: Sequence[Mapping[str, Any]], quarters: Sequence[int], year: int) -> str:
        return repr((list(rows), list(quarters), year))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Reporting:
    """The use cases of the service composed on the in-memory ports (as `app.py` composes them on the real ones)."""

    def __init__(self, now: datetime = datetime(2026, 7, 1, tzinfo=UTC)) -> None:
        self.store = MemoryReadModels()
        self.submissions = MemorySubmissions()
        self.clock = Clock(now)
        campaign = Campaign(year=2026, monthly_report_day=5, start_month=4)
        self.queries = Queries(self.store, self.submissions, NoDocuments(), campaign, self.clock)
        self.submit = Submit(self.store, self.submissions, self.queries, self.clock)
        self.reports = Reports(self.submit, self.queries)


PROVINCE_ADMIN = Identity(subject="admin-1", role="province_admin", display_name="省科协管理员")
