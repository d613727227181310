"""The premise under which a batch of sign-ups is committed, evaluated by the database itself: a batch decided on the
counters read must be refused when the counters moved so that the same arrivals would be answered differently; and
every premise of the use cases means in the database what it means in plain terms (``domain.places``)."""

from __future__ import annotations

import uuid

import pytest

from services.activities.adapters.expressions import batch_premise, places_expr
from services.activities.domain import BatchFits, NoPlaceFree, PlaceFree, PlaceLeft, Places, WithinCapacity
from tests.activities.conftest import Running

# (capacity, confirmed, waitlisted) as read → what a batch decided on them: (newcomers confirmed, waitlisted)
CASES = [
    ((10, 5, 0), (3, 0)),  # places left, nobody waits: all three confirmed
    ((10, 7, 0), (3, 2)),  # exactly the last three places, then the waitlist
    ((10, 10, 0), (0, 4)),  # full house
    ((10, 6, 2), (0, 3)),  # places free but people wait for them: newcomers queue
]
# The counters when the commit applies → whether each decision above still holds.
MOVED = [(10, 5, 0), (10, 7, 0), (10, 8, 0), (10, 10, 0), (10, 6, 2), (10, 9, 0), (12, 10, 0)]


def still_right(capacity: int, confirmed: int, waitlisted: int, decided: tuple[int, int]) -> bool:
    """The same arrivals decided again on these counters, first come first served."""
    places = capacity - confirmed if waitlisted == 0 else 0
    n = decided[0] + decided[1]
    return (min(places, n), n - min(places, n)) == decided


@pytest.mark.parametrize(("read", "decided"), CASES)
async def test_a_batch_commits_only_while_its_answers_still_hold(
    running: Running, read: tuple[int, int, int], decided: tuple[int, int]
) -> None:
    col = running.store.db[f"premise-{uuid.uuid4().hex[:8]}"]
    docs = [{"_id": f"{c}-{k}-{w}", "capacity": c, "counts": {"confirmed": k, "waitlisted": w}} for c, k, w in MOVED]
    docs.append({"_id": "never-counted", "capacity": 10})  # no counters yet: nobody signed up
    await col.insert_many(docs)
    premise = batch_premise(*decided)
    assert premise is not None
    passing = {d["_id"] async for d in col.find({"$expr": premise})}
    expected = {f"{c}-{k}-{w}" for c, k, w in MOVED if still_right(c, k, w, decided)}
    if still_right(10, 0, 0, decided):
        expected.add("never-counted")
    assert passing == expected
    assert f"{read[0]}-{read[1]}-{read[2]}" in passing, "a batch passes on the counters it was decided on"
    await col.drop()


def test_a_batch_of_approvals_to_wait_for_has_no_counter_premise() -> None:
    assert batch_premise(0, 0) is None


PREMISES: list[Places] = [
    PlaceFree(),
    NoPlaceFree(),
    PlaceLeft(),
    WithinCapacity(9),
    *(BatchFits(*d) for _, d in CASES),
]


async def test_the_database_reads_each_premise_as_the_domain_does(running: Running) -> None:
    col = running.store.db[f"places-{uuid.uuid4().hex[:8]}"]
    await col.insert_many(
        [{"_id": f"{c}-{k}-{w}", "capacity": c, "counts": {"confirmed": k, "waitlisted": w}} for c, k, w in MOVED]
    )
    for places in PREMISES:
        expr = places_expr(places)
        assert expr is not None
        passing = {d["_id"] async for d in col.find({"$expr": expr})}
        assert passing == {f"{c}-{k}-{w}" for c, k, w in MOVED if places.holds(c, k, w)}, places
    await col.drop()
