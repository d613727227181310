"""A unit's obligations (DOMAIN.md §6): the facts that open and close them, and the reminder slots that concern
the unit. Pure rules, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple, TypeVar

from shared.calendar import to_shanghai

from .deadlines import (
    CampaignCalendar,
    Deadline,
    DueNotification,
    NotificationKind,
    ObligationKind,
    SlotKey,
    has_passed,
)

_K = TypeVar("_K")

_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class UnitRegistered:
    unit_id: str
    at: datetime
    contact_person_given: bool = False


@dataclass(frozen=True, slots=True)
class ContactPersonGiven:
    """A `UnitUpdated` that names the unit's contact person."""

    unit_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ActionPlanSubmitted:
    unit_id: str
    year: int
    at: datetime


@dataclass(frozen=True, slots=True)
class MonthlyReportSubmitted:
    unit_id: str
    month: str  # "2026-04": the month reported on
    at: datetime

    def __post_init__(self) -> None:
        if not _MONTH_RE.match(self.month):
            raise ValueError(f"month must look like 2026-04, got {self.month!r}")


@dataclass(frozen=True, slots=True)
class ActivityCompleted:
    unit_id: str
    at: datetime  # when the activity took place (its starts_at): that decides its quarter


Fact = UnitRegistered | ContactPersonGiven | ActionPlanSubmitted | MonthlyReportSubmitted | ActivityCompleted


@dataclass(frozen=True, slots=True)
class Obligation:
    """One unit's obligation towards one deadline; `closed_at` None while it is open."""

    unit_id: str
    deadline: Deadline
    kind: ObligationKind
    closed_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def was_open_at(self, at: datetime) -> bool:
        return self.closed_at is None or has_passed(due=at, now=self.closed_at)


@dataclass(frozen=True, slots=True)
class UnitObligations:
    """The facts about one unit that open and close its obligations.

    A fold of facts that keeps the earliest time of each: applying a fact twice, or facts in any order
    (an activity seen before the unit's registration), gives the same state. Obligations are derived
    from it against a calendar.
    """

    unit_id: str
    registered_at: datetime | None = None
    contact_person_at: datetime | None = None
    action_plans: Mapping[int, datetime] = field(default_factory=dict)  # campaign year -> submitted
    monthly_reports: Mapping[str, datetime] = field(default_factory=dict)  # "2026-04" -> submitted
    active_quarters: Mapping[str, datetime] = field(default_factory=dict)  # "2026-Q2" -> first activity

    def apply(self, fact: Fact) -> UnitObligations:
        if fact.unit_id != self.unit_id:
            raise ValueError(f"fact for unit {fact.unit_id!r} applied to unit {self.unit_id!r}")
        at = to_shanghai(fact.at)
        match fact:
            case UnitRegistered(contact_person_given=given):
                state = replace(self, registered_at=_earliest(self.registered_at, at))
                return replace(state, contact_person_at=_earliest(self.contact_person_at, at)) if given else state
            case ContactPersonGiven():
                return replace(self, contact_person_at=_earliest(self.contact_person_at, at))
            case ActionPlanSubmitted(year=year):
                return replace(self, action_plans=_with_earliest(self.action_plans, year, at))
            case MonthlyReportSubmitted(month=month):
                return replace(self, monthly_reports=_with_earliest(self.monthly_reports, month, at))
            case ActivityCompleted():
                quarter = f"{at.year}-Q{(at.month - 1) // 3 + 1}"
                return replace(self, active_quarters=_with_earliest(self.active_quarters, quarter, at))

    def obligations(self, calendar: CampaignCalendar) -> list[Obligation]:
        """Every obligation of the unit in that campaign year, open or closed.

        Registration opens them all; none exist before it (the notifier knows a unit only once it has
        registered, so `registration` is opened and closed by the same fact and only shows whether that was
        late). A monthly or quarterly obligation whose period ended before the unit registered is not opened.
        """
        if self.registered_at is None:
            return []
        found: list[Obligation] = []
        for deadline in calendar.deadlines:
            if deadline.period_end is not None and has_passed(deadline.period_end, self.registered_at):
                continue
            found.extend(
                Obligation(self.unit_id, deadline, kind, self._closed_at(kind, deadline, calendar.year))
                for kind in deadline.checks
            )
        return found

    def _closed_at(self, kind: ObligationKind, deadline: Deadline, year: int) -> datetime | None:
        match kind:
            case ObligationKind.REGISTRATION:
                return self.registered_at
            case ObligationKind.CONTACT_PERSON:
                return self.contact_person_at
            case ObligationKind.ACTION_PLAN:
                return self.action_plans.get(year)
            case ObligationKind.MONTHLY_REPORT:
                return self.monthly_reports.get(deadline.period or "")
            case ObligationKind.QUARTERLY_ACTIVITY:
                return self.active_quarters.get(deadline.period or "")


class UnitSlot(NamedTuple):
    """A due slot that concerns one unit, with the obligations that make it concern the unit."""

    key: SlotKey
    notification: DueNotification
    obligations: tuple[ObligationKind, ...]


def slots_for_unit(
    unit: UnitObligations, calendar: CampaignCalendar, due: Sequence[DueNotification], now: datetime
) -> list[UnitSlot]:
    """The due slots that concern this unit.

    Approaching: some obligation checked by the deadline is still open now. Missed: some was still open
    when the deadline passed (closing it late does not undo the miss; the province office hears of it).
    """
    by_deadline: dict[str, list[Obligation]] = {}
    for obligation in unit.obligations(calendar):
        by_deadline.setdefault(obligation.deadline.id, []).append(obligation)
    found: list[UnitSlot] = []
    for notification in due:
        at = notification.deadline.due_at if notification.kind is NotificationKind.MISSED else now
        kinds = tuple(o.kind for o in by_deadline.get(notification.deadline.id, []) if o.was_open_at(at))
        if kinds:
            found.append(UnitSlot(notification.key(unit.unit_id), notification, kinds))
    return found


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def _with_earliest(mapping: Mapping[_K, datetime], key: _K, at: datetime) -> dict[_K, datetime]:
    updated = dict(mapping)
    updated[key] = _earliest(mapping.get(key), at)
    return updated
