"""End-to-end, issue 16 §7: finding activities through the gateway, as a volunteer and as the province office.

The platform of :mod:`tests.e2e.test_platform` (its fixture, on its set clock): the province office registers two
city detachments and a county team, a volunteer of that county team and the volunteer's account, and publishes
activities across the tree; the volunteer finds them by keyword, city, unit and skill, newest published first,
and sees those open to them first — their county team's and the units' above it, with sign-up open and not yet
signed up — until signing up moves one back among the others.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from shared.clock import Clock
from tests.e2e.test_platform import ADMIN, WAIT_S, Platform, ok, platform, signin  # noqa: F401 - the fixture
from tests.fixtures import eventually
from tests.registry.helpers import CITY_LEADERS, CONTACT, volunteer_body

PASSWORD = "finder-pass-1"


async def test_a_volunteer_finds_activities_through_the_gateway(platform: Platform) -> None:  # noqa: F811
    async with httpx.AsyncClient(base_url=platform.api, timeout=WAIT_S) as client:
        try:
            await finding(client, platform.clock)
        except BaseException:
            print(platform.tail())  # shown by pytest on failure
            raise


async def finding(client: httpx.AsyncClient, clock: Clock) -> None:
    province = await signin(client, *ADMIN)

    async def unit(body: dict[str, Any]) -> str:
        return str(ok(await client.post("/units", headers=province, json=body), 201)["id"])

    corps = await unit(
        {"kind": "province_corps", "leaders": [{"name": "张总队", "role": "总队长"}],
         "contact": {**CONTACT, "email": "office@example.com"}}
    )  # fmt: skip
    sjz = await unit({"kind": "city_detachment", "base": "石家庄市", "parent_id": corps, "city": "shijiazhuang",
                      "leaders": CITY_LEADERS, "contact": CONTACT})  # fmt: skip
    ts = await unit({"kind": "city_detachment", "base": "唐山市", "parent_id": corps, "city": "tangshan",
                     "leaders": CITY_LEADERS, "contact": CONTACT})  # fmt: skip
    county = await unit({"kind": "county_team", "name": "正定县科技志愿者队", "parent_id": sjz})
    body = volunteer_body(71, unit_id=county)
    vid = str(ok(await client.post("/volunteers", headers=province, json=body), 201)["id"])

    async def account() -> bool:
        made = {"username": "finder_volunteer", "password": PASSWORD, "role": "volunteer", "volunteer_id": vid}
        return (await client.post("/accounts", headers=province, json=made)).status_code == 201

    await eventually(account, timeout_s=WAIT_S, interval_s=0.3)
    volunteer = await signin(client, "finder_volunteer", PASSWORD)

    now = clock.now().replace(microsecond=0)

    async def publish(title: str, unit_id: str, days: int, **more: Any) -> str:
        starts = now + timedelta(days=days)
        data = {
            "title": title,
            "description": "面向群众的科普服务",
            "unit_id": unit_id,
            "line_of_work": "community_school",
            "themes": ["poverty_health"],
            "place": "社区活动中心",
            "county": "正定县",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 5,
            "signup_opens_at": (now - timedelta(hours=1)).isoformat(),
            "signup_closes_at": starts.isoformat(),
            **more,
        }
        aid = str(ok(await client.post("/activities", headers=province, json=data), 201)["id"])
        ok(await client.post(f"/activities/{aid}/publish", headers=province))
        return aid

    await publish("唐山市青少年航天科普讲座", ts, 1, place="唐山市图书馆")
    await publish("石家庄市企业技术诊断", sjz, 2, skills_wanted=["机械设计"], line_of_work="enterprise_park")
    county_talk = await publish("正定县农村妇女健康讲座", county, 3, themes=["women_youth"])
    await publish(
        "正定县秋季果树修剪培训", county, 4, signup_opens_at=(now + timedelta(days=1)).isoformat()
    )  # sign-up not open yet

    async def listing(**params: Any) -> dict[str, Any]:
        page: dict[str, Any] = ok(await client.get("/activities", headers=volunteer, params=params))
        return page

    def titles(page: dict[str, Any]) -> list[str]:
        return [a["title"] for a in page["items"]]

    # The activities service learns the volunteer's units and the unit tree (with its cities) from the registry's
    # events: then the volunteer's own county team and the city detachment above it come first.
    async def open_first() -> dict[str, Any] | None:
        page = await listing()
        return page if [a["open_to_me"] for a in page["items"]][:2] == [True, True] else None

    page = await eventually(open_first, timeout_s=WAIT_S, interval_s=0.3)
    assert titles(page) == [
        "石家庄市企业技术诊断",
        "正定县农村妇女健康讲座",
        "唐山市青少年航天科普讲座",
        "正定县秋季果树修剪培训",
    ], page
    assert [a["open_to_me"] for a in page["items"]] == [True, True, False, False]
    assert page["total"] == 4

    async def by_city() -> bool:
        return titles(await listing(city="tangshan")) == ["唐山市青少年航天科普讲座"]

    await eventually(by_city, timeout_s=WAIT_S, interval_s=0.3)
    assert titles(await listing(q="讲座")) == ["正定县农村妇女健康讲座", "唐山市青少年航天科普讲座"]
    assert titles(await listing(q="图书馆 航天")) == ["唐山市青少年航天科普讲座"]
    assert titles(await listing(under=sjz, open_first="false")) == [
        "石家庄市企业技术诊断",
        "正定县农村妇女健康讲座",
        "正定县秋季果树修剪培训",
    ]
    assert titles(await listing(skill="机械设计")) == ["石家庄市企业技术诊断"]
    assert titles(await listing(theme="women_youth")) == ["正定县农村妇女健康讲座"]
    assert titles(await listing(line_of_work="enterprise_park")) == ["石家庄市企业技术诊断"]
    assert titles(await listing(sort="published", open_first="false"))[0] == "正定县秋季果树修剪培训"
    paged = [t for offset in (0, 2) for t in titles(await listing(limit=2, offset=offset))]
    assert paged == titles(page)
    refused = await client.get("/activities", headers=volunteer, params={"city": "nowhere"})
    assert refused.status_code == 422 and refused.json()["code"] == "validation", refused.text

    # Signed up, the county team's talk is no longer waiting for them: it goes back among the others.
    async def sign_up() -> bool:
        r = await client.post(f"/activities/{county_talk}/signups", headers=volunteer, json={})
        return r.status_code == 201

    await eventually(sign_up, timeout_s=WAIT_S, interval_s=0.3)
    after = await listing()
    assert titles(after)[0] == "石家庄市企业技术诊断"
    assert [a["open_to_me"] for a in after["items"]] == [True, False, False, False]

    # The province office finds the same activities (no open-first for an administrator).
    office = ok(await client.get("/activities", headers=province, params={"q": "讲座", "city": "shijiazhuang"}))
    assert [a["title"] for a in office["items"]] == ["正定县农村妇女健康讲座"]
    assert "open_to_me" not in office["items"][0]
