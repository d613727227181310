"""Moving a unit to another parent, on the in-memory ports: who may (the level above), where to (the hierarchy),
and that the subtree's ancestors, the city and the volunteers' scope follow — in chunks, resumable, idempotent."""

from __future__ import annotations

import pytest

from services.registry.domain.errors import ForbiddenError, InvalidParentError, NotFoundError, ValidationFailedError
from services.registry.usecases.moves import Moves
from shared.contracts.events import UnitUpdated
from tests.registry.usecases.builders import PROVINCE, Registry, World, admin_of, leaders, person, unit_asked

HEAD = leaders(("负责人", "分队负责人"))


async def _setup(registry: Registry, world: World) -> tuple[str, str, str]:
    """A township sub-team under the county team, and a second county team under the same city; a volunteer in the
    sub-team. Returns (sub_team, second county, volunteer)."""
    units = registry.units
    sub = await units.register(unit_asked("分队", "新安镇", world.county, leaders=HEAD), PROVINCE)
    second = await units.register(unit_asked("县级队", "藁城区", world.city), PROVINCE)
    v = await registry.volunteers.register(person(1), sub["_id"], PROVINCE)
    return sub["_id"], second["_id"], v["_id"]


async def test_the_province_moves_a_county_team_to_another_city_with_everything_below(
    registry: Registry, world: World
) -> None:
    sub, _, volunteer = await _setup(registry, world)
    moves = Moves(registry.store, chunk=1)  # one document per chunk: the cursor is exercised
    before = len(registry.store.events)
    moved, job = await moves.move(world.county, world.other_city, "行政区划调整", PROVINCE)
    assert moved["parent_id"] == world.other_city and moved["ancestors"] == [world.corps, world.other_city]
    assert moved["city"] == "tangshan" and moved["moves"][0]["reason"] == "行政区划调整"
    assert job["state"] == "units"
    # the volunteers' scope is not there yet: the propagation does it
    assert world.city in registry.store.volunteers[volunteer]["scope_units"]
    await moves.propagate(job)
    below = registry.store.units[sub]
    assert below["ancestors"] == [world.corps, world.other_city, world.county] and below["city"] == "tangshan"
    record = registry.store.volunteers[volunteer]
    assert record["memberships"][sub]["path"] == [world.corps, world.other_city, world.county, sub]
    assert world.city not in record["scope_units"] and world.other_city in record["scope_units"]
    events = [e.data for e in registry.store.events[before:] if isinstance(e.data, UnitUpdated)]
    assert {(e.unit_id, tuple(e.changed)) for e in events} == {
        (world.county, ("ancestors", "city", "parent_id")),
        (sub, ("ancestors", "city")),
    }
    assert registry.store.moves[job["_id"]]["state"] == "done"
    # what each city admin now reaches
    with pytest.raises(ForbiddenError):
        await registry.units.get(sub, admin_of(world.city))
    assert (await registry.units.get(sub, admin_of(world.other_city)))["_id"] == sub


async def test_a_move_interrupted_mid_way_is_resumed_and_changes_nothing_twice(
    registry: Registry, world: World
) -> None:
    sub, _, volunteer = await _setup(registry, world)
    moves = Moves(registry.store, chunk=1)
    _, job = await moves.move(world.county, world.other_city, "行政区划调整", PROVINCE)
    # the process "dies" after the units: the job is left open at the volunteers' state
    await moves._passes(dict(job), moves._units_chunk)
    registry.store.moves[job["_id"]].update(state="volunteers", after=None)
    assert world.city in registry.store.volunteers[volunteer]["scope_units"]
    events = len(registry.store.events)
    assert await moves.resume() == 1
    assert world.city not in registry.store.volunteers[volunteer]["scope_units"]
    assert len(registry.store.events) == events  # the units were done: no event again
    assert await moves.resume() == 0
    version = registry.store.units[sub]["version"]
    await moves.propagate({**job, "state": "units", "after": None})  # a chunk done twice changes nothing
    assert registry.store.units[sub]["version"] == version


async def test_the_level_above_moves_a_unit(registry: Registry, world: World) -> None:
    sub, second, _ = await _setup(registry, world)
    moves = Moves(registry.store)
    # the city detachment moves a township team between its own county teams
    moved, job = await moves.move(sub, second, "乡镇划归藁城区", admin_of(world.city))
    assert moved["ancestors"] == [world.corps, world.city, second]
    await moves.propagate(job)
    # a county team does not move itself, nor a unit beside it; nor a city admin to another city
    with pytest.raises(ForbiddenError):
        await moves.move(second, world.city, "x", admin_of(second))
    with pytest.raises(ForbiddenError):
        await moves.move(sub, world.county, "x", admin_of(world.county))
    with pytest.raises(ForbiddenError):
        await moves.move(world.county, world.other_city, "x", admin_of(world.city))


async def test_a_move_the_hierarchy_forbids_is_refused(registry: Registry, world: World) -> None:
    sub, second, _ = await _setup(registry, world)
    moves = Moves(registry.store)
    cases = [
        (world.corps, world.city, "总队是最高一级"),
        (world.county, sub, "它自己或它的下级"),
        (world.county, world.county, "它自己或它的下级"),
        (world.county, world.city, "已在"),
        (world.county, world.corps, "上级组织应为市级科技志愿者支队"),
        (sub, world.corps, "上级组织应为"),
    ]
    for unit, parent, text in cases:
        with pytest.raises(InvalidParentError) as refused:
            await moves.move(unit, parent, "调整", PROVINCE)
        assert text in refused.value.message and refused.value.errors[0].field == "new_parent_id"
    with pytest.raises(ValidationFailedError) as no_reason:
        await moves.move(sub, second, "  ", PROVINCE)
    assert no_reason.value.errors[0].field == "reason"
    with pytest.raises(NotFoundError):
        await moves.move(sub, "u-none", "调整", PROVINCE)
