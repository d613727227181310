"""An activity's life on the in-memory port: the life cycle and its events, completion with everyone's hours,
cancellation with a reason telling whoever holds or waits for a place, scope, drafts, demands."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.activities.domain import (
    ActivityNotFound,
    ActivityValidationError,
    CancelReasonRequired,
    DemandNotFound,
    DemandStatus,
    InvalidTransition,
    NotUnitAdmin,
    checkin_code,
)
from services.activities.usecases import activities, attendance, demands, search, signups
from services.activities.usecases.batches import SignUpBatches
from shared.identity import Identity
from tests.activities.usecases.conftest import (
    ADMIN,
    PROVINCE,
    SECRET,
    STARTS,
    at,
    details,
    kinds,
    published,
    volunteer,
    volunteers,
)
from tests.activities.usecases.memory import MemoryStorage

OTHER = Identity(subject="admin-unit-2", role="unit_admin", unit_id="unit-2")


async def test_life_cycle_with_its_events(storage: MemoryStorage, batches: SignUpBatches) -> None:
    activity_id = await published(storage, capacity=2)
    await volunteers(storage, "a", "b")
    for v in "ab":
        await signups.sign_up(storage, batches, activity_id, volunteer(v), None)
    at(STARTS)
    await activities.start(storage, activity_id, ADMIN)
    code = checkin_code(activity_id, SECRET)
    await attendance.attend(storage, activity_id, volunteer("a"), attendance.Presence("in", code=code), SECRET)
    at(STARTS + timedelta(hours=2))
    await attendance.attend(storage, activity_id, volunteer("a"), attendance.Presence("out", code=code), SECRET)
    done = await activities.complete(storage, activity_id, ADMIN)
    assert done.activity.status.value == "completed"
    assert kinds(storage) == [
        "activity.published",
        "activity.volunteer_signed_up",
        "activity.volunteer_signed_up",
        "activity.attendance_recorded",
        "activity.attendance_recorded",
        "activity.completed",
    ]
    completed = storage.events[-1].data.model_dump()
    assert [(p["volunteer_id"], p["hours"]) for p in completed["participants"]] == [("a", 2.0)]
    assert completed["total_hours"] == 2.0
    with pytest.raises(InvalidTransition):
        await activities.cancel(storage, activity_id, "太晚了", ADMIN)


async def test_completion_follows_the_life_cycle(storage: MemoryStorage) -> None:
    activity_id = await published(storage)
    with pytest.raises(InvalidTransition):
        await activities.complete(storage, activity_id, ADMIN)


async def test_cancellation_needs_a_reason_and_tells_those_holding_or_waiting(
    storage: MemoryStorage, batches: SignUpBatches
) -> None:
    activity_id = await published(storage, capacity=1)
    await volunteers(storage, "a", "b", "c")
    for v in "abc":
        await signups.sign_up(storage, batches, activity_id, volunteer(v), None)
    await signups.cancel(storage, activity_id, "c", volunteer("c"))
    with pytest.raises(CancelReasonRequired):
        await activities.cancel(storage, activity_id, " ", ADMIN)
    cancelled = await activities.cancel(storage, activity_id, "天气原因", ADMIN)
    assert (cancelled.activity.status.value, cancelled.activity.cancel_reason) == ("cancelled", "天气原因")
    told = storage.events[-1].data.model_dump()["signed_up_volunteer_ids"]
    assert told == ["a", "b"]


async def test_only_the_organisers_manage_and_drafts_stay_theirs(storage: MemoryStorage) -> None:
    storage.units = {"unit-1": ["top"], "sub-1": ["top", "unit-1"], "unit-2": ["top"]}
    draft = await activities.create(storage, details(unit_id="sub-1"), ADMIN)
    with pytest.raises(NotUnitAdmin):
        await activities.publish(storage, draft.activity.id, OTHER)
    with pytest.raises(NotUnitAdmin):
        await activities.create(storage, details(), OTHER)
    with pytest.raises(ActivityNotFound):
        await activities.get(storage, draft.activity.id, volunteer("a"))
    assert (await search.find(storage, search.Listing(), ADMIN, 0, 10)).total == 1
    assert (await search.find(storage, search.Listing(), OTHER, 0, 10)).total == 0
    assert (await search.find(storage, search.Listing(status="draft"), OTHER, 0, 10)).total == 0
    assert (await search.find(storage, search.Listing(), PROVINCE, 0, 10)).total == 1


async def test_an_invalid_activity_is_refused_with_every_violation(storage: MemoryStorage) -> None:
    with pytest.raises(ActivityValidationError) as refused:
        await activities.create(storage, details(capacity=0, ends_at=STARTS - timedelta(hours=1)), ADMIN)
    assert {v.field for v in refused.value.violations} == {"capacity", "ends_at", "signup_closes_at"}
    with pytest.raises(ActivityValidationError):
        await activities.create(storage, details(demand_ids=["no-such-demand"]), ADMIN)


async def test_demands_reach_the_units_that_can_serve_them(storage: MemoryStorage) -> None:
    storage.units = {"unit-1": ["top"], "sub-1": ["top", "unit-1"], "unit-2": ["top"]}
    new = demands.NewDemand("unit-1", "某机械厂", "焊接变形", "说明")
    recorded = await demands.record(storage, new, ADMIN)
    below = Identity(subject="admin-sub-1", role="unit_admin", unit_id="sub-1")
    assert (await demands.get(storage, recorded.demand.id, below)).demand.title == "焊接变形"
    with pytest.raises(DemandNotFound):
        await demands.get(storage, recorded.demand.id, OTHER)
    changed = await demands.change_status(storage, recorded.demand.id, DemandStatus.MATCHED, ADMIN)
    assert changed.demand.status == "matched"
    assert (await demands.find(storage, None, None, OTHER, 0, 10))[0] == 0
    assert kinds(storage) == ["demand.recorded", "demand.recorded"]
