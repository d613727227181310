"""End-to-end, through the gateway only: the notice's unit rules (issue 16 §5) as the province office and the city
admins meet them — a name off the notice's pattern refused with the standard name suggested, a local university's
detachment joining its city detachment, a township team under a county team, a department team under a university
detachment — and a county team moved to another city with its township team and its volunteer: the gateway's scope,
the registry's subtree and reporting's roll-up all follow the move."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.test_platform import (  # noqa: F401 - the module's platform fixture
    ADMIN,
    WAIT_S,
    Platform,
    ok,
    platform,
    signin,
)
from tests.fixtures import eventually
from tests.registry.helpers import CITY_LEADERS, volunteer_body


async def test_unit_rules_end_to_end(platform: Platform) -> None:  # noqa: F811
    async with httpx.AsyncClient(base_url=platform.api, timeout=WAIT_S) as client:
        try:
            await scenario(client)
        except BaseException:
            print(platform.tail())  # shown by pytest on failure
            raise


async def scenario(client: httpx.AsyncClient) -> None:
    province = await signin(client, *ADMIN)

    async def unit(body: dict[str, Any]) -> dict[str, Any]:
        return dict(ok(await client.post("/units", headers=province, json=body), 201))

    corps = await unit({"kind": "province_corps", "leaders": [{"name": "张总队", "role": "总队长"}]})
    sjz = await unit({"kind": "市级支队", "base": "石家庄", "parent_id": corps["id"], "leaders": CITY_LEADERS})
    ts = await unit({"kind": "市级支队", "base": "唐山", "parent_id": corps["id"], "leaders": CITY_LEADERS})
    assert (sjz["name"], sjz["city"], ts["city"]) == ("石家庄市科技志愿者支队", "shijiazhuang", "tangshan")

    # ---- a name off the notice's pattern: refused, the standard name suggested; the suggestion registers
    off = await client.post(
        "/units", headers=province, json={"kind": "县级队", "name": "正定县志愿服务队", "parent_id": sjz["id"]}
    )
    assert off.status_code == 422 and off.headers["content-type"] == "application/problem+json", off.text
    assert off.json()["code"] == "name_pattern" and off.json()["suggestion"] == "正定县科技志愿者队"
    county = await unit({"kind": "县级队", "name": off.json()["suggestion"], "parent_id": sjz["id"]})

    # ---- 属地管理: a local university's detachment joins the city detachment; a department team under it
    university = await unit({"kind": "高校支队", "base": "石家庄学院", "parent_id": sjz["id"]})
    assert university["ancestors"] == [corps["id"], sjz["id"]] and university["city"] == "shijiazhuang"
    suggested = ok(
        await client.get(
            "/units/suggest-name",
            headers=province,
            params={"kind": "分队", "base": "化工学院", "parent_id": university["id"]},
        )
    )
    assert suggested == {"name": "石家庄学院科技志愿服务支队化工学院分队", "available": True}
    bad = await client.post(
        "/units", headers=province, json={"kind": "分队", "name": "化工学院分队", "parent_id": university["id"]}
    )
    assert bad.status_code == 422 and bad.json()["suggestion"] == suggested["name"]
    await unit({"kind": "分队", "name": suggested["name"], "parent_id": university["id"]})

    # ---- a township team under the county team, and a volunteer in it
    township = await unit({"kind": "分队", "name": "新安镇科技志愿者分队", "parent_id": county["id"]})
    volunteer = ok(
        await client.post("/volunteers", headers=province, json=volunteer_body(9301, unit_id=township["id"])), 201
    )

    # ---- each city's admin
    admins = {}
    for key, (name, unit_id) in {"sjz": ("e2e_sjz_rules", sjz["id"]), "ts": ("e2e_ts_rules", ts["id"])}.items():
        body = {"username": name, "password": "city-admin-pass-1", "role": "unit_admin", "unit_id": unit_id}
        ok(await client.post("/accounts", headers=province, json=body), 201)
        admins[key] = await signin(client, name, "city-admin-pass-1")

    async def reaches(who: str, path: str) -> bool:
        return (await client.get(path, headers=admins[who])).status_code == 200

    await eventually(lambda: reaches("sjz", f"/volunteers/{volunteer['id']}"), timeout_s=WAIT_S, interval_s=0.3)
    assert not await reaches("ts", f"/units/{county['id']}")

    async def rollup_volunteers(unit_id: str, expected: int) -> bool:
        r = await client.get(f"/stats/units/{unit_id}", headers=province, params={"year": 2026})
        return r.status_code == 200 and (r.json().get("rollup") or {}).get("volunteers") == expected

    await eventually(lambda: rollup_volunteers(sjz["id"], 1), timeout_s=WAIT_S, interval_s=0.3)

    # ---- the city detachment cannot move its county team to another city; the province can
    move = {"new_parent_id": ts["id"], "reason": "行政区划调整"}
    refused = await client.post(f"/units/{county['id']}/move", headers=admins["sjz"], json=move)
    assert refused.status_code == 403, refused.text
    moved = ok(await client.post(f"/units/{county['id']}/move", headers=province, json=move))
    assert moved["unit"]["ancestors"] == [corps["id"], ts["id"]] and moved["unit"]["city"] == "tangshan"
    assert moved["unit"]["moves"][0]["reason"] == "行政区划调整"

    # the new city's admin reaches the team, its township team and its volunteer; the old one none of them
    for path in (f"/units/{county['id']}", f"/units/{township['id']}", f"/volunteers/{volunteer['id']}"):
        await eventually(lambda path=path: reaches("ts", path), timeout_s=WAIT_S, interval_s=0.3)
        assert not await reaches("sjz", path), path
    subtree = ok(await client.get(f"/units/{ts['id']}/subtree", headers=admins["ts"]))
    assert {u["id"] for u in subtree["items"]} == {ts["id"], county["id"], township["id"]}
    # reporting's roll-up follows: the volunteer counts for 唐山 now, no longer for 石家庄
    await eventually(lambda: rollup_volunteers(ts["id"], 1), timeout_s=WAIT_S, interval_s=0.3)
    await eventually(lambda: rollup_volunteers(sjz["id"], 0), timeout_s=WAIT_S, interval_s=0.3)
