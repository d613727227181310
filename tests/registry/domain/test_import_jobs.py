"""How far along an upload job is, and the estimate of what is left, from its counters alone."""

from __future__ import annotations

from services.registry.domain.imports import JobState, job_fraction, remaining_seconds


def test_the_fraction_grows_with_each_phase_and_is_whole_only_when_finished() -> None:
    read_half = job_fraction({"total": 1000, "read": 500}, JobState.READING)
    read_all = job_fraction({"total": 1000, "read": 1000, "checked": 1000}, JobState.CHECKING)
    storing = job_fraction(
        {"total": 1000, "read": 1000, "checked": 1000, "to_store": 1000, "stored": 500}, JobState.STORING
    )
    publishing = job_fraction(
        {"total": 1000, "read": 1000, "checked": 1000, "to_store": 1000, "stored": 1000, "to_publish": 1000,
         "published": 999},
        JobState.PUBLISHING,
    )  # fmt: skip
    assert 0 < read_half < read_all < storing < publishing < 1
    assert job_fraction({}, JobState.QUEUED) == 0.0
    assert job_fraction({}, JobState.FAILED) == job_fraction({}, JobState.CANCELLED) == 1.0


def test_the_estimate_follows_the_pace_so_far_and_waits_for_one() -> None:
    assert remaining_seconds(0.25, 30.0) == 90.0
    assert remaining_seconds(0.01, 30.0) is None  # too early to say
    assert remaining_seconds(0.5, 0.0) is None
