"""End-to-end, issue 16 §3: reports read back, reviewed and amended — through the gateway only, as their users.

A city detachment's admin submits the year's action plan and May's monthly report; the province office lists
where every unit stands, reads them whole, returns them with a comment; the city reads the comment, amends (a new
version, the first kept), and the province office accepts; an accepted report can no longer be amended. Another
city's admin cannot see any of it, and compliance counts the returned report as not yet done until it comes back.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.test_platform import ADMIN, WAIT_S, Platform, ok, platform, signin
from tests.fixtures import eventually
from tests.registry.helpers import CITY_LEADERS, CONTACT

__all__ = ["platform"]  # the platform fixture of the end-to-end module, started again for this one


async def test_reports_are_read_reviewed_and_amended_through_the_gateway(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.api, timeout=WAIT_S) as client:
        try:
            await walk(client)
        except BaseException:
            print(platform.tail())
            raise


async def city_with_admin(client: httpx.AsyncClient, province: dict[str, str], corps: str, base: str, city: str,
                          username: str) -> tuple[str, dict[str, str]]:  # fmt: skip
    body = {"kind": "city_detachment", "base": base, "parent_id": corps, "city": city, "leaders": CITY_LEADERS,
            "phone": "0311-80010000", "declared_members": 300, "contact": CONTACT}  # fmt: skip
    unit_id = str(ok(await client.post("/units", headers=province, json=body), 201)["id"])
    account = {"username": username, "password": f"{username}-pass-1", "role": "unit_admin", "unit_id": unit_id,
               "display_name": f"{base}管理员"}  # fmt: skip
    ok(await client.post("/accounts", headers=province, json=account), 201)
    admin = await signin(client, username, f"{username}-pass-1")

    async def sees_own() -> bool:
        return (await client.get(f"/units/{unit_id}", headers=admin)).status_code == 200

    await eventually(sees_own, timeout_s=WAIT_S, interval_s=0.2)
    return unit_id, admin


async def walk(client: httpx.AsyncClient) -> None:
    province = await signin(client, *ADMIN)
    corps_body = {"kind": "province_corps", "leaders": [{"name": "张总队", "role": "总队长"}],
                  "phone": "0311-85012345", "address": "石家庄市桥西区", "contact": CONTACT}  # fmt: skip
    corps = str(ok(await client.post("/units", headers=province, json=corps_body), 201)["id"])
    sjz, admin = await city_with_admin(client, province, corps, "石家庄市", "shijiazhuang", "sjz_reports")
    _, stranger = await city_with_admin(client, province, corps, "保定市", "baoding", "bd_reports")

    # ---- the city submits its action plan (the programme's clock is in late May: after April 30, so late)
    plan_body = {"unit_id": sjz, "year": 2026, "text": "全年开展科普进社区活动12次"}

    async def submitted() -> Any:
        r = await client.post("/action-plans", headers=admin, json=plan_body)
        return r if r.status_code == 201 else None  # reporting learns the unit from the registry's events

    assert (await eventually(submitted, timeout_s=WAIT_S, interval_s=0.3)).json()["late"] is True

    # ---- the province office sees where every unit stands, and reads the plan whole
    listing = ok(await client.get("/action-plans", headers=province, params={"year": 2026}))
    standing = {row["unit_id"]: row["status"] for row in listing["units"]}
    assert standing[sjz] == "late" and standing[corps] == "missing", standing
    assert listing["counts"]["late"] == 1
    plan = ok(await client.get(f"/action-plans/{sjz}/2026", headers=province))
    assert (plan["current"]["text"], plan["version"]) == ("全年开展科普进社区活动12次", 1)
    assert plan["current"]["submitted_by_name"] == "石家庄市管理员"
    assert (await client.get(f"/action-plans/{sjz}/2026", headers=stranger)).status_code == 404  # another city

    # ---- returned with a comment: the city reads it, amends; the first version is kept
    comment = "请补充各季度的活动安排"
    refused = await client.post(f"/action-plans/{sjz}/2026/review", headers=admin,
                                json={"decision": "accept", "version": 1})  # fmt: skip
    assert refused.status_code == 403  # a unit does not review its own plan
    ok(await client.post(f"/action-plans/{sjz}/2026/review", headers=province,
                         json={"decision": "return", "version": 1, "comment": comment}))  # fmt: skip
    seen = ok(await client.get(f"/action-plans/{sjz}/2026", headers=admin))
    assert (seen["status"], seen["reviews"][-1]["comment"]) == ("returned", comment)
    returned = ok(await client.get("/action-plans", headers=province, params={"year": 2026, "status": "returned"}))
    assert [row["unit_id"] for row in returned["units"]] == [sjz]
    amended = ok(await client.post(f"/action-plans/{sjz}/2026/versions", headers=admin,
                                   json={"text": "全年12次，每季度3次", "note": "已补充季度安排"}), 201)  # fmt: skip
    assert [v["text"] for v in amended["versions"]] == ["全年开展科普进社区活动12次", "全年12次，每季度3次"]
    assert (amended["version"], amended["current"]["note"]) == (2, "已补充季度安排")

    # ---- accepted: closed to amendments
    accepted = ok(await client.post(f"/action-plans/{sjz}/2026/review", headers=province,
                                    json={"decision": "accept", "version": 2}))  # fmt: skip
    assert accepted["status"] == "accepted"
    closed = await client.post(f"/action-plans/{sjz}/2026/versions", headers=admin, json={"text": "再改"})
    assert (closed.status_code, closed.json()["code"]) == (409, "report_accepted")

    # ---- May's monthly report (due June 5): returned, it counts as not yet done in compliance until it comes back
    ok(await client.post(f"/monthly-reports/{sjz}/2026-05/submit", headers=admin), 201)
    report = ok(await client.get(f"/monthly-reports/{sjz}/2026-05/submission", headers=province))
    assert report["current"]["report"]["month"] == "2026-05" and report["status"] == "submitted"
    assert (await client.get(f"/monthly-reports/{sjz}/2026-05/submission", headers=stranger)).status_code == 404
    ok(await client.post(f"/monthly-reports/{sjz}/2026-05/review", headers=province,
                         json={"decision": "return", "version": 1, "comment": "缺少活动数据"}))  # fmt: skip

    async def may(gap: int) -> Any:
        table = ok(await client.get("/compliance", headers=admin, params={"unit_id": sjz}))
        row = next(r for r in table["units"] if r["unit_id"] == sjz)
        rule = next(r for r in row["rules"] if r["rule"] == "monthly-2026-05")
        return rule if rule["gap"] == gap else None

    assert "退回" in (await eventually(lambda: may(1), timeout_s=WAIT_S, interval_s=0.3))["detail_zh"]
    ok(await client.post(f"/monthly-reports/{sjz}/2026-05/versions", headers=admin, json={"note": "已补全"}), 201)
    back = await eventually(lambda: may(0), timeout_s=WAIT_S, interval_s=0.3)
    assert back["status"] == "met"  # done, on time: the deadline judges the first submission
    months = ok(await client.get("/monthly-reports", headers=province, params={"month": "2026-05"}))
    assert {row["unit_id"]: row["status"] for row in months["units"]}[sjz] == "submitted"  # awaiting review again
