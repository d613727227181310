"""Registry API against the real Kafka and MongoDB-protocol server: units, approval, volunteers, scope, events."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.registry.app import create_app
from services.registry.domain.units import CORPS_NAME
from services.registry.settings import RegistrySettings
from shared.contracts.events import UNITS, VOLUNTEERS
from shared.identity import HEADER, Identity, acting_as, sign_identity
from shared.settings import ServiceSettings
from tests.fixtures import read_topic, signing
from tests.registry.helpers import CITY_LEADERS, CONTACT, headers, id_number, volunteer_body


class World:
    """Units registered once for the module."""

    corps: str
    shijiazhuang: str
    tangshan: str
    county: str  # under 石家庄, registered by the province (active)


W = World()


@pytest.fixture(scope="module")
def province(settings: ServiceSettings) -> dict[str, str]:
    return headers(settings, "province_admin", subject="province")


async def post(client: httpx.AsyncClient, url: str, body: Any, hdrs: dict[str, str]) -> httpx.Response:
    return await client.post(url, json=body, headers=hdrs)


async def test_register_corps_once(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    r = await post(
        client,
        "/units",
        {"kind": "总队", "base": "", "leaders": [{"name": "张总队", "role": "总队长"}], "contact": CONTACT},
        province,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == CORPS_NAME and body["status"] == "active" and body["ancestors"] == []
    W.corps = body["id"]
    again = await post(client, "/units", {"kind": "province_corps", "name": "另一个总队"}, province)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "corps_exists"


async def test_register_city_detachments_and_refusals(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    r = await post(
        client,
        "/units",
        {"kind": "city_detachment", "base": "石家庄", "parent_id": W.corps, "leaders": CITY_LEADERS, "city": "石家庄"},
        province,
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "石家庄市科技志愿者支队"
    assert r.json()["leader_gaps"] == []
    W.shijiazhuang = r.json()["id"]
    r = await post(
        client,
        "/units",
        {"kind": "市级支队", "name": "唐山市科技志愿者支队", "parent_id": W.corps, "city": "唐山"},
        province,
    )
    assert r.status_code == 201
    assert r.json()["leader_gaps"]  # no leaders yet: shown, not refused
    W.tangshan = r.json()["id"]

    duplicate = await post(
        client, "/units", {"kind": "city_detachment", "name": "唐山市科技志愿者支队", "parent_id": W.corps}, province
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "duplicate_name"
    assert "唐山市科技志愿者支队" in duplicate.json()["detail"]

    wrong_parent = await post(
        client, "/units", {"kind": "county_team", "name": "某县科技志愿者队", "parent_id": W.corps}, province
    )
    assert wrong_parent.status_code == 422 and wrong_parent.json()["code"] == "invalid_parent"
    assert "市级科技志愿者支队" in wrong_parent.json()["detail"]

    bad = await post(
        client,
        "/units",
        {
            "kind": "city_detachment",
            "name": "廊坊市科技志愿者支队",
            "parent_id": W.corps,
            "credit_code": "91130100MA0000000X",
            "leaders": [{"name": "某人", "role": "队长"}],
            "contact": {"name": "王五", "post": "部长", "mobile": "123", "email": "bad"},
        },
        province,
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"credit_code", "leaders[0].role", "contact.mobile", "contact.email"} <= fields

    r = await post(
        client,
        "/units",
        {
            "kind": "county_team",
            "base": "正定县",
            "parent_id": W.shijiazhuang,
            "leaders": [
                {"name": "刘队长", "role": "队长"},
                {"name": "甲", "role": "副队长"},
                {"name": "乙", "role": "副队长"},
            ],
        },
        province,
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "正定县科技志愿者队"
    assert r.json()["ancestors"] == [W.corps, W.shijiazhuang]
    assert r.json()["city"] == "shijiazhuang"  # inherited from the city detachment
    W.county = r.json()["id"]


async def test_suggest_name(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    r = await client.get("/units/suggest-name", params={"kind": "city_detachment", "base": "唐山"}, headers=province)
    assert r.json() == {"name": "唐山市科技志愿者支队", "available": False}
    r = await client.get("/units/suggest-name", params={"kind": "高校支队", "base": "河北大学"}, headers=province)
    assert r.json() == {"name": "河北大学科技志愿者支队", "available": True}


async def test_unit_admin_registration_waits_for_approval(client: httpx.AsyncClient, settings: ServiceSettings) -> None:
    city_admin = headers(settings, "unit_admin", unit_id=W.shijiazhuang)
    r = await post(
        client,
        "/units",
        {"kind": "county_team", "name": "藁城区科技志愿者队", "parent_id": W.shijiazhuang},
        city_admin,
    )
    assert r.status_code == 201 and r.json()["status"] == "pending"
    pending = r.json()["id"]
    # the registrar cannot approve its own registration, nor a unit beside it
    own = await client.post(f"/units/{pending}/approve", headers=city_admin)
    assert own.status_code == 403
    beside = await client.post(f"/units/{pending}/approve", headers=headers(settings, "unit_admin", unit_id=W.tangshan))
    assert beside.status_code == 403
    # a unit above the registrar (the corps' admin) approves
    ok = await client.post(f"/units/{pending}/approve", headers=headers(settings, "unit_admin", unit_id=W.corps))
    assert ok.status_code == 200 and ok.json()["status"] == "active" and ok.json()["version"] == 2
    twice = await client.post(f"/units/{pending}/approve", headers=headers(settings, "province_admin"))
    assert twice.status_code == 409 and twice.json()["code"] == "invalid_transition"

    r = await post(
        client, "/units", {"kind": "county_team", "name": "鹿泉区科技志愿者队", "parent_id": W.shijiazhuang}, city_admin
    )
    second = r.json()["id"]
    province = headers(settings, "province_admin")
    no_reason = await client.post(f"/units/{second}/reject", json={"reason": " "}, headers=province)
    assert no_reason.status_code == 422
    rejected = await client.post(f"/units/{second}/reject", json={"reason": "名称不规范"}, headers=province)
    assert rejected.json()["status"] == "rejected" and rejected.json()["reason"] == "名称不规范"
    # the rejected name is free again for a corrected registration
    again = await post(
        client, "/units", {"kind": "county_team", "name": "鹿泉区科技志愿者队", "parent_id": W.shijiazhuang}, province
    )
    assert again.status_code == 201

    # a unit admin cannot register beside or above its unit, nor a corps
    beside_reg = await post(
        client, "/units", {"kind": "county_team", "name": "丰南区科技志愿者队", "parent_id": W.tangshan}, city_admin
    )
    assert beside_reg.status_code == 403
    volunteer = await post(
        client,
        "/units",
        {"kind": "sub_team", "name": "某分队", "parent_id": W.county},
        headers(settings, "volunteer", volunteer_id="HB2026000001"),
    )
    assert volunteer.status_code == 403


async def test_tree_queries_and_scope(client: httpx.AsyncClient, settings: ServiceSettings) -> None:
    province = headers(settings, "province_admin")
    path = await client.get(f"/units/{W.county}/path", headers=province)
    assert [u["id"] for u in path.json()] == [W.corps, W.shijiazhuang, W.county]
    # a path says who the units are, nothing about their people (issue 14: leaders' mobiles, contacts, addresses)
    county_admin = headers(settings, "unit_admin", unit_id=W.county)
    mine = await client.get(f"/units/{W.county}/path", headers=county_admin)
    assert mine.status_code == 200, mine.text
    for unit in mine.json():
        assert set(unit) == {"id", "name", "kind", "kind_label"}, unit
    assert "139" not in mine.text and CONTACT["name"] not in mine.text
    robot = await client.get(f"/units/{W.county}/path", headers=headers(settings, "system"))
    assert robot.status_code == 200  # a system key reads the organisation (shared.scope.SYSTEM_READS)
    sub = await client.get(f"/units/{W.shijiazhuang}/subtree", headers=province)
    names = [u["name"] for u in sub.json()["items"]]
    assert names[0] == "石家庄市科技志愿者支队" and "正定县科技志愿者队" in names
    assert all("唐山" not in n for n in names)

    cities = await client.get("/units", params={"kind": "市级支队"}, headers=province)
    assert {u["name"] for u in cities.json()["items"]} == {"石家庄市科技志愿者支队", "唐山市科技志愿者支队"}
    by_city = await client.get("/units", params={"city": "唐山", "status": "active"}, headers=province)
    assert [u["name"] for u in by_city.json()["items"]] == ["唐山市科技志愿者支队"]
    children = await client.get("/units", params={"parent": W.corps, "limit": 1}, headers=province)
    assert len(children.json()["items"]) == 1 and children.json()["total"] == 2
    rejected = await client.get("/units", params={"status": "已驳回"}, headers=province)
    assert [u["name"] for u in rejected.json()["items"]] == ["鹿泉区科技志愿者队"]

    county_admin = headers(settings, "unit_admin", unit_id=W.county)
    mine = await client.get("/units", headers=county_admin)
    assert [u["id"] for u in mine.json()["items"]] == [W.county]
    # out of scope: a read answers 404 (nothing revealed), a write 403
    assert (await client.get(f"/units/{W.shijiazhuang}", headers=county_admin)).status_code == 404
    assert (await client.get(f"/units/{W.tangshan}/subtree", headers=county_admin)).status_code == 404
    patch = await client.patch(f"/units/{W.tangshan}", json={"phone": "0315-2222222"}, headers=county_admin)
    assert patch.status_code == 403
    assert (await client.get(f"/units/{W.county}")).status_code == 401


async def test_update_unit_leaders_and_contact(client: httpx.AsyncClient, settings: ServiceSettings) -> None:
    admin = headers(settings, "unit_admin", unit_id=W.tangshan)
    r = await client.patch(
        f"/units/{W.tangshan}",
        json={"leaders": CITY_LEADERS, "contact": CONTACT, "credit_code": "51130100MJ0000125T"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 2 and body["leader_gaps"] == [] and body["contact"]["name"] == "王联系"
    bad = await client.patch(f"/units/{W.tangshan}", json={"leaders": [{"name": "某", "role": "队长"}]}, headers=admin)
    assert bad.status_code == 422
    # a city detachment is named after its own city (the notice: “××市科技志愿者支队”): another name is refused,
    # with the standard one suggested
    for name in ("石家庄市科技志愿者支队", "唐山市科技志愿者支队（新）"):
        off = await client.patch(f"/units/{W.tangshan}", json={"name": name}, headers=admin)
        assert off.status_code == 422 and off.json()["code"] == "name_pattern", off.text
        assert off.json()["suggestion"] == "唐山市科技志愿者支队"
        assert "命名规范" in off.json()["detail"]
    province = headers(settings, "province_admin")
    taken = await client.patch(f"/units/{W.county}", json={"name": "藁城区科技志愿者队"}, headers=province)
    assert taken.status_code == 409 and taken.json()["code"] == "duplicate_name"
    renamed = await client.patch(f"/units/{W.county}", json={"name": "正定县（新）科技志愿者队"}, headers=province)
    assert renamed.json()["name"] == "正定县（新）科技志愿者队"
    off = await client.patch(f"/units/{W.county}", json={"name": "正定县志愿服务队"}, headers=province)
    assert off.status_code == 422 and off.json()["suggestion"] == "正定县科技志愿者队"
    back = await client.patch(f"/units/{W.county}", json={"name": "正定县科技志愿者队"}, headers=province)
    assert back.status_code == 200 and back.json()["name"] == "正定县科技志愿者队"
    unchanged = await client.get(f"/units/{W.tangshan}", headers=admin)
    assert unchanged.json()["name"] == "唐山市科技志愿者支队" and unchanged.json()["version"] == 2


# ------------------------------------------------------------------------------------------------ volunteers


class V:
    first: str
    self_registered: str


async def test_register_volunteer_and_refusals(client: httpx.AsyncClient, settings: ServiceSettings) -> None:
    admin = headers(settings, "unit_admin", unit_id=W.county)
    r = await post(client, "/volunteers", volunteer_body(1), admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["platform_number"].startswith("HB2026") and body["id"] == body["platform_number"]
    assert body["id_number_masked"] == id_number(1)[:2] + "*" * 16  # neither sequence nor check digit shown
    assert id_number(1) not in r.text
    assert body["unit_ids"] == [W.county] and body["memberships"][0]["status"] == "active"
    V.first = body["id"]

    bad = await post(
        client,
        "/volunteers",
        volunteer_body(2, id_number=id_number(2)[:-1] + ("0" if id_number(2)[-1] != "0" else "1"), mobile="12345"),
        admin,
    )
    assert bad.status_code == 422
    fields = {e["field"]: e["message"] for e in bad.json()["errors"]}
    assert "校验位" in fields["id_number"] and "mobile" in fields

    wrong_gender = await post(client, "/volunteers", volunteer_body(3, male=True, gender="女"), admin)
    assert wrong_gender.status_code == 422
    assert "性别" in wrong_gender.json()["errors"][0]["message"]

    missing = await post(client, "/volunteers", {"name": "张三"}, admin)
    assert missing.status_code == 422 and len(missing.json()["errors"]) >= 6

    # the same person again, even with other data and by another unit: 409 naming the unit, no second record
    dup = await post(
        client,
        "/volunteers",
        volunteer_body(1, name="另一个名字", unit_id=W.shijiazhuang),
        headers(settings, "province_admin"),
    )
    assert dup.status_code == 409 and dup.json()["code"] == "duplicate_person"
    assert dup.json()["unit_names"] == ["正定县科技志愿者队"] and "正定县科技志愿者队" in dup.json()["detail"]
    # an admin who may not see that unit learns only that the person is registered
    hidden = await post(client, "/volunteers", volunteer_body(1), headers(settings, "unit_admin", unit_id=W.tangshan))
    assert hidden.status_code == 409 and hidden.json()["unit_names"] == []
    listing = await client.get(
        "/volunteers", params={"name": "另一个名字"}, headers=headers(settings, "province_admin")
    )
    assert listing.json()["total"] == 0

    beside = await post(client, "/volunteers", volunteer_body(4, unit_id=W.tangshan), admin)
    assert beside.status_code == 403


async def test_self_registration_membership_approval_and_leaving(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    province = headers(settings, "province_admin")
    await client.patch(f"/units/{W.tangshan}", json={"member_approval": True}, headers=province)
    me = headers(settings, "volunteer", subject="wx:openid-5")
    r = await post(client, "/volunteers", volunteer_body(5, male=False, unit_id=W.tangshan), me)
    assert r.status_code == 201, r.text
    assert r.json()["unit_ids"] == [] and r.json()["memberships"][0]["status"] == "pending"
    vid = V.self_registered = r.json()["id"]
    # the volunteer sees only itself
    assert (await client.get(f"/volunteers/{vid}", headers=me)).status_code == 200
    assert (await client.get(f"/volunteers/{V.first}", headers=me)).status_code == 404
    assert (await client.get("/volunteers", headers=me)).status_code == 403
    # the unit's admin sees the pending request and approves it
    tangshan = headers(settings, "unit_admin", unit_id=W.tangshan)
    assert (await client.get(f"/volunteers/{vid}", headers=tangshan)).status_code == 200
    assert (
        await client.get(f"/volunteers/{vid}", headers=headers(settings, "unit_admin", unit_id=W.county))
    ).status_code == 404
    ok = await client.post(f"/volunteers/{vid}/units/{W.tangshan}/approve", headers=tangshan)
    assert ok.status_code == 200 and ok.json()["unit_ids"] == [W.tangshan]
    # joins a second unit (no approval needed there), then leaves it
    joined = await client.post(f"/volunteers/{vid}/units/{W.county}", headers=me)
    assert joined.status_code == 200 and set(joined.json()["unit_ids"]) == {W.tangshan, W.county}
    again = await client.post(f"/volunteers/{vid}/units/{W.county}", headers=me)
    assert again.status_code == 409 and again.json()["code"] == "already_member"
    left = await client.delete(f"/volunteers/{vid}/units/{W.county}", params={"reason": "工作调动"}, headers=me)
    assert left.status_code == 200 and left.json()["unit_ids"] == [W.tangshan]
    statuses = {m["unit_id"]: m["status"] for m in left.json()["memberships"]}
    assert statuses[W.county] == "left"
    # a county admin cannot add someone into a unit outside its scope
    outside = await client.post(
        f"/volunteers/{vid}/units/{W.shijiazhuang}", headers=headers(settings, "unit_admin", unit_id=W.county)
    )
    assert outside.status_code == 403
    # nor take into its own unit a person outside its scope (issue 14): the person asks to join as themself (the
    # unit approves), and the admin gains no access to them by trying
    county = headers(settings, "unit_admin", unit_id=W.county)
    taken = await client.post(f"/volunteers/{vid}/units/{W.county}", headers=county)
    assert taken.status_code == 403 and taken.json()["code"] == "forbidden_scope", taken.text
    assert (await client.get(f"/volunteers/{vid}", headers=county)).status_code == 404


async def test_update_and_search_volunteers(client: httpx.AsyncClient, settings: ServiceSettings) -> None:
    admin = headers(settings, "unit_admin", unit_id=W.county)
    r = await client.patch(
        f"/volunteers/{V.first}", json={"title": "教授", "title_level": "正高级", "skills": ["果树修剪"]}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "教授" and r.json()["version"] == 2
    bad = await client.patch(f"/volunteers/{V.first}", json={"mobile": "1"}, headers=admin)
    assert bad.status_code == 422
    no_id = await client.patch(f"/volunteers/{V.first}", json={"id_number": id_number(9)}, headers=admin)
    assert no_id.status_code == 422

    for seq in range(10, 14):
        assert (
            await post(client, "/volunteers", volunteer_body(seq, professional_field="临床医学"), admin)
        ).status_code == 201
    province = headers(settings, "province_admin")
    subtree = await client.get("/volunteers", params={"unit_id": W.shijiazhuang, "limit": 2}, headers=province)
    assert subtree.json()["total"] == 5 and len(subtree.json()["items"]) == 2
    medicine = await client.get("/volunteers", params={"professional_field": "医学"}, headers=province)
    assert medicine.json()["total"] == 4
    skill = await client.get("/volunteers", params={"skill": "果树修剪"}, headers=province)
    # an absurd page offset is bad input (422), not a database overflow (500)
    absurd = await client.get("/volunteers", params={"skip": 10**24}, headers=province)
    assert absurd.status_code == 422, absurd.text
    assert [v["id"] for v in skill.json()["items"]] == [V.first]
    title = await client.get("/volunteers", params={"title": "教授"}, headers=province)
    assert V.first in [v["id"] for v in title.json()["items"]]
    assert all("教授" in v["title"] for v in title.json()["items"])  # a part of the title matches (副教授 too)
    name = volunteer_body(11)["name"]
    by_name = await client.get("/volunteers", params={"name": name}, headers=province)
    assert [v["name"] for v in by_name.json()["items"]] == [name] and by_name.json()["total"] == 1
    by_surname = await client.get("/volunteers", params={"name": "志愿者", "limit": 3}, headers=province)
    assert by_surname.json()["total"] >= 5 and len(by_surname.json()["items"]) == 3
    # filters combine: a subtree and a professional field
    both = await client.get(
        "/volunteers", params={"unit_id": W.county, "professional_field": "临床医学"}, headers=province
    )
    assert both.json()["total"] == 4
    outside = await client.get(
        "/volunteers", params={"unit_id": W.tangshan, "professional_field": "临床医学"}, headers=province
    )
    assert outside.json()["total"] == 0
    scoped = await client.get("/volunteers", headers=headers(settings, "unit_admin", unit_id=W.tangshan))
    assert [v["id"] for v in scoped.json()["items"]] == [V.self_registered]
    assert all(id_number(s) not in json.dumps(v) for v in subtree.json()["items"] for s in range(20))


async def test_every_listing_is_the_collections_own_answer(
    app: FastAPI, client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    """Listings are indexed queries; the same questions asked of the collection in the plainest terms (the subtree
    by scope_units, a part of a text by an unanchored regex, a whole skill) give the same pages and totals."""
    province = headers(settings, "province_admin")
    asks: list[tuple[dict[str, Any], str | None]] = [  # (question, the asking unit admin's unit; None: the province)
        ({}, None),
        ({"limit": 2, "skip": 1}, None),
        ({"unit_id": W.shijiazhuang}, None),
        ({"unit_id": W.tangshan}, None),
        ({"unit_id": W.county, "professional_field": "临床医学", "limit": 3}, None),
        ({"professional_field": "医学"}, None),  # a part of the field
        ({"name": "志愿者", "title": "副教授"}, None),
        ({"title": "教授"}, None),  # 副教授 too
        ({"name": volunteer_body(12)["name"][1:]}, None),  # a part of the name, not its start
        ({"name": "志愿者一二三"}, None),  # longer than an indexed name term: found by its start, checked whole
        ({"skill": "果树修剪"}, None),
        ({"skill": "果树"}, None),  # a skill matches whole
        ({"skill": "病虫害防治", "skip": 2}, None),
        ({}, W.county),
        ({"name": volunteer_body(12)["name"]}, W.county),
        ({}, W.tangshan),
        ({"unit_id": W.corps, "limit": 200}, None),
    ]
    volunteers = app.state.registry.db["volunteers"]
    answers = []
    for params, asker in asks:
        who = province if asker is None else headers(settings, "unit_admin", unit_id=asker)
        r = await client.get("/volunteers", params=params, headers=who)
        assert r.status_code == 200, r.text
        answers.append(r.json())
        # the collection's own answer to the same question
        units = [x for x in (asker, params.get("unit_id")) if x]
        conditions: list[dict[str, Any]] = [{"scope_units": u} for u in units]
        conditions += [
            {k: {"$regex": re.escape(params[k])}} for k in ("name", "professional_field", "title") if k in params
        ]
        conditions += [{"skills": params["skill"]}] if "skill" in params else []
        query = {"$and": conditions} if conditions else {}
        skip, limit = params.get("skip", 0), params.get("limit", 50)
        ids = [d["_id"] async for d in volunteers.find(query, {"_id": 1}).sort("_id", 1).skip(skip).limit(limit)]
        assert [v["id"] for v in r.json()["items"]] == ids, params
        assert r.json()["total"] == await volunteers.count_documents(query), params
    assert answers[0]["total"] >= 6 and answers[2]["total"] == 5, "the listings are not empty"
    assert answers[5]["total"] >= 4 and answers[7]["total"] >= 1 and answers[8]["total"] >= 1
    assert answers[11]["total"] == 0

    # A registry started afresh over the same database answers at once, and the same (no start-up scan).
    fresh = create_app(RegistrySettings(**settings.model_dump()))
    async with fresh.router.lifespan_context(fresh):
        transport = httpx.ASGITransport(fresh)
        async with httpx.AsyncClient(transport=transport, auth=signing(fresh), base_url="http://registry") as again:
            for (params, asker), expected in zip(asks, answers, strict=True):
                who = province if asker is None else headers(settings, "unit_admin", unit_id=asker)
                r = await again.get("/volunteers", params=params, headers=who)
                assert r.json() == expected, params


async def test_events_published_without_personal_data(settings: ServiceSettings) -> None:
    unit_records = await read_topic(settings.kafka_bootstrap, settings.topic(UNITS), expect=12)
    unit_events = [json.loads(r.value) for r in unit_records]
    types = [e["type"] for e in unit_events]
    assert types.count("stvs.unit.registered.v1") >= 7 and "stvs.unit.updated.v1" in types
    tangshan = [e["data"] for e in unit_events if e["subject"] == W.tangshan]
    assert [e["version"] for e in tangshan] == sorted(e["version"] for e in tangshan)
    last = tangshan[-1]
    assert last["leader_counts"] == {"支队长": 1, "副支队长": 3, "秘书长": 1}
    assert last["contact"] == {"name": "王联系", "email": "contact@example.com"}
    county = next(e["data"] for e in unit_events if e["subject"] == W.county)
    assert county["ancestors"] == [W.corps, W.shijiazhuang]

    records = await read_topic(settings.kafka_bootstrap, settings.topic(VOLUNTEERS), expect=12)
    events = [json.loads(r.value) for r in records]
    types = [e["type"] for e in events]
    assert types.count("stvs.volunteer.registered.v1") == 6
    assert "stvs.volunteer.updated.v1" in types and "stvs.volunteer.left_unit.v1" in types
    assert types.count("stvs.volunteer.joined_unit.v1") >= 7
    updated = next(e["data"] for e in events if e["type"] == "stvs.volunteer.updated.v1")
    assert updated["volunteer_id"] == V.first and updated["version"] == 2 and updated["title"] == "教授"
    assert set(updated["changed"]) == {"title", "title_level", "skills"}
    assert types.count("stvs.volunteer.updated.v1") == 1  # the refused updates emitted nothing
    left = next(e["data"] for e in events if e["type"] == "stvs.volunteer.left_unit.v1")
    assert left == {**left, "volunteer_id": V.self_registered, "unit_id": W.county, "reason": "工作调动"}
    raw = b"".join(r.value for r in records) + b"".join(r.value for r in unit_records)
    for seq in range(20):
        assert id_number(seq).encode() not in raw
        assert f"139{seq:08d}".encode() not in raw


async def test_volunteers_stored_before_the_indexed_fields_are_found_after_a_start(
    app: FastAPI, client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    """Volunteers written by an older registry (no id_hash, no name_terms, their title not in the vocabulary):
    the next start's backfill gives them their keys, so searches find them and the person stays registered once."""
    admin = headers(settings, "unit_admin", unit_id=W.county)
    old = [
        (await post(client, "/volunteers", volunteer_body(seq, name="欧阳老档", title="老职称"), admin)).json()["id"]
        for seq in (40, 41)
    ]
    db = app.state.registry.db
    await db["volunteers"].update_many({"_id": {"$in": old}}, {"$unset": {"id_hash": "", "name_terms": ""}})
    await db["vocabulary"].delete_many({"value": "老职称"})
    await db["volunteer_cards"].insert_one({"_id": old[0], "scope_units": [W.county], "name": "欧阳老档"})
    province = headers(settings, "province_admin")
    assert (await client.get("/volunteers", params={"name": "老档"}, headers=province)).json()["total"] == 0

    fresh = create_app(RegistrySettings(**settings.model_dump()))
    async with fresh.router.lifespan_context(fresh):
        await fresh.state.registry.backfill()  # the start's own runs in the background: this one waits (idempotent)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(fresh), auth=signing(fresh), base_url="http://registry"
        ) as again:
            by_name = await again.get("/volunteers", params={"name": "老档"}, headers=province)
            assert [v["id"] for v in by_name.json()["items"]] == sorted(old)
            by_title = await again.get("/volunteers", params={"title": "职称", "unit_id": W.county}, headers=province)
            assert [v["id"] for v in by_title.json()["items"]] == sorted(old)
            twice = await again.post("/volunteers", json=volunteer_body(40, unit_id=W.county), headers=admin)
            assert twice.status_code == 409 and twice.json()["code"] == "duplicate_person"
    assert await db["volunteers"].count_documents({"id_hash": {"$exists": False}}) == 0
    assert "volunteer_cards" not in await db.list_collection_names(), "the retired cards are dropped"


async def test_a_captured_identity_header_works_only_for_its_own_request(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    """Someone who sees a signed identity on the internal network cannot reuse it for another route, another
    service or another body: the registry answers 401."""
    secret = settings.internal_token.get_secret_value()
    province = Identity(subject="province", role="province_admin")

    def captured(method: str, target: str, *, service: str = "registry", body: bytes | None = None) -> dict[str, str]:
        return {HEADER: sign_identity(province, secret, service=service, method=method, target=target, body=body)}

    listing = captured("GET", "/units?limit=1")
    assert (await client.get("/units", params={"limit": 1}, headers=listing)).status_code == 200
    for method, url, params in (("GET", "/units", {"limit": 2}), ("GET", "/volunteers", {"limit": 1})):
        replayed = await client.request(method, url, params=params, headers=listing)
        assert replayed.status_code == 401, (url, replayed.text)
        assert replayed.json()["code"] == "bad_identity"
    for_activities = await client.get(
        "/units", params={"limit": 1}, headers=captured("GET", "/units?limit=1", service="activities")
    )
    assert for_activities.status_code == 401 and "其他服务" in for_activities.json()["detail"]
    signed_body = json.dumps({"kind": "city_detachment", "base": "张家口"}).encode()
    other_body = json.dumps({"kind": "city_detachment", "base": "承德"}).encode()
    swapped = await client.post(
        "/units",
        content=other_body,
        headers={**captured("POST", "/units", body=signed_body), "content-type": "application/json"},
    )
    assert swapped.status_code == 401 and "其他请求" in swapped.json()["detail"]
    chengde = await client.get("/units", params={"city": "承德"}, headers=acting_as(province))
    assert chengde.json()["items"] == []
