"""Submitted reports read back, amended and reviewed: each readable whole by its unit and the units above it,
amendable (a new version) until the province office accepts it, accepted or returned with a comment by the
province office, and listed with where each unit of a subtree stands for a period."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.reporting.domain.errors import Conflict, Forbidden, NotFound
from services.reporting.domain.periods import parse_month
from services.reporting.domain.projection import Record
from services.reporting.domain.reports import (
    KIND_ZH,
    STATUS_ZH,
    ReportStatus,
    ReviewDecision,
    amended,
    counts,
    listing_row,
    listing_status,
    report_id,
    reviewed,
    version_of,
    versions,
)
from services.reporting.domain.rollup import unit_json
from shared.calendar import action_plan_due, month_key, monthly_report_due
from shared.contracts.envelope import Envelope
from shared.contracts.events import ReportAccepted, ReportAmended, ReportKind, ReportReturned
from shared.identity import Identity

from .queries import Queries
from .submissions import SOURCE, ActionPlan, Submit


def report_json(doc: Mapping[str, Any], now: Any) -> Record:
    """A report whole: where it stands, the latest version on top, every version and every decision."""
    kept = versions(doc)
    status = listing_status(doc, doc["due_at"], now)
    return {
        "_id": doc["_id"],
        "kind": doc["kind"],
        "kind_zh": KIND_ZH[str(doc["kind"])],
        "unit_id": doc["unit_id"],
        "period": doc["period"],
        "status": status.value,
        "status_zh": STATUS_ZH[status],
        "version": version_of(doc),
        "due_at": doc["due_at"],
        "submitted_at": doc["submitted_at"],
        "submitted_by": doc.get("submitted_by"),
        "submitted_by_name": doc.get("submitted_by_name"),
        "late": bool(doc.get("late")),
        "current": kept[-1],
        "versions": kept,
        "reviews": list(doc.get("reviews") or []),
    }


class Reports:
    """Reading, amending, reviewing and listing submitted reports, for one caller at a time."""

    def __init__(self, submit: Submit, queries: Queries) -> None:
        self.submit = submit
        self.queries = queries
        self.store = submit.store

    async def read(self, identity: Identity, kind: ReportKind, unit_id: str, period: str) -> Record:
        """The report whole, for its unit and the units above it (and the province)."""
        await self.queries.tree(identity, unit_id)  # in scope, or not found
        return report_json(await self._found(kind, unit_id, period), self.queries.clock())

    async def amend_action_plan(self, identity: Identity, plan: ActionPlan, note: str | None) -> Record:
        await self.submit.submittable_unit(identity, plan.unit_id)
        content = {"text": plan.text, "attachment_links": list(plan.attachment_links)}
        return await self._amend(identity, "action_plan", plan.unit_id, str(plan.year), content, note)

    async def amend_monthly(self, identity: Identity, unit_id: str, month: str, note: str | None) -> Record:
        """A new version of the month's report, generated again from the statistics as they stand now."""
        year, mon = parse_month(month)
        await self.submit.submittable_unit(identity, unit_id)
        tree = await self.queries.tree(identity, unit_id)
        due = monthly_report_due(year, mon, self.queries.campaign.monthly_report_day)
        report = await self.queries.report_of(tree, month, due)
        report.pop("submission", None)
        return await self._amend(identity, "monthly", unit_id, month, {"report": report}, note)

    async def review(
        self, identity: Identity, kind: ReportKind, unit_id: str, period: str, decision: ReviewDecision, version: int,
        comment: str | None,
    ) -> Record:  # fmt: skip
        """The province office accepts or returns the latest version (with a comment when returning)."""
        if identity.role != "province_admin":
            raise Forbidden("forbidden_role", "仅省级管理员（省科协办公室）可审核报送材料")
        doc = await self._found(kind, unit_id, period)
        now = self.queries.clock()
        fields = reviewed(doc, decision, version, comment, now, identity.subject, identity.display_name)
        event: ReportAccepted | ReportReturned
        if decision is ReviewDecision.ACCEPT:
            event = ReportAccepted(unit_id=unit_id, kind=kind, period=period, version=version, accepted_at=now)
        else:
            event = ReportReturned(unit_id=unit_id, kind=kind, period=period, version=version, returned_at=now)
        return await self._write(doc, fields, Envelope.new(event, source=SOURCE, subject=unit_id), now)

    async def listing(
        self, identity: Identity, kind: ReportKind, period: str, unit_id: str | None, status: str | None
    ) -> Record:
        """Every unit of the subtree (default: the caller's own, or the province) and where it stands for the
        report of the period; ``status`` keeps only the units at that status (the counts are of all)."""
        tree = await self.queries.tree(identity, unit_id)
        due = self._due(kind, period)
        now = self.queries.clock()
        docs = await self.store.of_period(kind, period, tree.member_ids())
        rows = []
        for unit in tree.members:
            uid = str(unit["_id"])
            if kind == "monthly" and not _on_platform(unit, period):
                continue
            rows.append({**unit_json(unit), **listing_row(docs.get(uid), due, now)})
        shown = rows if status is None else [r for r in rows if r["status"] == status]
        return {
            "unit_id": tree.root["_id"],
            "kind": kind,
            "kind_zh": KIND_ZH[kind],
            "period": period,
            "due_at": due,
            "as_of": now,
            "counts": counts(rows),
            "units": shown,
        }

    # ---- helpers

    def _due(self, kind: ReportKind, period: str) -> Any:
        if kind == "action_plan":
            return action_plan_due(int(period))
        year, mon = parse_month(period)
        return monthly_report_due(year, mon, self.queries.campaign.monthly_report_day)

    async def _found(self, kind: ReportKind, unit_id: str, period: str) -> Record:
        doc = await self.store.get(report_id(kind, unit_id, period))
        if doc is None:
            raise NotFound("report_not_found", f"{unit_id} 尚未报送 {period} 的{KIND_ZH[kind]}")
        return doc

    async def _amend(
        self, identity: Identity, kind: ReportKind, unit_id: str, period: str, content: Record, note: str | None
    ) -> Record:
        doc = await self._found(kind, unit_id, period)
        now = self.queries.clock()
        fields = amended(doc, content, note, now, identity.subject, identity.display_name)
        event = ReportAmended(unit_id=unit_id, kind=kind, period=period, version=fields["version"], amended_at=now)
        return await self._write(doc, fields, Envelope.new(event, source=SOURCE, subject=unit_id), now)

    async def _write(self, doc: Record, fields: Record, event: Envelope[Any], now: Any) -> Record:
        """Save the change if the report is still as read (its version and status), else tell the caller."""
        expected = {"version": doc.get("version"), "status": doc.get("status")}
        if not await self.store.update(str(doc["_id"]), expected, fields, event):
            raise Conflict("report_changed", "该报送材料刚被他人修改或审核，请刷新后重试")
        return report_json({**doc, **fields}, now)


def _on_platform(unit: Mapping[str, Any], month: str) -> bool:
    """A unit owes the report of a month that ended after it registered (unknown registration: it does)."""
    registered = unit.get("registered_at")
    return registered is None or month_key(registered) <= month


__all__ = ["ReportStatus", "Reports"]
