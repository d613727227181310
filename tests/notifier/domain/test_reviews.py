"""A returned report's resubmit obligation (issue 16 §3): opened by a return, closed by an amendment or acceptance;
facts older than the last one change nothing; its reminder slots every few days."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.notifier.domain.reviews import ReportReview, ReviewFact, ReviewStep
from tests.notifier.support import at


def fact(step: ReviewStep, version: int, when: str = "2026-05-12 10:00") -> ReviewFact:
    return ReviewFact("u1", "monthly", "2026-04", version, step, at(when))


def fold(*facts: ReviewFact) -> ReportReview:
    review = ReportReview.start(facts[0])
    for f in facts:
        review = review.apply(f) or review
    return review


def test_a_return_opens_and_an_amendment_closes() -> None:
    returned = fold(fact(ReviewStep.RETURNED, 1))
    assert returned.is_open and returned.returned_at == at("2026-05-12 10:00")
    assert not fold(fact(ReviewStep.RETURNED, 1), fact(ReviewStep.AMENDED, 2)).is_open


def test_an_acceptance_closes() -> None:
    assert not fold(fact(ReviewStep.RETURNED, 2), fact(ReviewStep.ACCEPTED, 2)).is_open


def test_a_late_return_of_an_older_version_does_not_reopen() -> None:
    review = fold(fact(ReviewStep.ACCEPTED, 2))
    assert review.apply(fact(ReviewStep.RETURNED, 1)) is None
    assert not fold(fact(ReviewStep.AMENDED, 2), fact(ReviewStep.RETURNED, 1)).is_open


def test_the_return_of_the_amended_version_reopens() -> None:
    review = fold(fact(ReviewStep.RETURNED, 1), fact(ReviewStep.AMENDED, 2), fact(ReviewStep.RETURNED, 2))
    assert review.is_open and review.version == 2


def test_a_redelivered_fact_changes_nothing() -> None:
    review = fold(fact(ReviewStep.RETURNED, 1))
    assert review.apply(fact(ReviewStep.RETURNED, 1)) is None


def test_a_fact_of_another_report_is_refused() -> None:
    other = ReviewFact("u1", "monthly", "2026-05", 1, ReviewStep.RETURNED, at("2026-06-01 10:00"))
    with pytest.raises(ValueError, match="applied to"):
        fold(fact(ReviewStep.RETURNED, 1)).apply(other)


def test_reminder_slots_count_the_intervals_since_the_return() -> None:
    review = fold(fact(ReviewStep.RETURNED, 1, "2026-05-12 10:00"))
    every = timedelta(days=3)
    assert review.reminder_slot(at("2026-05-15 09:59"), every) == 0
    assert review.reminder_slot(at("2026-05-15 10:00"), every) == 1
    assert review.reminder_slot(at("2026-05-21 10:00"), every) == 3
    closed = fold(fact(ReviewStep.RETURNED, 1), fact(ReviewStep.ACCEPTED, 1))
    assert closed.reminder_slot(at("2026-06-30 10:00"), every) == 0
