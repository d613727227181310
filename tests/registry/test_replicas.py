"""Two registry replicas (separate apps, clients and outbox relays; one database, one broker) edit the same few
volunteers at once: no edit is lost, and each volunteer's events carry every version once.

The order of one volunteer's events on its partition is the order of its versions only for the events one relay
published: two replicas' relays publish independently (shared/messaging/outbox.py), so a consumer orders one
volunteer's events by their ``version`` (every event carries it). Measured here: out-of-order neighbours do occur
with two replicas (e.g. versions 2, 5, 3, 4)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

import httpx
from fastapi import FastAPI

from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.contracts.events import VOLUNTEERS
from tests.fixtures import read_topic, signing
from tests.registry.helpers import headers, volunteer_body

EDITS = 1_000
VOLUNTEER_COUNT = 4
IN_FLIGHT = 40


async def test_concurrent_edits_on_two_replicas_lose_nothing(
    app: FastAPI, client: httpx.AsyncClient, registry_settings: RegistrySettings
) -> None:
    province = headers(registry_settings, "province_admin")
    corps = (await client.post("/units", json={"kind": "总队"}, headers=province)).json()["id"]
    city = await client.post("/units", json={"kind": "市级支队", "base": "邢台", "parent_id": corps}, headers=province)
    teams = []
    for county in ("任泽区", "南和区", "宁晋县"):
        r = await client.post(
            "/units", json={"kind": "county_team", "base": county, "parent_id": city.json()["id"]}, headers=province
        )
        assert r.status_code == 201, r.text
        teams.append(r.json()["id"])
    ids = []
    for seq in range(VOLUNTEER_COUNT):
        r = await client.post("/volunteers", json=volunteer_body(900 + seq, unit_id=teams[0]), headers=province)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])

    second = create_app(registry_settings)  # another replica: its own Service, clients and relay
    async with (
        second.router.lifespan_context(second),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(second), auth=signing(second), base_url="http://registry-2"
        ) as other,
    ):
        replicas = [client, other]
        gate = asyncio.Semaphore(IN_FLIGHT)
        rng = random.Random(7)

        async def edit(i: int) -> tuple[str, str, Any, int]:
            vid = ids[i % VOLUNTEER_COUNT]
            http = replicas[(i // VOLUNTEER_COUNT) % 2]
            kind = rng.choice(["patch", "patch", "join", "leave"])
            team = teams[1 + i % 2]
            async with gate:
                if kind == "patch":
                    body = {"email": f"edit{i}@example.com", "mobile": f"137{i:08d}"}
                    r = await http.patch(f"/volunteers/{vid}", json=body, headers=province)
                    return vid, kind, body["email"], r.status_code
                if kind == "join":
                    r = await http.post(f"/volunteers/{vid}/units/{team}", headers=province)
                else:
                    r = await http.request(
                        "DELETE", f"/volunteers/{vid}/units/{team}", json={"reason": "调动"}, headers=province
                    )
                return vid, kind, team, r.status_code

        outcomes = await asyncio.gather(*(edit(i) for i in range(EDITS)))

    codes = Counter(code for *_, code in outcomes)
    # a join of a member, a leave of a non-member, a second leave: refused by the rules, nothing written
    assert set(codes) <= {200, 404, 409}, codes
    assert codes[200] >= EDITS // 2, codes
    applied = Counter(vid for vid, _, _, code in outcomes if code == 200)

    volunteers = app.state.registry.db["volunteers"]
    records = await read_topic(
        registry_settings.kafka_bootstrap,
        registry_settings.topic(VOLUNTEERS),
        expect=VOLUNTEER_COUNT * 2 + codes[200],
        timeout_s=60,
    )
    events: dict[str, list[dict[str, Any]]] = {vid: [] for vid in ids}
    seen: set[str] = set()
    for record in records:
        event = json.loads(record.value)
        if event["subject"] in events and event["id"] not in seen:  # at-least-once: a repeat is not an edit
            seen.add(event["id"])
            events[event["subject"]].append(event)
    for vid in ids:
        doc = await volunteers.find_one({"_id": vid})
        assert doc is not None
        # every applied edit moved the version by exactly one
        assert doc["version"] == 1 + applied[vid], (vid, doc["version"], applied[vid])
        # the last applied profile edit is the stored one (each PATCH wrote its own e-mail)
        emails = [e["data"] for e in events[vid] if e["type"] == "stvs.volunteer.updated.v1"]
        patched = {value for v, kind, value, code in outcomes if v == vid and kind == "patch" and code == 200}
        assert len(emails) == len(patched), "one VolunteerUpdated per applied PATCH"
        assert doc["email"] in patched
        # the events: the registration (v1, with its join) and one event for every later version, none missing
        versions = [e["data"]["version"] for e in events[vid] if e["data"].get("version") is not None]
        assert sorted(v for v in versions if v > 1) == list(range(2, doc["version"] + 1)), vid
        # the stored memberships agree with the last join/leave events of each team
        for team in teams[1:]:
            last = next(
                (
                    e["type"]
                    for e in reversed(events[vid])
                    if e["type"] != "stvs.volunteer.updated.v1" and e["data"].get("unit_id") == team
                ),
                None,
            )
            status = (doc["memberships"].get(team) or {}).get("status")
            expected = {"stvs.volunteer.joined_unit.v1": "active", "stvs.volunteer.left_unit.v1": "left", None: None}
            assert status == expected[last], (vid, team, status, last)
