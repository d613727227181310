"""End-to-end, issue 16 §3: who hears of a reviewed report — through the gateway only, as its users.

The province office returns a city's action plan with a comment: the city's admin finds a notice in its unit's
notices telling it to read the comment on the platform and submit again (the comment itself is not in it); the city
amends, and the province office finds a notice that the plan waits for review again; it accepts, and the city hears
that too.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.test_platform import ADMIN, WAIT_S, Platform, ok, platform, signin
from tests.e2e.test_reports import city_with_admin
from tests.fixtures import eventually
from tests.registry.helpers import CONTACT

__all__ = ["platform"]  # the platform fixture of the end-to-end module, started again for this one

COMMENT = "请补充各季度的活动安排（内部意见）"


async def test_a_returned_amended_and_accepted_plan_is_announced(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.api, timeout=WAIT_S) as client:
        try:
            await walk(client)
        except BaseException:
            print(platform.tail())
            raise


async def notice(client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str], kind: str) -> Any:
    async def found() -> Any:
        r = await client.get("/notifications", headers=headers, params=params)
        items = [n for n in ok(r)["items"] if n["kind"] == kind and n["channel"] == "inbox"]
        return items[0] if items else None

    return await eventually(found, timeout_s=WAIT_S, interval_s=0.3)


async def walk(client: httpx.AsyncClient) -> None:
    province = await signin(client, *ADMIN)
    corps_body = {"kind": "province_corps", "leaders": [{"name": "张总队", "role": "总队长"}],
                  "phone": "0311-85012345", "address": "石家庄市桥西区", "contact": CONTACT}  # fmt: skip
    corps = str(ok(await client.post("/units", headers=province, json=corps_body), 201)["id"])
    sjz, admin = await city_with_admin(client, province, corps, "石家庄市", "shijiazhuang", "sjz_notices")
    plan_body = {"unit_id": sjz, "year": 2026, "text": "全年开展科普进社区活动12次"}

    async def submitted() -> Any:
        r = await client.post("/action-plans", headers=admin, json=plan_body)
        return r if r.status_code == 201 else None

    await eventually(submitted, timeout_s=WAIT_S, interval_s=0.3)
    ok(await client.post(f"/action-plans/{sjz}/2026/review", headers=province,
                         json={"decision": "return", "version": 1, "comment": COMMENT}))  # fmt: skip

    returned = await notice(client, admin, {"unit": sjz}, "report_returned")
    assert "2026年年度行动计划" in returned["subject"] and "退回" in returned["subject"]
    assert "查看退回意见" in returned["body"] and COMMENT not in returned["body"]

    ok(await client.post(f"/action-plans/{sjz}/2026/versions", headers=admin,
                         json={"text": "全年12次，每季度3次", "note": "已补充季度安排"}), 201)  # fmt: skip
    waiting = await notice(client, province, {"recipient": "province"}, "report_amended")
    assert "待审核" in waiting["subject"] and waiting["unit_id"] == sjz

    ok(await client.post(f"/action-plans/{sjz}/2026/review", headers=province,
                         json={"decision": "accept", "version": 2}))  # fmt: skip
    accepted = await notice(client, admin, {"unit": sjz}, "report_accepted")
    assert "已通过审核" in accepted["subject"]
