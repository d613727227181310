"""The audit log through a real gateway (stand-in services): admin writes and views of personal data are recorded
with ids only, listed to the province admin, append-only and kept at least 180 days."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.gateway.adapters.audit_log import AUDIT, AuditLog
from services.gateway.app import create_app
from services.gateway.create_admin import create_admin
from services.gateway.domain.audit import kind_of, unit_ids_of
from services.gateway.settings import GatewaySettings
from shared.settings import ServiceSettings
from shared.storage import mongo_client
from tests.fixtures import eventually
from tests.gateway.test_gateway import TREE, publish, unit_event, volunteer_event
from tests.gateway.upstream import Gate, closed_port, fake_services, serving

API = "/api/v1"
ADMIN = ("audit-province", "audit-province-pass")
CLIENT = "203.0.113.7"  # the address the trusted proxy (the test client, 127.0.0.1) reports
NAME = "张三丰"  # a person's name the requests carry in queries and bodies: never in a record


class Env:
    def __init__(self, url: str, gw: Any) -> None:
        self.gw = gw
        self.client = httpx.AsyncClient(base_url=url, timeout=15, headers={"X-Forwarded-For": CLIENT})

    async def bearer(self, username: str, password: str) -> dict[str, str]:
        r = await self.client.post(f"{API}/auth/signin", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
async def env(settings: ServiceSettings) -> AsyncIterator[Env]:
    async with fake_services(settings.internal_token.get_secret_value(), Gate()) as upstream:
        gs = GatewaySettings(
            **{k: v for k, v in settings.model_dump().items() if k != "http_port"},
            registry_url=upstream["registry"],
            activities_url=upstream["activities"],
            reporting_url=upstream["reporting"],
            notifier_url=f"http://127.0.0.1:{closed_port()}",
            trusted_proxies="127.0.0.1/32",
        )
        await create_admin(gs, *ADMIN, "省级管理员")
        app = create_app(gs)
        async with serving(app, lifespan="on") as url:
            e = Env(url, app.state.gateway)
            await publish(settings, [unit_event(u, a) for u, a in TREE.items()])
            await publish(settings, [volunteer_event("V1", ["K1"]), volunteer_event("V2", ["C2"])])
            await eventually(lambda: e.gw.tree.unit("K1"))
            await eventually(lambda: e.gw.tree.volunteers.find_one({"_id": "V1"}))
            yield e
            await e.client.aclose()


@pytest.fixture(scope="module")
async def province(env: Env) -> dict[str, str]:
    return await env.bearer(*ADMIN)


@pytest.fixture(scope="module")
async def c1(env: Env, province: dict[str, str]) -> dict[str, str]:
    body = {"username": "c1-audit", "password": "c1-audit-pass", "role": "unit_admin", "unit_id": "C1"}
    assert (await env.client.post(f"{API}/accounts", json=body, headers=province)).status_code == 201
    return await env.bearer("c1-audit", "c1-audit-pass")


@pytest.fixture(scope="module")
async def volunteer(env: Env, province: dict[str, str]) -> dict[str, str]:
    body = {"username": "v1-audit", "password": "v1-audit-pass", "role": "volunteer", "volunteer_id": "V1"}
    assert (await env.client.post(f"{API}/accounts", json=body, headers=province)).status_code == 201
    return await env.bearer("v1-audit", "v1-audit-pass")


async def listing(env: Env, headers: dict[str, str], **params: Any) -> httpx.Response:
    return await env.client.get(f"{API}/audit", params=params, headers=headers)


async def entries(env: Env, province: dict[str, str], count: int, **params: Any) -> list[dict[str, Any]]:
    """The records matching ``params`` once ``count`` of them are stored (they are written in the background)."""

    async def stored() -> list[dict[str, Any]] | None:
        r = await listing(env, province, limit=500, **params)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items if len(items) >= count else None

    found: list[dict[str, Any]] = await eventually(stored)
    return found


async def test_admin_writes_and_personal_data_views_are_recorded_with_ids_only(
    env: Env, province: dict[str, str], c1: dict[str, str], volunteer: dict[str, str]
) -> None:
    c = env.client
    write = await c.post(f"{API}/units/K1/leaders", params={"name": NAME}, json={"name": NAME}, headers=c1)
    assert write.status_code == 200, write.text
    assert (await c.get(f"{API}/volunteers/V1", headers=c1)).status_code == 200
    assert (await c.get(f"{API}/units/K1", params={"name": NAME}, headers=c1)).status_code == 200  # not audited
    refused = await c.post(f"{API}/units/C2/leaders", json={"name": NAME}, headers=c1)
    assert refused.status_code == 403
    assert (await c.patch(f"{API}/volunteers/V1", json={"name": NAME}, headers=volunteer)).status_code == 200
    assert (await c.get(f"{API}/exports/big", params={"size_mb": 1}, headers=province)).status_code == 200

    mine = await entries(env, province, 3, actor="c1-audit")
    assert [(e["method"], e["route"], e["status"], e["kind"]) for e in mine] == [
        ("POST", f"{API}/units/{{unit_id}}/leaders", 403, "write"),
        ("GET", f"{API}/volunteers/{{volunteer_id}}", 200, "personal_data"),
        ("POST", f"{API}/units/{{unit_id}}/leaders", 200, "write"),
    ], "newest first; the plain unit read is not recorded"
    first = mine[-1]
    assert first["resource"] == {"unit_id": "K1"} and first["unit_ids"] == ["K1", "C1"]
    assert first["username"] == "c1-audit" and first["role"] == "unit_admin" and first["actor_unit_id"] == "C1"
    assert first["query_keys"] == ["name"] and first["address"] == CLIENT
    assert mine[1]["resource"] == {"volunteer_id": "V1"}
    everything = (await listing(env, province, limit=500)).json()
    assert NAME not in json.dumps(everything, ensure_ascii=False), "names never reach the audit log"
    assert not [e for e in everything["items"] if e["role"] == "volunteer"], "a volunteer's own edits are not admin"
    exports = [e for e in everything["items"] if e["route"] == f"{API}/exports/big"]
    assert len(exports) == 1 and exports[0]["kind"] == "personal_data" and exports[0]["role"] == "province_admin"
    created = [e for e in everything["items"] if e["route"] == f"{API}/accounts"]
    assert len(created) == 2 and all(e["status"] == 201 for e in created), "the gateway's own writes too"


async def test_the_listing_filters_and_pages_for_the_province_admin_only(
    env: Env, province: dict[str, str], c1: dict[str, str]
) -> None:
    for n in range(3):
        await env.client.post(f"{API}/units/K1/leaders", json={"n": n}, headers=c1)
    await entries(env, province, 5, actor="c1-audit")
    in_c2 = (await listing(env, province, unit_id="C2")).json()["items"]
    assert [e["status"] for e in in_c2] == [403], "the refused write into C2, by unit"
    whole = (await listing(env, province, actor="c1-audit", limit=500)).json()["items"]
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = (
            await listing(env, province, actor="c1-audit", limit=2, **({"cursor": cursor} if cursor else {}))
        ).json()
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["id"] for e in paged] == [e["id"] for e in whole]
    now = datetime.now(UTC)
    assert (await listing(env, province, since=(now + timedelta(hours=1)).isoformat())).json()["items"] == []
    assert len((await listing(env, province, until=(now + timedelta(hours=1)).isoformat())).json()["items"]) >= 5
    refused = await listing(env, c1)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert (await listing(env, province, since="2026-05-01T00:00:00")).status_code == 422, "a time needs its zone"
    assert (await listing(env, province, cursor="not-a-cursor")).status_code == 400


async def test_the_log_is_append_only_kept_at_least_180_days_and_documented(
    env: Env, province: dict[str, str], settings: ServiceSettings
) -> None:
    doc = (await env.client.get("/openapi.json")).json()
    assert list(doc["paths"][f"{API}/audit"]) == ["get"], "listed, never changed or deleted through the API"
    schema = doc["paths"][f"{API}/audit"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/AuditPage"} and "AuditEntry" in doc["components"]["schemas"]
    for method in ("PUT", "PATCH", "DELETE"):
        assert (await env.client.request(method, f"{API}/audit", headers=province)).status_code in (404, 405)
    client = mongo_client(settings.mongo_url, app_name="test")
    try:
        indexes = await client[settings.database("gateway")][AUDIT].index_information()
    finally:
        await client.close()
    assert [i["expireAfterSeconds"] for i in indexes.values() if "expireAfterSeconds" in i] == [400 * 86_400]
    with pytest.raises(ValidationError):
        GatewaySettings(audit_retention_days=179)


async def test_records_that_cannot_be_stored_are_counted_and_logged(
    settings: ServiceSettings, caplog: pytest.LogCaptureFixture
) -> None:
    client = mongo_client(settings.mongo_url, app_name="test")
    audit = AuditLog(client[settings.database("gateway")], 400, queue_size=1)
    audit.record({"_id": "a1"})
    audit.record({"_id": "a2"})  # the queue is full
    assert audit.lost == 1
    await client.close()
    with caplog.at_level(logging.ERROR, logger="stvs.gateway.audit"):
        await audit.flush()  # the database is gone
    assert audit.lost == 2 and audit.stored == 0
    assert "2 lost since the gateway started" in caplog.text


def test_what_is_audited() -> None:
    """``personal``: the operation's service declares that it shows personal data (tests/architecture/test_access.py
    lists them)."""
    assert kind_of("POST", "unit_admin", False, []) == "write"
    assert kind_of("DELETE", "system", False, []) == "write"
    assert kind_of("PATCH", "volunteer", False, []) is None
    assert kind_of("GET", "unit_admin", True, []) == "personal_data"
    assert kind_of("GET", "province_admin", True, ["unit_id"]) == "personal_data"
    assert kind_of("GET", "province_admin", False, ["full_id_number", "reason"]) == "personal_data"
    assert kind_of("GET", "unit_admin", False, ["name"]) is None
    assert kind_of("GET", "volunteer", True, []) is None
    assert unit_ids_of({"unit_id": "K1", "volunteer_id": "V"}, {"unit_id": "C1"}, "C1") == ["K1", "C1"]
