"""The review of reports as pure rules: a returned report counts as not yet done in compliance (open while its
first submission was on time, missed when it was late), the listing's statuses, and the review events in the
projection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from services.reporting.domain.compliance import RuleResult, RuleStatus, UnitFacts, evaluate_unit
from services.reporting.domain.errors import Conflict, Invalid
from services.reporting.domain.projection import UNIT_STATS, Known, decide
from services.reporting.domain.reports import (
    ReportStatus,
    ReviewDecision,
    amended,
    listing_status,
    reviewed,
    versions,
)
from services.reporting.domain.rollup import returned_reports
from services.reporting.domain.vocabulary import UnitKind
from shared.contracts.envelope import Envelope
from shared.contracts.events import ReportAccepted, ReportAmended, ReportReturned
from tests.reporting.helpers import at


def rule(results: list[RuleResult], rule_id: str) -> RuleResult:
    return next(r for r in results if r.rule == rule_id)


def county(**kwargs: object) -> UnitFacts:
    return UnitFacts(kind=UnitKind.COUNTY_TEAM, registered_at=at(2026, 4, 1), **kwargs)  # type: ignore[arg-type]


def test_a_returned_report_is_not_done_until_submitted_again() -> None:
    on_time = county(action_plan_submitted_at=at(2026, 4, 28), monthly_reports={"2026-04": at(2026, 5, 6)})
    returned = county(
        action_plan_submitted_at=at(2026, 4, 28),
        monthly_reports={"2026-04": at(2026, 5, 6)},
        returned=frozenset({"action_plan", "2026-04"}),
    )
    today = at(2026, 5, 20)
    assert rule(evaluate_unit(on_time, 2026, today), "action_plan").status is RuleStatus.MET
    plan = rule(evaluate_unit(returned, 2026, today), "action_plan")
    assert (plan.status, plan.gap) == (RuleStatus.NOT_YET, 1)  # first submitted on time: still open
    assert "退回" in plan.detail_zh
    month = rule(evaluate_unit(returned, 2026, today), "monthly-2026-04")
    assert (month.status, month.gap) == (RuleStatus.MISSED, 1)  # first submitted late (after May 5)
    assert rule(evaluate_unit(on_time, 2026, today), "monthly-2026-04").gap == 0


def stored(sets: dict[str, object]) -> dict[str, object]:
    """The year figures as stored after these ``$set`` paths (``a.b`` nested)."""
    doc: dict[str, object] = {}
    for path, value in sets.items():
        head, _, tail = path.partition(".")
        if tail:
            doc.setdefault(head, {})[tail] = value  # type: ignore[index]
        else:
            doc[head] = value
    return doc


def test_review_events_set_where_the_report_stands_in_the_year_figures() -> None:
    def env(data: Any) -> Envelope[Any]:
        return Envelope.new(data, source="/stvs/reporting", subject="K1")

    returned = ReportReturned(unit_id="K1", kind="monthly", period="2026-04", version=1, returned_at=at(2026, 5, 7))
    plan = ReportReturned(unit_id="K1", kind="action_plan", period="2026", version=1, returned_at=at(2026, 5, 1))
    decision = decide([env(returned), env(plan)], Known())
    sets = decision.batch.docs[(UNIT_STATS, "K1:2026")].set
    assert returned_reports(stored(sets)) == {"2026-04", "action_plan"}
    amended_ = ReportAmended(unit_id="K1", kind="monthly", period="2026-04", version=2, amended_at=at(2026, 5, 8))
    accepted = ReportAccepted(unit_id="K1", kind="action_plan", period="2026", version=2, accepted_at=at(2026, 5, 9))
    decision = decide([env(returned), env(plan), env(amended_), env(accepted)], Known())
    assert returned_reports(stored(decision.batch.docs[(UNIT_STATS, "K1:2026")].set)) == frozenset()


def test_the_listing_status_of_a_report() -> None:
    due = at(2026, 5, 5, 23)
    assert listing_status(None, due, at(2026, 5, 5)) is ReportStatus.PENDING
    assert listing_status(None, due, at(2026, 5, 6)) is ReportStatus.MISSING
    doc = {"kind": "monthly", "late": True, "submitted_at": at(2026, 5, 6), "report": {}}
    assert listing_status(doc, due, at(2026, 5, 7)) is ReportStatus.LATE
    assert listing_status({**doc, "late": False}, due, at(2026, 5, 7)) is ReportStatus.SUBMITTED
    assert listing_status({**doc, "status": "returned"}, due, at(2026, 5, 7)) is ReportStatus.RETURNED
    assert listing_status({**doc, "status": "accepted"}, due, at(2026, 5, 7)) is ReportStatus.ACCEPTED


def test_a_record_from_before_versions_is_its_one_version() -> None:
    old = {"kind": "action_plan", "submitted_at": at(2026, 4, 1), "submitted_by": "u", "text": "旧", "late": False}
    [first] = versions(old)
    assert (first["version"], first["text"]) == (1, "旧")
    now = datetime(2026, 4, 2).astimezone()
    fields = amended(old, {"text": "新", "attachment_links": []}, None, now, "u", None)
    assert [v["text"] for v in fields["versions"]] == ["旧", "新"] and fields["version"] == 2
    with pytest.raises(Invalid):
        reviewed(old, ReviewDecision.RETURN, 1, None, now, "p", None)
    with pytest.raises(Conflict):
        reviewed(old, ReviewDecision.ACCEPT, 2, None, now, "p", None)
