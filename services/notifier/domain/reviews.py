"""A returned report's "resubmit" obligation (issue 16 §3): opened when the province office returns a version of a
unit's report, closed when the unit amends it or the office accepts it. Pure rules, no I/O.

The review facts of one report (unit, kind, period) are ordered by the report's version, and at one version an
amendment comes before a return, and a return before an acceptance; a fact not newer than the last one applied
changes nothing, so redelivered and late facts (a `Returned` of an older version after an `Accepted`) never reopen
it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

REPORT_KINDS_ZH = {"action_plan": "年度行动计划", "monthly": "月度报告"}


class ReviewStep(StrEnum):
    AMENDED = "amended"
    RETURNED = "returned"
    ACCEPTED = "accepted"


_STEP_ORDER = {ReviewStep.AMENDED: 0, ReviewStep.RETURNED: 1, ReviewStep.ACCEPTED: 2}


@dataclass(frozen=True, slots=True)
class ReviewFact:
    unit_id: str
    kind: str  # "action_plan" | "monthly"
    period: str  # "2026" or "2026-04"
    version: int
    step: ReviewStep
    at: datetime

    @property
    def rank(self) -> int:
        """The order of the facts of one report: by version; at one version the amendment, then a return, then the
        acceptance (which is final: a return of the same version seen after it does not reopen)."""
        return self.version * 3 + _STEP_ORDER[self.step]


def review_id(unit_id: str, kind: str, period: str) -> str:
    return f"{unit_id}:{kind}:{period}"


@dataclass(frozen=True, slots=True)
class ReportReview:
    """The last review fact applied to one report, and whether the unit owes a resubmission."""

    unit_id: str
    kind: str
    period: str
    rank: int = 0
    version: int = 0
    returned_at: datetime | None = None  # set while the resubmit obligation is open

    @property
    def id(self) -> str:
        return review_id(self.unit_id, self.kind, self.period)

    @property
    def is_open(self) -> bool:
        return self.returned_at is not None

    @staticmethod
    def start(fact: ReviewFact) -> ReportReview:
        return ReportReview(fact.unit_id, fact.kind, fact.period)

    def apply(self, fact: ReviewFact) -> ReportReview | None:
        """The state after ``fact``; None when the fact is not newer than the last applied (nothing changes)."""
        if (fact.unit_id, fact.kind, fact.period) != (self.unit_id, self.kind, self.period):
            raise ValueError(
                f"fact for report {review_id(fact.unit_id, fact.kind, fact.period)!r} applied to {self.id!r}"
            )
        if fact.rank <= self.rank:
            return None
        returned_at = fact.at if fact.step is ReviewStep.RETURNED else None
        return ReportReview(self.unit_id, self.kind, self.period, fact.rank, fact.version, returned_at)

    def reminder_slot(self, now: datetime, every: timedelta) -> int:
        """The number of the resubmit reminder due at ``now`` (1 after ``every``, 2 after twice that …); 0: none yet
        (the notice at the return is slot 0) or the obligation is closed."""
        if self.returned_at is None or now < self.returned_at:
            return 0
        return int((now - self.returned_at) / every)
