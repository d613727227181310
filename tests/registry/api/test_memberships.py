"""Memberships and odds and ends of the registry API: at most five units, rejected requests, self-service
profile changes, pagination of a subtree, and no ID-card number in the logs."""

from __future__ import annotations

import logging

import httpx
import pytest

from shared.settings import ServiceSettings
from tests.registry.helpers import headers, id_number, volunteer_body


class W:
    corps: str
    city: str
    teams: list[str]


async def test_setup(client: httpx.AsyncClient, settings: ServiceSettings) -> None:
    province = headers(settings, "province_admin")
    W.corps = (await client.post("/units", json={"kind": "总队"}, headers=province)).json()["id"]
    r = await client.post("/units", json={"kind": "市级支队", "base": "保定", "parent_id": W.corps}, headers=province)
    W.city = r.json()["id"]
    W.teams = []
    for county in ("清苑区", "满城区", "徐水区", "涞水县", "阜平县", "定兴县"):
        r = await client.post(
            "/units",
            json={"kind": "county_team", "base": county, "parent_id": W.city, "member_approval": county == "定兴县"},
            headers=province,
        )
        assert r.status_code == 201, r.text
        W.teams.append(r.json()["id"])


async def test_at_most_five_units_and_rejected_requests(client: httpx.AsyncClient, settings: ServiceSettings) -> None:
    me = headers(settings, "volunteer", subject="wx:five")
    r = await client.post("/volunteers", json=volunteer_body(1, unit_id=W.teams[0]), headers=me)
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    for team in W.teams[1:5]:
        assert (await client.post(f"/volunteers/{vid}/units/{team}", headers=me)).status_code == 200
    sixth = await client.post(f"/volunteers/{vid}/units/{W.teams[5]}", headers=me)
    assert sixth.status_code == 409 and sixth.json()["code"] == "membership_limit"
    await client.delete(f"/volunteers/{vid}/units/{W.teams[4]}", headers=me)
    pending = await client.post(f"/volunteers/{vid}/units/{W.teams[5]}", headers=me)
    assert pending.status_code == 200
    assert {m["unit_id"]: m["status"] for m in pending.json()["memberships"]}[W.teams[5]] == "pending"
    admin = headers(settings, "unit_admin", unit_id=W.teams[5])
    no_reason = await client.post(f"/volunteers/{vid}/units/{W.teams[5]}/reject", json={"reason": ""}, headers=admin)
    assert no_reason.status_code == 422
    rejected = await client.post(
        f"/volunteers/{vid}/units/{W.teams[5]}/reject", json={"reason": "不在本地"}, headers=admin
    )
    assert rejected.status_code == 200
    assert {m["unit_id"]: m["reason"] for m in rejected.json()["memberships"]}[W.teams[5]] == "不在本地"
    assert W.teams[5] not in rejected.json()["unit_ids"]
    # another team's admin cannot decide on this request
    other = headers(settings, "unit_admin", unit_id=W.teams[0])
    assert (await client.post(f"/volunteers/{vid}/units/{W.teams[5]}/approve", headers=other)).status_code == 403
    # the volunteer edits its own profile; the gender and ID number are not editable
    mine = await client.patch(
        f"/volunteers/{vid}", json={"skills": ["气象科普"], "email": "new@example.com"}, headers=me
    )
    assert mine.status_code == 200 and mine.json()["skills"] == ["气象科普"]
    assert (await client.patch(f"/volunteers/{vid}", json={"gender": "女"}, headers=me)).status_code == 422
    # an active unit is visible to a volunteer, a registered volunteer cannot register again
    assert (await client.get(f"/units/{W.teams[0]}", headers=me)).status_code == 200
    again = await client.post(
        "/volunteers",
        json=volunteer_body(2, unit_id=W.teams[0]),
        headers=headers(settings, "volunteer", volunteer_id=vid),
    )
    assert again.status_code == 403


async def test_subtree_pages(client: httpx.AsyncClient, settings: ServiceSettings) -> None:
    province = headers(settings, "province_admin")
    seen: list[str] = []
    for skip in (0, 3, 6):
        page = (
            await client.get(f"/units/{W.city}/subtree", params={"skip": skip, "limit": 3}, headers=province)
        ).json()
        assert page["total"] == 7
        seen.extend(u["id"] for u in page["items"])
    assert seen == [W.city, *W.teams]
    bad = await client.get("/units", params={"kind": "不存在"}, headers=province)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "kind"


async def test_no_id_number_in_logs(
    client: httpx.AsyncClient, settings: ServiceSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = headers(settings, "unit_admin", unit_id=W.teams[1])
    await client.post("/volunteers", json=volunteer_body(30, unit_id=W.teams[1]), headers=admin)
    await client.post("/volunteers", json=volunteer_body(30, unit_id=W.teams[1]), headers=admin)  # duplicate
    await client.post("/volunteers", json=volunteer_body(31, male=False, gender="男"), headers=admin)  # refused
    text = caplog.text
    for seq in (30, 31):
        assert id_number(seq, male=seq == 30) not in text
