"""Import planning and commit, on the in-memory ports: what an upload would do against the stored data (new, unchanged,
refused rows), that a file with any wrong row imports nothing, and that a good one imports whole."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from services.registry.domain.contact import ContactPerson
from services.registry.domain.errors import RowsInvalidError
from services.registry.domain.imports import ContactRow, FormKind, OrganisationRow, ParsedForm, VolunteerRow
from services.registry.domain.leaders import Leader
from services.registry.domain.units import UnitProfile
from services.registry.domain.volunteers import validate_volunteer
from shared.contracts.events import UnitRegistered, VolunteerRegistered
from shared.vocabulary import LeaderRole, UnitKind
from tests.registry.usecases.builders import PROVINCE, Registry, World, admin_of, person

R = TypeVar("R", bound=BaseModel)
HEADERS = {"name": "组织名称", "kind": "组织类型", "parent_name": "上级组织名称", "unit_name": "所属队伍"}


def parsed(form: FormKind, rows: Sequence[R]) -> ParsedForm[R]:
    """An upload whose rows passed the file's own checks (rows 2, 3, …)."""
    numbers = list(range(2, len(rows) + 2))
    return ParsedForm(form, "表", list(rows), numbers, [], len(rows), {**HEADERS, "id_number": "身份证号码"})


def organisation(name: str, kind: UnitKind, parent: str | None, head: LeaderRole) -> OrganisationRow:
    profile = UnitProfile(name=name, kind=kind, leaders=[Leader(name="负责人", role=head)])
    return OrganisationRow(profile=profile, parent_name=parent)


def volunteer(seq: int, unit_name: str | None = None) -> VolunteerRow:
    return VolunteerRow(profile=validate_volunteer(person(seq)), unit_name=unit_name)


async def test_organisations_resolve_parents_in_the_file_and_refuse_what_cannot_be(
    registry: Registry, world: World
) -> None:
    city = "石家庄市科技志愿者支队"
    rows = [
        organisation("灵寿县科技志愿者队新安镇分队", UnitKind.SUB_TEAM, "灵寿县科技志愿者队", LeaderRole.SUB_TEAM_HEAD),
        organisation("灵寿县科技志愿者队", UnitKind.COUNTY_TEAM, city, LeaderRole.TEAM_CHIEF),  # parent stored
        organisation("某县科技志愿者队", UnitKind.COUNTY_TEAM, "不存在的支队", LeaderRole.TEAM_CHIEF),
        organisation("甲分队", UnitKind.SUB_TEAM, "乙分队", LeaderRole.SUB_TEAM_HEAD),  # a cycle
        organisation("乙分队", UnitKind.SUB_TEAM, "甲分队", LeaderRole.SUB_TEAM_HEAD),
    ]
    plan = await registry.imports.planner(PROVINCE).organisations(parsed(FormKind.ORGANISATIONS, rows))
    created = {doc["name"]: doc for doc in plan.created}
    assert set(created) == {"灵寿县科技志愿者队新安镇分队", "灵寿县科技志愿者队"}
    county = created["灵寿县科技志愿者队"]
    assert created["灵寿县科技志愿者队新安镇分队"]["ancestors"] == [world.corps, world.city, county["_id"]]
    errors = {(e.row, e.column): e.message for e in plan.errors}
    assert errors[(4, "上级组织名称")] == "上级组织“不存在的支队”未在平台注册，本表中也没有无误的该组织行"
    assert "上级组织关系形成了循环" in {errors.get((5, "上级组织名称")), errors.get((6, "上级组织名称"))}


async def test_a_file_with_a_wrong_row_imports_nothing_and_a_good_one_whole(registry: Registry, world: World) -> None:
    good = organisation("灵寿县科技志愿者队", UnitKind.COUNTY_TEAM, "石家庄市科技志愿者支队", LeaderRole.TEAM_CHIEF)
    bad = organisation("某队", UnitKind.COUNTY_TEAM, "唐山市科技志愿者支队", LeaderRole.TEAM_CHIEF)
    city_admin = admin_of(world.city)
    units_before = len(registry.store.units)
    with pytest.raises(RowsInvalidError) as refused:  # the other city is out of the city admin's reach
        await registry.imports.upload(
            parsed(FormKind.ORGANISATIONS, [good, bad]), city_admin, dry_run=False, unit_id=None
        )
    assert refused.value.errors == [
        {"sheet": "表", "row": 3, "column": "上级组织名称", "message": "无权在“唐山市科技志愿者支队”下注册组织"}
    ]
    assert len(registry.store.units) == units_before
    outcome = await registry.imports.upload(
        parsed(FormKind.ORGANISATIONS, [good]), city_admin, dry_run=False, unit_id=None
    )
    assert (outcome.created, outcome.unchanged, outcome.errors) == (1, 0, [])
    assert isinstance(registry.store.events[-1].data, UnitRegistered)
    again = await registry.imports.upload(
        parsed(FormKind.ORGANISATIONS, [good]), city_admin, dry_run=True, unit_id=None
    )
    assert (again.created, again.unchanged) == (0, 1)  # a re-upload of the same file imports nothing new


async def test_volunteer_rows_against_the_people_already_registered(registry: Registry, world: World) -> None:
    await registry.volunteers.register(person(1), world.county, PROVINCE)
    await registry.volunteers.register(person(2), world.other_city, PROVINCE)
    county_admin = admin_of(world.county)
    rows = [volunteer(1), volunteer(2), volunteer(3), volunteer(4, "不存在的队")]
    outcome = await registry.imports.upload(parsed(FormKind.VOLUNTEERS, rows), county_admin, dry_run=True, unit_id=None)
    assert (outcome.created, outcome.unchanged) == (1, 1)  # row 2 is unchanged, row 4 new
    assert [(e.row, e.column) for e in outcome.errors] == [(3, "身份证号码"), (5, "所属队伍")]
    assert outcome.errors[0].message == "该身份证号码已在其他单位注册，不能重复注册"  # no number, no unit
    assert registry.ledger.charged == [(f"admin:{world.county}", 1, "import_dry_run")]


async def test_a_volunteer_import_registers_every_row_with_one_event_each(registry: Registry, world: World) -> None:
    rows = [volunteer(seq) for seq in range(10, 15)]
    outcome = await registry.imports.upload(
        parsed(FormKind.VOLUNTEERS, rows), admin_of(world.county), dry_run=False, unit_id=None
    )
    assert outcome.created == 5
    stored = sorted(registry.store.volunteers.values(), key=lambda d: d["_id"])
    assert [d["platform_number"] for d in stored] == [f"HB202600000{n}" for n in range(1, 6)]
    assert all(d["unit_ids"] == [world.county] and d["id_cipher"].startswith("enc:") for d in stored)
    events = [e.data for e in registry.store.events if isinstance(e.data, VolunteerRegistered)]
    assert len(events) == 5 and all(e.unit_ids == [world.county] for e in events)


async def test_contact_rows_update_only_what_changed(registry: Registry, world: World) -> None:
    contact = ContactPerson(name="王联系", post="科普部部长", mobile="13700137000", email="c@example.com")
    rows: list[Any] = [
        ContactRow(unit_name="正定县科技志愿者队", contact=contact),
        ContactRow(unit_name="唐山市科技志愿者支队", contact=contact),
    ]
    county_admin = admin_of(world.city)
    with pytest.raises(RowsInvalidError):
        await registry.imports.upload(parsed(FormKind.CONTACTS, rows), county_admin, dry_run=False, unit_id=None)
    outcome = await registry.imports.upload(
        parsed(FormKind.CONTACTS, rows[:1]), county_admin, dry_run=False, unit_id=None
    )
    assert outcome.updated == 1 and (await registry.units.unit(world.county))["contact"] == contact.model_dump()
    again = await registry.imports.upload(parsed(FormKind.CONTACTS, rows[:1]), county_admin, dry_run=True, unit_id=None)
    assert (again.updated, again.unchanged) == (0, 1)
