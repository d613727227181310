"""The notice's unit rules through the registry API, on the real infrastructure: names follow the notice's patterns
on registration, edit and 附件1 import (refused with a suggestion, consistent with GET /units/suggest-name); city
societies, local universities and enterprises join their city detachment (按属地管理原则); township teams sit under
a county team and department teams under a university detachment."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.registry.adapters.spreadsheets.forms import ORGANISATIONS
from shared.settings import ServiceSettings
from tests.registry.api.test_forms_api import upload, workbook
from tests.registry.helpers import CITY_LEADERS, headers


class W:
    corps: str
    city: str
    county: str
    university: str


@pytest.fixture(scope="module")
def province(settings: ServiceSettings) -> dict[str, str]:
    return headers(settings, "province_admin", subject="province")


async def register(client: httpx.AsyncClient, body: dict[str, Any], hdrs: dict[str, str]) -> httpx.Response:
    return await client.post("/units", json=body, headers=hdrs)


async def test_setup(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    r = await register(client, {"kind": "总队", "leaders": [{"name": "张总", "role": "总队长"}]}, province)
    W.corps = r.json()["id"]
    r = await register(
        client, {"kind": "市级支队", "base": "石家庄", "parent_id": W.corps, "leaders": CITY_LEADERS}, province
    )
    assert r.status_code == 201, r.text
    W.city = r.json()["id"]


async def test_a_name_off_the_notices_pattern_is_refused_with_the_standard_name(
    client: httpx.AsyncClient, province: dict[str, str]
) -> None:
    r = await register(
        client, {"kind": "city_detachment", "name": "唐山科协志愿服务支队", "parent_id": W.corps}, province
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "name_pattern" and problem["suggestion"] == "唐山市科技志愿者支队"
    assert problem["errors"][0]["field"] == "name"
    assert "“××市科技志愿者支队”" in problem["detail"] and "建议使用“唐山市科技志愿者支队”" in problem["detail"]
    # a city detachment is named after its own city
    r = await register(
        client,
        {"kind": "city_detachment", "name": "石家庄市科技志愿者支队", "city": "唐山", "parent_id": W.corps},
        province,
    )
    assert r.status_code == 422 and r.json()["suggestion"] == "唐山市科技志愿者支队"
    county = {"kind": "county_team", "name": "正定县科技志愿服务队", "parent_id": W.city}
    r = await register(client, county, province)
    assert r.status_code == 422 and r.json()["suggestion"] == "正定县科技志愿者队"
    r = await register(client, {**county, "name": r.json()["suggestion"]}, province)
    assert r.status_code == 201, r.text
    W.county = r.json()["id"]
    listed = await client.get("/units", params={"kind": "county_team"}, headers=province)
    assert [u["name"] for u in listed.json()["items"]] == ["正定县科技志愿者队"]  # nothing stored for the refusals


async def test_city_societies_universities_and_enterprises_join_their_city_detachment(
    client: httpx.AsyncClient, province: dict[str, str], settings: ServiceSettings
) -> None:
    city_admin = headers(settings, "unit_admin", unit_id=W.city)
    for kind, name in (
        ("society_detachment", "石家庄市农学会科技志愿者支队"),
        ("university_detachment", "石家庄学院科技志愿者支队"),
        ("enterprise_detachment", "石家庄高新区科技志愿者支队"),
    ):
        r = await register(client, {"kind": kind, "name": name, "parent_id": W.city}, city_admin)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["ancestors"] == [W.corps, W.city] and body["city"] == "shijiazhuang"
        assert body["status"] == "pending"  # a city admin's registration waits for the province
    # 属地管理: a unit of another city does not join this one
    r = await register(
        client,
        {"kind": "university_detachment", "name": "唐山学院科技志愿者支队", "city": "唐山", "parent_id": W.city},
        province,
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_parent"
    assert "属地管理" in r.json()["detail"]
    # a county team is still no parent of a detachment
    r = await register(
        client, {"kind": "society_detachment", "name": "正定县农学会科技志愿者支队", "parent_id": W.county}, province
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_parent"


async def test_township_teams_under_a_county_team(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    r = await register(client, {"kind": "分队", "name": "新安镇科技志愿者分队", "parent_id": W.county}, province)
    assert r.status_code == 201, r.text
    assert r.json()["ancestors"] == [W.corps, W.city, W.county]
    r = await register(client, {"kind": "分队", "name": "新安镇", "parent_id": W.county}, province)
    assert r.status_code == 422 and r.json()["suggestion"] == "正定县科技志愿者队新安镇分队"


async def test_department_teams_under_a_university_detachment(
    client: httpx.AsyncClient, province: dict[str, str]
) -> None:
    r = await register(client, {"kind": "高校支队", "base": "河北农业大学", "parent_id": W.corps}, province)
    assert r.status_code == 201, r.text
    W.university = r.json()["id"]
    suggested = await client.get(
        "/units/suggest-name", params={"kind": "分队", "base": "农学院", "parent_id": W.university}, headers=province
    )
    assert suggested.json() == {"name": "河北农业大学科技志愿服务支队农学院分队", "available": True}
    r = await register(client, {"kind": "分队", "name": "农学院分队", "parent_id": W.university}, province)
    assert r.status_code == 422 and r.json()["suggestion"] == suggested.json()["name"]
    r = await register(client, {"kind": "分队", "name": suggested.json()["name"], "parent_id": W.university}, province)
    assert r.status_code == 201 and r.json()["ancestors"] == [W.corps, W.university]
    again = await client.get(
        "/units/suggest-name", params={"kind": "分队", "base": "农学院", "parent_id": W.university}, headers=province
    )
    assert again.json()["available"] is False


async def test_suggest_name_refuses_a_city_that_is_not_one(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    r = await client.get("/units/suggest-name", params={"kind": "市级支队", "base": "北京"}, headers=province)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "base"
    r = await client.get("/units/suggest-name", params={"kind": "市级支队", "base": "定州"}, headers=province)
    assert r.json() == {"name": "定州市科技志愿者支队", "available": True}


async def test_a_rename_follows_the_pattern(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    r = await client.patch(f"/units/{W.university}", json={"name": "河北农业大学志愿服务队"}, headers=province)
    assert r.status_code == 422 and r.json()["suggestion"] == "河北农业大学科技志愿者支队"
    r = await client.patch(
        f"/units/{W.university}", json={"name": "河北农业大学（保定）科技志愿者支队"}, headers=province
    )
    assert r.status_code == 200 and r.json()["name"] == "河北农业大学（保定）科技志愿者支队"


async def test_an_organisation_import_checks_every_rows_name(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    city_admin = headers(settings, "unit_admin", unit_id=W.city)
    good = {
        "name": "行唐县科技志愿者队",
        "kind": "县（市、区）科技志愿者队",
        "parent_name": "石家庄市科技志愿者支队",
        "leader_name": "孙队长",
        "leader_role": "队长",
        "phone": "0311-82345678",
    }
    rows = [
        good,
        {**good, "name": "灵寿县志愿服务队"},
        {**good, "name": "口头镇", "kind": "分队", "parent_name": "行唐县科技志愿者队", "leader_role": "分队负责人"},
        {**good, "name": "石家庄市医学会", "kind": "学会支队", "leader_role": "支队长"},
        # 属地管理: a society of another city does not join this city detachment
        {**good, "name": "唐山市医学会科技志愿者支队", "kind": "学会支队", "leader_role": "支队长", "city": "唐山市"},
    ]
    r = await upload(client, "organisations", workbook(ORGANISATIONS, rows), city_admin)
    assert r.status_code == 422, r.text
    errors = {e["row"]: e for e in r.json()["errors"]}
    assert set(errors) == {3, 4, 5, 6}, r.text
    assert all(errors[row]["column"] == "组织名称" for row in (3, 4, 5))
    assert errors[6]["column"] == "上级组织名称" and "属地管理" in errors[6]["message"]
    assert "建议使用“灵寿县科技志愿者队”" in errors[3]["message"]
    assert "建议使用“行唐县科技志愿者队口头镇分队”" in errors[4]["message"]  # its parent is a row of the same file
    assert "建议使用“石家庄市医学会科技志愿者支队”" in errors[5]["message"]
    fixed = [good, {**rows[1], "name": "灵寿县科技志愿者队"}, {**rows[2], "name": "行唐县科技志愿者队口头镇分队"}]
    ok = await upload(client, "organisations", workbook(ORGANISATIONS, fixed), city_admin)
    assert ok.status_code == 200 and ok.json()["created"] == 3, ok.text
