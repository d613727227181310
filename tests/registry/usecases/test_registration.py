"""Registration decisions, on the in-memory ports: units (who registers what, pending or active, one corps, one
name), leader gaps as information, and one person once (what a second registration is told, and what it costs)."""

from __future__ import annotations

import pytest

from services.registry.domain.errors import (
    CorpsExistsError,
    DuplicateNameError,
    DuplicatePersonError,
    ForbiddenError,
    InvalidParentError,
    QuotaExceededError,
    ValidationFailedError,
)
from services.registry.domain.records import compliance
from services.registry.usecases.units import UnitEdit
from shared.contracts.events import UnitRegistered, UnitUpdated, VolunteerJoinedUnit, VolunteerRegistered
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


async def test_the_province_registers_the_corps_once_and_active(registry: Registry, world: World) -> None:
    corps = await registry.units.unit(world.corps)
    assert corps["name"] == "河北省科技志愿者总队" and corps["status"] == "active"
    with pytest.raises(CorpsExistsError):
        await registry.units.register(unit_asked("总队", "", leaders=leaders(("李总", "总队长"))), PROVINCE)
    assert [type(e.data) for e in registry.store.events[:2]] == [UnitRegistered, UnitRegistered]


async def test_a_unit_admin_registers_below_its_unit_pending_and_the_parent_side_decides(
    registry: Registry, world: World
) -> None:
    city_admin = admin_of(world.city)
    team = await registry.units.register(
        unit_asked("分队", "新安镇", world.county, leaders=leaders(("沈老师", "分队负责人"))), city_admin
    )
    assert team["name"] == "正定县科技志愿者队新安镇分队" and team["status"] == "pending"
    assert team["ancestors"] == [world.corps, world.city, world.county]
    assert team["city"] == "shijiazhuang"  # inherited: the city detachment named 石家庄市科技志愿者支队 is 石家庄's
    with pytest.raises(ForbiddenError):  # the registrar's own unit does not approve its own registration
        await registry.units.decide(team["_id"], approve=True, reason=None, scope=city_admin)
    with pytest.raises(ValidationFailedError):  # a rejection needs its reason
        await registry.units.decide(team["_id"], approve=False, reason=" ", scope=PROVINCE)
    rejected = await registry.units.decide(team["_id"], approve=False, reason="材料不全", scope=PROVINCE)
    assert rejected["status"] == "rejected" and rejected["reason"] == "材料不全"
    assert isinstance(registry.store.events[-1].data, UnitUpdated)
    assert "正定县科技志愿者队新安镇分队" not in registry.store.names  # a rejection frees the name


async def test_nobody_registers_outside_its_reach_or_against_the_hierarchy(registry: Registry, world: World) -> None:
    with pytest.raises(ForbiddenError):  # another city's admin
        await registry.units.register(
            unit_asked("县级队", "滦州市", world.city, leaders=leaders(("甲", "队长"))), admin_of(world.other_city)
        )
    with pytest.raises(InvalidParentError):  # a county team sits under a city detachment, not under the corps
        await registry.units.register(
            unit_asked("县级队", "某县", world.corps, leaders=leaders(("甲", "队长"))), PROVINCE
        )
    with pytest.raises(DuplicateNameError):
        await registry.units.register(
            unit_asked("县级队", "正定县", world.city, leaders=leaders(("甲", "队长"))), PROVINCE
        )


async def test_missing_leaders_are_information_and_a_wrong_post_an_error(registry: Registry, world: World) -> None:
    team = await registry.units.register(
        unit_asked("县级队", "行唐县", world.city, leaders=leaders(("甲", "队长"))), PROVINCE
    )
    assert compliance(team)["leader_gaps"] == ["副队长应为2–3名，现有0名"]
    with pytest.raises(ValidationFailedError) as caught:
        await registry.units.register(
            unit_asked("县级队", "灵寿县", world.city, leaders=leaders(("乙", "支队长"))), PROVINCE
        )
    assert caught.value.errors[0].field == "leaders[0].role"
    edited = await registry.units.edit(
        team["_id"],
        UnitEdit(sent=frozenset({"leaders"}), leaders=leaders(("甲", "队长"), ("丙", "副队长"), ("丁", "副队长"))),
        PROVINCE,
    )
    assert compliance(edited)["leader_gaps"] == [] and edited["version"] == 2
    assert registry.store.events[-1].data.changed == ["leaders"]


async def test_a_volunteer_registers_once_with_a_platform_number_and_events(registry: Registry, world: World) -> None:
    doc = await registry.volunteers.register(person(1), world.county, admin_of(world.county))
    assert doc["platform_number"] == "HB2026000001" and doc["unit_ids"] == [world.county]
    assert doc["scope_units"] == [world.corps, world.city, world.county]
    assert "id_cipher" not in doc and doc["id_masked"].startswith("13") and "*" in doc["id_masked"]
    kinds = [type(e.data) for e in registry.store.events if e.subject == doc["_id"]]
    assert kinds == [VolunteerRegistered, VolunteerJoinedUnit]


async def test_a_second_registration_of_a_person_is_told_what_the_caller_may_see(
    registry: Registry, world: World
) -> None:
    await registry.volunteers.register(person(1), world.county, admin_of(world.county))
    with pytest.raises(DuplicatePersonError) as seen:  # the city above sees the person: number and unit
        await registry.volunteers.register(person(1), world.city, admin_of(world.city))
    assert seen.value.platform_number == "HB2026000001" and seen.value.unit_names == ("正定县科技志愿者队",)
    assert registry.store.seq == 1 and registry.ledger.charged == []
    with pytest.raises(DuplicatePersonError) as elsewhere:  # another city: that it exists, nothing more
        await registry.volunteers.register(person(1), world.other_city, admin_of(world.other_city))
    assert elsewhere.value.elsewhere and elsewhere.value.platform_number is None and not elsewhere.value.unit_names
    assert registry.ledger.charged == [(f"admin:{world.other_city}", 1, "register")]


async def test_answers_about_numbers_registered_elsewhere_are_bounded_per_day(registry: Registry, world: World) -> None:
    for seq in range(1, 5):
        await registry.volunteers.register(person(seq), world.county, admin_of(world.county))
    stranger = admin_of(world.other_city)
    for seq in range(1, 4):  # the ledger allows 3 a day
        with pytest.raises(DuplicatePersonError):
            await registry.volunteers.register(person(seq), world.other_city, stranger)
    with pytest.raises(QuotaExceededError):
        await registry.volunteers.register(person(4), world.other_city, stranger)


async def test_a_volunteer_asks_to_join_a_unit_that_approves_its_members(registry: Registry, world: World) -> None:
    await registry.units.change(world.county, {"member_approval": True}, PROVINCE)
    doc = await registry.volunteers.register(person(7), world.county, volunteer_scope("account:7"))
    assert doc["memberships"][world.county]["status"] == "pending" and doc["unit_ids"] == []
    assert doc["account"] == "account:7"
    with pytest.raises(ForbiddenError):  # registered already: no second record
        await registry.volunteers.register(person(8), world.county, volunteer_scope("account:7", doc["_id"]))
