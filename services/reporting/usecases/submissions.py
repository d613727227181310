"""Reports (信息报送): the action plan and the monthly report, each stored with its event (through the outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.reporting.domain.errors import Conflict, Forbidden, Invalid, NotFound
from services.reporting.domain.periods import parse_month
from services.reporting.domain.projection import Record
from services.reporting.domain.reports import first_version
from shared.calendar import action_plan_due, is_late, month_key, monthly_report_due
from shared.contracts.envelope import Envelope
from shared.contracts.events import ActionPlanSubmitted, MonthlyReportSubmitted
from shared.identity import Identity
from shared.scope import covers, unit_path

from .ports import AlreadyRecorded, ReadModels, SubmissionStore
from .queries import Clock, Queries

SOURCE = "/stvs/reporting"
# What the answer to a submission shows of it.
SHOWN = ("_id", "kind", "unit_id", "period", "submitted_at", "submitted_by", "late", "due_at")


def first_submission(doc: Record, content: Sequence[str]) -> Record:
    """A first submission is version 1 of the report, awaiting the province office's review."""
    first = first_version({k: doc[k] for k in content}, doc["submitted_at"], doc["submitted_by"],
                          doc["submitted_by_name"])  # fmt: skip
    return {"status": "submitted", "version": 1, "versions": [first]}


@dataclass(frozen=True)
class ActionPlan:
    unit_id: str
    year: int
    text: str
    attachment_links: Sequence[str]


class Submit:
    """Submitting reports, by the admin of the unit or of a unit above it."""

    def __init__(self, read: ReadModels, store: SubmissionStore, queries: Queries, clock: Clock) -> None:
        self.read = read
        self.store = store
        self.queries = queries
        self.clock = clock

    async def action_plan(self, identity: Identity, plan: ActionPlan) -> Record:
        await self.submittable_unit(identity, plan.unit_id)
        now = self.clock()
        due = action_plan_due(plan.year)
        late = is_late(now, due)
        doc: Record = {
            "_id": f"action_plan:{plan.unit_id}:{plan.year}",
            "kind": "action_plan",
            "unit_id": plan.unit_id,
            "period": str(plan.year),
            "text": plan.text,
            "attachment_links": list(plan.attachment_links),
            "submitted_at": now,
            "submitted_by": identity.subject,
            "submitted_by_name": identity.display_name,
            "late": late,
            "due_at": due,
        }
        doc.update(first_submission(doc, ("text", "attachment_links")))
        event = ActionPlanSubmitted(
            unit_id=plan.unit_id, year=plan.year, submitted_at=now, submitted_by=identity.subject, late=late
        )
        await self._record(doc, Envelope.new(event, source=SOURCE, subject=plan.unit_id), f"{plan.year}年行动计划")
        return {k: doc[k] for k in SHOWN}

    async def monthly_report(self, identity: Identity, unit_id: str, month: str) -> Record:
        year, mon = parse_month(month)
        await self.submittable_unit(identity, unit_id)
        now = self.clock()
        if month > month_key(now):
            raise Invalid("future_month", f"{month} 尚未开始，不能报送月报")
        tree = await self.queries.tree(identity, unit_id)
        due = monthly_report_due(year, mon, self.queries.campaign.monthly_report_day)
        report = await self.queries.report_of(tree, month, due)
        late = is_late(now, due)
        report.pop("submission", None)
        doc: Record = {
            "_id": f"monthly:{unit_id}:{month}",
            "kind": "monthly",
            "unit_id": unit_id,
            "period": month,
            "report": report,
            "submitted_at": now,
            "submitted_by": identity.subject,
            "submitted_by_name": identity.display_name,
            "late": late,
            "due_at": due,
        }
        doc.update(first_submission(doc, ("report",)))
        event = MonthlyReportSubmitted(
            unit_id=unit_id, month=month, submitted_at=now, submitted_by=identity.subject, late=late
        )
        await self._record(doc, Envelope.new(event, source=SOURCE, subject=unit_id), f"{month}月报")
        return {k: doc[k] for k in SHOWN}

    async def submittable_unit(self, identity: Identity, unit_id: str) -> Record:
        """The unit a submission is for: the caller's own or one below it (the shared rule, shared.scope)."""
        unit = await self.read.unit(unit_id)
        if identity.role == "unit_admin" and not covers(identity, unit_path(unit) if unit else [unit_id]):
            raise Forbidden("forbidden_unit", "只能报送本队伍及下级队伍的材料")
        if unit is None or not unit.get("kind"):
            raise NotFound("unit_not_found", f"未找到队伍 {unit_id}（或其注册事件尚未到达）")
        return unit

    async def _record(self, doc: Record, event: Envelope[Any], what_zh: str) -> None:
        try:
            await self.store.add(doc, event)
        except AlreadyRecorded as exc:
            raise Conflict("already_submitted", f"{what_zh}已报送，不能重复报送") from exc
