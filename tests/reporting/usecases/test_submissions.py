"""Submitting reports on the in-memory ports: the record and its event go together, once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.reporting.domain.errors import Conflict, Forbidden, Invalid
from services.reporting.usecases.projection import ProjectEvents
from services.reporting.usecases.submissions import ActionPlan
from shared.contracts.events import MonthlyReportSubmitted
from shared.identity import Identity
from tests.reporting.helpers import unit_event
from tests.reporting.usecases.memory import Reporting

K1_ADMIN = Identity(subject="u-1", role="unit_admin", unit_id="K1")


async def test_a_monthly_report_is_submitted_once_with_its_event() -> None:
    app = Reporting(now=datetime(2026, 7, 6, 1, tzinfo=UTC))  # the 6th: a day after the June report was due
    await ProjectEvents(app.store).apply([unit_event("K1", "county_team", ["P"])])
    answer = await app.submit.monthly_report(K1_ADMIN, "K1", "2026-06")
    assert (answer["_id"], answer["late"]) == ("monthly:K1:2026-06", True)
    [event] = app.submissions.events
    assert isinstance(event.data, MonthlyReportSubmitted) and event.data.late
    with pytest.raises(Conflict):
        await app.submit.monthly_report(K1_ADMIN, "K1", "2026-06")
    with pytest.raises(Invalid):
        await app.submit.monthly_report(K1_ADMIN, "K1", "2026-08")  # not begun yet
    report = await app.queries.monthly_report(K1_ADMIN, "K1", "2026-06")
    assert report["submission"] is not None and report["submission"]["late"] is True


async def test_an_action_plan_only_for_a_unit_in_scope() -> None:
    app = Reporting(now=datetime(2026, 4, 20, tzinfo=UTC))
    await ProjectEvents(app.store).apply(
        [unit_event("K1", "county_team", ["P"]), unit_event("K2", "county_team", ["P"])]
    )
    plan = ActionPlan("K2", 2026, "行动计划", [])
    with pytest.raises(Forbidden):
        await app.submit.action_plan(K1_ADMIN, plan)
    answer = await app.submit.action_plan(K1_ADMIN, ActionPlan("K1", 2026, "行动计划", []))
    assert (answer["kind"], answer["late"]) == ("action_plan", False)
