"""Sign-ups on the in-memory port: capacity and the waitlist's order, a burst decided together, cancellation
promoting the first waitlisted, approval, a decision whose premise moved before its commit."""

from __future__ import annotations

import asyncio

import pytest

from services.activities.domain import ActivityNotFound, AlreadySignedUp, SignUpClosed, SignUpStatus, VolunteerUnknown
from services.activities.usecases import activities, signups
from services.activities.usecases.batches import SignUpBatches
from tests.activities.usecases.conftest import ADMIN, STARTS, at, published, volunteer, volunteers
from tests.activities.usecases.memory import MemoryStorage


async def sign_up(storage: MemoryStorage, batches: SignUpBatches, activity_id: str, v: str) -> signups.SignedUp:
    return await signups.sign_up(storage, batches, activity_id, volunteer(v), None)


async def statuses(storage: MemoryStorage, activity_id: str) -> list[tuple[str, str, int]]:
    roster = await signups.roster(storage, activity_id, None, ADMIN)
    return [(e.signup.volunteer_id, e.signup.status.value, e.signup.sequence) for e in roster.items]


async def test_places_are_taken_first_come_then_the_waitlist_in_order(
    storage: MemoryStorage, batches: SignUpBatches
) -> None:
    activity_id = await published(storage, capacity=2)
    await volunteers(storage, "a", "b", "c", "d")
    answers = [await sign_up(storage, batches, activity_id, v) for v in "abcd"]
    assert [(a.entry.signup.status, a.waitlist_position) for a in answers] == [
        ("confirmed", None),
        ("confirmed", None),
        ("waitlisted", 1),
        ("waitlisted", 2),
    ]
    assert await statuses(storage, activity_id) == [
        ("a", "confirmed", 1),
        ("b", "confirmed", 2),
        ("c", "waitlisted", 3),
        ("d", "waitlisted", 4),
    ]
    roster = await signups.roster(storage, activity_id, None, ADMIN)
    assert roster.waitlist_positions == {"c": 1, "d": 2}


async def test_a_burst_never_oversells_and_keeps_the_order_of_arrival(
    storage: MemoryStorage, batches: SignUpBatches
) -> None:
    activity_id = await published(storage, capacity=3)
    ids = [f"v{i:02d}" for i in range(12)]
    await volunteers(storage, *ids)
    answers = await asyncio.gather(*(sign_up(storage, batches, activity_id, v) for v in ids))
    confirmed = [a for a in answers if a.entry.signup.status is SignUpStatus.CONFIRMED]
    waitlisted = sorted(
        (a for a in answers if a.entry.signup.status is SignUpStatus.WAITLISTED), key=lambda a: a.entry.signup.sequence
    )
    assert len(confirmed) == 3
    assert [a.waitlist_position for a in waitlisted] == list(range(1, 10))
    assert max(a.entry.signup.sequence for a in confirmed) < min(a.entry.signup.sequence for a in waitlisted)
    assert storage.commits < len(ids), "arrivals waiting together are committed together"
    counts = storage.activities[activity_id]["counts"]
    assert (counts["confirmed"], counts["waitlisted"]) == (3, 9)


async def test_a_decision_whose_places_moved_before_its_commit_is_taken_again(
    storage: MemoryStorage, batches: SignUpBatches
) -> None:
    activity_id = await published(storage, capacity=1)
    await volunteers(storage, "late")

    def another_replica_took_the_place(record: dict[str, object]) -> None:
        record["counts"] = {**record["counts"], "confirmed": 1}  # type: ignore[dict-item]

    storage.before_commit = another_replica_took_the_place
    answer = await sign_up(storage, batches, activity_id, "late")
    assert (answer.entry.signup.status, answer.waitlist_position) == (SignUpStatus.WAITLISTED, 1)


async def test_cancelling_a_confirmed_place_promotes_the_first_waitlisted(
    storage: MemoryStorage, batches: SignUpBatches
) -> None:
    activity_id = await published(storage, capacity=1)
    await volunteers(storage, "a", "b", "c")
    for v in "abc":
        await sign_up(storage, batches, activity_id, v)
    cancelled = await signups.cancel(storage, activity_id, "a", volunteer("a"))
    assert (cancelled.entry.signup.status, cancelled.promoted) == (SignUpStatus.CANCELLED, ["b"])
    assert await statuses(storage, activity_id) == [
        ("a", "cancelled", 1),
        ("b", "confirmed", 2),
        ("c", "waitlisted", 3),
    ]
    promoted = [e for e in storage.events if e.type.endswith("signup_confirmed.v1")]
    assert [(e.data.model_dump()["volunteer_id"], e.data.model_dump()["reason"]) for e in promoted] == [
        ("b", "promoted")
    ]
    # a waitlisted sign-up given up frees no place: nobody moves
    again = await signups.cancel(storage, activity_id, "c", volunteer("c"))
    assert again.promoted == []


async def test_more_places_go_to_the_waitlist_first(storage: MemoryStorage, batches: SignUpBatches) -> None:
    activity_id = await published(storage, capacity=1)
    await volunteers(storage, "a", "b", "c")
    for v in "abc":
        await sign_up(storage, batches, activity_id, v)
    await activities.revise(storage, activity_id, {"capacity": 3}, ADMIN)
    assert [s for _, s, _ in await statuses(storage, activity_id)] == ["confirmed"] * 3


async def test_approval_takes_a_free_place_or_joins_the_waitlist(
    storage: MemoryStorage, batches: SignUpBatches
) -> None:
    activity_id = await published(storage, capacity=1, requires_approval=True)
    await volunteers(storage, "a", "b", "c")
    for v in "abc":
        assert (await sign_up(storage, batches, activity_id, v)).entry.signup.status is SignUpStatus.PENDING_APPROVAL
    assert (await signups.review(storage, activity_id, "a", ADMIN, approve=True)).signup.status == "confirmed"
    assert (await signups.review(storage, activity_id, "b", ADMIN, approve=True)).signup.status == "waitlisted"
    assert (await signups.review(storage, activity_id, "c", ADMIN, approve=False)).signup.status == "rejected"


async def test_refusals_give_the_claim_back(storage: MemoryStorage, batches: SignUpBatches) -> None:
    activity_id = await published(storage)
    await volunteers(storage, "a")
    with pytest.raises(VolunteerUnknown):
        await sign_up(storage, batches, activity_id, "stranger")
    await sign_up(storage, batches, activity_id, "a")
    with pytest.raises(AlreadySignedUp):
        await sign_up(storage, batches, activity_id, "a")
    with pytest.raises(ActivityNotFound):
        await sign_up(storage, batches, "no-such-activity", "a")
    at(STARTS)
    await volunteers(storage, "b")
    with pytest.raises(SignUpClosed):
        await sign_up(storage, batches, activity_id, "b")
    assert not storage.claims, "every refused request gave its claim back"
    assert storage.activities[activity_id]["counts"][SignUpStatus.CONFIRMED.value] == 1
