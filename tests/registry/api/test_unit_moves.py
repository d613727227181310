"""POST /units/{id}/move against the real Kafka and MongoDB-protocol server: the level above moves a unit with its
subtree and volunteers; the unit events carry the new ancestors; a move left open by a stopped process is finished
by the next start."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.registry.adapters.mongo import UNIT_MOVES
from services.registry.app import create_app
from services.registry.domain.scope import Scope
from services.registry.settings import RegistrySettings
from shared.contracts.events import UNITS
from shared.identity import Identity
from shared.settings import ServiceSettings
from tests.fixtures import eventually, read_topic, signing
from tests.registry.helpers import CITY_LEADERS, headers, volunteer_body

PROVINCE_SCOPE = Scope(Identity(subject="province", role="province_admin"))


class W:
    corps: str
    sjz: str
    ts: str
    county: str
    township: str
    volunteer: str


@pytest.fixture(scope="module")
def province(settings: ServiceSettings) -> dict[str, str]:
    return headers(settings, "province_admin", subject="province")


async def created(client: httpx.AsyncClient, url: str, body: dict[str, Any], hdrs: dict[str, str]) -> str:
    r = await client.post(url, json=body, headers=hdrs)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_setup(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    W.corps = await created(
        client, "/units", {"kind": "总队", "leaders": [{"name": "张总", "role": "总队长"}]}, province
    )
    for attr, city in (("sjz", "石家庄"), ("ts", "唐山")):
        body = {"kind": "市级支队", "base": city, "parent_id": W.corps, "leaders": CITY_LEADERS}
        setattr(W, attr, await created(client, "/units", body, province))
    W.county = await created(client, "/units", {"kind": "县级队", "base": "正定县", "parent_id": W.sjz}, province)
    body = {"kind": "分队", "name": "新安镇科技志愿者分队", "parent_id": W.county}
    W.township = await created(client, "/units", body, province)
    W.volunteer = await created(client, "/volunteers", volunteer_body(71, unit_id=W.township), province)


async def volunteer_reached_by(client: httpx.AsyncClient, settings: ServiceSettings, unit_id: str) -> bool:
    r = await client.get(f"/volunteers/{W.volunteer}", headers=headers(settings, "unit_admin", unit_id=unit_id))
    return r.status_code == 200


async def test_the_province_moves_a_county_team_with_its_township_team_and_volunteers(
    client: httpx.AsyncClient, settings: ServiceSettings, province: dict[str, str]
) -> None:
    assert await volunteer_reached_by(client, settings, W.sjz)
    r = await client.post(
        f"/units/{W.county}/move", json={"new_parent_id": W.ts, "reason": "行政区划调整"}, headers=province
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unit"]["parent_id"] == W.ts and body["unit"]["ancestors"] == [W.corps, W.ts]
    assert body["unit"]["city"] == "tangshan"
    assert body["unit"]["moves"][0]["reason"] == "行政区划调整" and body["unit"]["moves"][0]["from_parent_id"] == W.sjz
    assert body["move_id"] and body["propagation"] == "units"

    async def township_moved() -> bool:
        r = await client.get(f"/units/{W.township}", headers=province)
        return bool(r.json()["ancestors"] == [W.corps, W.ts, W.county])

    await eventually(township_moved, timeout_s=20)
    await eventually(lambda: volunteer_reached_by(client, settings, W.ts), timeout_s=20)
    assert not await volunteer_reached_by(client, settings, W.sjz)
    subtree = await client.get(f"/units/{W.ts}/subtree", headers=province)
    assert {u["id"] for u in subtree.json()["items"]} == {W.ts, W.county, W.township}
    # the old city's admin no longer reaches the team; the new city's does
    old = headers(settings, "unit_admin", unit_id=W.sjz)
    assert (await client.get(f"/units/{W.county}", headers=old)).status_code == 404
    new = headers(settings, "unit_admin", unit_id=W.ts)
    assert (await client.get(f"/units/{W.township}", headers=new)).status_code == 200

    records = await read_topic(settings.kafka_bootstrap, settings.topic(UNITS), expect=8)
    updates = [json.loads(x.value)["data"] for x in records if json.loads(x.value)["type"] == "stvs.unit.updated.v1"]
    county = [e for e in updates if e["unit_id"] == W.county][-1]
    assert county["ancestors"] == [W.corps, W.ts] and set(county["changed"]) == {"ancestors", "city", "parent_id"}
    township = [e for e in updates if e["unit_id"] == W.township][-1]
    assert township["ancestors"] == [W.corps, W.ts, W.county] and township["city"] == "tangshan"
    assert not any(
        "行政区划调整" in json.dumps(e, ensure_ascii=False) for e in updates
    )  # the reason stays in the registry


async def test_who_may_move_and_where(
    client: httpx.AsyncClient, settings: ServiceSettings, province: dict[str, str]
) -> None:
    move = {"new_parent_id": W.sjz, "reason": "调整"}
    county_admin = headers(settings, "unit_admin", unit_id=W.county)
    r = await client.post(f"/units/{W.county}/move", json=move, headers=county_admin)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_scope"  # not by itself
    city_admin = headers(settings, "unit_admin", unit_id=W.ts)
    r = await client.post(f"/units/{W.county}/move", json=move, headers=city_admin)
    assert r.status_code == 403 and "省科协" in r.json()["detail"]  # to another city: the province
    r = await client.post(f"/units/{W.county}/move", json={**move, "new_parent_id": W.corps}, headers=province)
    assert r.status_code == 422 and r.json()["code"] == "invalid_parent"
    r = await client.post(f"/units/{W.county}/move", json={**move, "reason": ""}, headers=province)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    r = await client.post(f"/units/{W.county}/move", json={**move, "new_parent_id": "u-none"}, headers=province)
    assert r.status_code == 404


async def test_an_open_move_is_finished_by_the_next_start(
    app: FastAPI, registry_settings: RegistrySettings, settings: ServiceSettings, province: dict[str, str]
) -> None:
    """A process that stopped after the move but before its propagation: the job is open; a fresh registry over the
    same database finishes it at start."""
    moves = app.state.moves
    moved, job = await moves.move(W.county, W.sjz, "撤销调整", PROVINCE_SCOPE)
    assert moved["parent_id"] == W.sjz
    db = app.state.registry.db
    assert (await db[UNIT_MOVES].find_one({"_id": job["_id"]}))["state"] == "units"
    fresh = create_app(registry_settings.model_copy(update={"unit_move_resume_interval_s": 0.2}))
    async with fresh.router.lifespan_context(fresh):
        transport = httpx.ASGITransport(fresh)
        async with httpx.AsyncClient(transport=transport, auth=signing(fresh), base_url="http://registry") as again:

            async def done() -> bool:
                return bool((await db[UNIT_MOVES].find_one({"_id": job["_id"]}))["state"] == "done")

            await eventually(done, timeout_s=30)
            r = await again.get(f"/units/{W.township}", headers=province)
            assert r.json()["ancestors"] == [W.corps, W.sjz, W.county] and r.json()["city"] == "shijiazhuang"
            assert await volunteer_reached_by(again, settings, W.sjz)
