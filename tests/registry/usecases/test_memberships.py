"""Membership decisions, on the in-memory ports: at most five units, one open membership per unit, pending → active
| rejected, open → left (the record stays), and the events each transition announces."""

from __future__ import annotations

import pytest

from services.registry.domain.errors import (
    AlreadyMemberError,
    ForbiddenError,
    InvalidTransitionError,
    MembershipLimitError,
    NotFoundError,
    ValidationFailedError,
)
from services.registry.domain.scope import Scope
from shared.contracts.events import VolunteerJoinedUnit, VolunteerLeftUnit
from tests.registry.usecases.builders import (
    PROVINCE,
    Registry,
    World,
    admin_of,
    leaders,
    person,
    unit_asked,
    volunteer_scope,
)


async def _teams(registry: Registry, world: World, count: int) -> list[str]:
    ids = []
    for i in range(count):
        team = await registry.units.register(
            unit_asked("分队", f"第{i}", world.city, leaders=leaders(("负责人", "分队负责人"))), PROVINCE
        )
        ids.append(team["_id"])
    return ids


async def test_a_volunteer_belongs_to_five_units_at_most(registry: Registry, world: World) -> None:
    v = await registry.volunteers.register(person(1), world.county, PROVINCE)
    teams = await _teams(registry, world, 5)
    for team in teams[:4]:
        v = await registry.volunteers.join(v["_id"], team, PROVINCE)
    assert len(v["unit_ids"]) == 5
    with pytest.raises(MembershipLimitError):
        await registry.volunteers.join(v["_id"], teams[4], PROVINCE)
    with pytest.raises(AlreadyMemberError):
        await registry.volunteers.join(v["_id"], teams[0], PROVINCE)
    v = await registry.volunteers.leave(v["_id"], teams[0], "工作调动", PROVINCE)  # leaving frees a place
    v = await registry.volunteers.join(v["_id"], teams[4], PROVINCE)
    assert len(v["unit_ids"]) == 5 and v["memberships"][teams[0]]["status"] == "left"


async def test_a_request_is_approved_or_rejected_by_the_units_side(registry: Registry, world: World) -> None:
    await registry.units.change(world.city, {"member_approval": True}, PROVINCE)
    v = await registry.volunteers.register(person(2), world.county, PROVINCE)
    asked = await registry.volunteers.join(v["_id"], world.city, _self(v["_id"]))
    assert asked["memberships"][world.city]["status"] == "pending" and world.city not in asked["unit_ids"]
    with pytest.raises(ForbiddenError):  # another city's admin decides nothing here
        await registry.volunteers.decide_membership(
            v["_id"], world.city, approve=True, reason=None, scope=admin_of(world.other_city)
        )
    with pytest.raises(ValidationFailedError):
        await registry.volunteers.decide_membership(v["_id"], world.city, approve=False, reason="", scope=PROVINCE)
    approved = await registry.volunteers.decide_membership(
        v["_id"], world.city, approve=True, reason=None, scope=admin_of(world.city)
    )
    assert approved["memberships"][world.city]["status"] == "active" and world.city in approved["unit_ids"]
    joined = registry.store.events[-1].data
    assert isinstance(joined, VolunteerJoinedUnit) and joined.unit_id == world.city
    with pytest.raises(InvalidTransitionError):  # decided once
        await registry.volunteers.decide_membership(v["_id"], world.city, approve=True, reason=None, scope=PROVINCE)


async def test_leaving_keeps_the_record_and_announces_only_an_active_membership(
    registry: Registry, world: World
) -> None:
    await registry.units.change(world.other_city, {"member_approval": True}, PROVINCE)
    v = await registry.volunteers.register(person(3), world.county, PROVINCE)
    await registry.volunteers.join(v["_id"], world.other_city, _self(v["_id"]))
    before = len(registry.store.events)
    withdrawn = await registry.volunteers.leave(v["_id"], world.other_city, None, _self(v["_id"]))
    assert withdrawn["memberships"][world.other_city]["status"] == "left"
    assert len(registry.store.events) == before  # a withdrawn request was never a membership: no event
    left = await registry.volunteers.leave(v["_id"], world.county, "退休", admin_of(world.city))
    assert left["memberships"][world.county]["reason"] == "退休" and left["unit_ids"] == []
    event = registry.store.events[-1].data
    assert isinstance(event, VolunteerLeftUnit) and event.reason == "退休"
    with pytest.raises(InvalidTransitionError):
        await registry.volunteers.leave(v["_id"], world.county, None, PROVINCE)
    with pytest.raises(NotFoundError):
        await registry.volunteers.leave(v["_id"], world.city, None, PROVINCE)


async def test_an_admin_adds_only_people_already_in_its_reach(registry: Registry, world: World) -> None:
    v = await registry.volunteers.register(person(4), world.county, PROVINCE)
    with pytest.raises(ForbiddenError):  # a stranger's record is not gained by adding them
        await registry.volunteers.join(v["_id"], world.other_city, admin_of(world.other_city))
    added = await registry.volunteers.join(v["_id"], world.city, admin_of(world.city))
    assert added["memberships"][world.city]["status"] == "active"


def _self(volunteer_id: str) -> Scope:
    """The volunteer acting for itself."""
    return volunteer_scope(f"account:{volunteer_id}", volunteer_id)
