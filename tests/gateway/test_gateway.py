"""The gateway against the real Kafka and MongoDB-protocol server, served by uvicorn, in front of a fake internal
service."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.gateway.adapters.upstream import Replica
from services.gateway.app import create_app
from services.gateway.create_admin import create_admin
from services.gateway.settings import GatewaySettings
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    UNITS,
    UnitRegistered,
    UnitUpdated,
    VolunteerJoinedUnit,
    VolunteerLeftUnit,
    VolunteerRegistered,
)
from shared.identity import HEADER, Identity, sign_identity
from shared.settings import ServiceSettings
from shared.telemetry import setup_telemetry
from tests.fixtures import eventually
from tests.gateway.upstream import Gate, closed_port, fake_service, fake_services, serving, stand_in_document

API = "/api/v1"
ADMIN = ("province", "province-pass-1")
# The tree: P (province corps) ─ C1 (city) ─ K1 (county);  P ─ C2 (another city)
TREE = {"P": [], "C1": ["P"], "K1": ["P", "C1"], "C2": ["P"]}
PROBLEM = "application/problem+json"


class Env:
    def __init__(self, url: str, gw: Any, gate: Gate, settings: GatewaySettings) -> None:
        self.url = url
        self.gw = gw
        self.gate = gate
        self.settings = settings
        self.client = httpx.AsyncClient(base_url=url, timeout=15)

    async def signin(self, username: str, password: str) -> dict[str, Any]:
        r = await self.client.post(f"{API}/auth/signin", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def bearer(self, username: str, password: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {(await self.signin(username, password))['access_token']}"}

    async def account(self, admin: dict[str, str], **body: Any) -> httpx.Response:
        return await self.client.post(f"{API}/accounts", json=body, headers=admin)


async def publish(settings: ServiceSettings, envelopes: list[Envelope[Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(settings.topic(env.stream), env.to_json(), key=env.subject.encode())
    finally:
        await producer.stop()


def unit_event(unit_id: str, ancestors: list[str]) -> Envelope[Any]:
    data = UnitRegistered(
        unit_id=unit_id,
        name=f"队伍{unit_id}",
        kind="province_corps" if not ancestors else "city_detachment",
        parent_id=ancestors[-1] if ancestors else None,
        ancestors=ancestors,
        status="active",
        registered_at=datetime.now(UTC),
        version=1,
    )
    return Envelope.new(data, source="/stvs/registry", subject=unit_id)


def volunteer_event(volunteer_id: str, unit_ids: list[str]) -> Envelope[Any]:
    data = VolunteerRegistered(
        volunteer_id=volunteer_id,
        platform_number="HB2026000001",
        display_name="张三",
        status="active",
        unit_ids=unit_ids,
        registered_at=datetime.now(UTC),
        version=1,
    )
    return Envelope.new(data, source="/stvs/registry", subject=volunteer_id)


@pytest.fixture(scope="module")
async def env(settings: ServiceSettings) -> AsyncIterator[Env]:
    gate = Gate()
    secret = settings.internal_token.get_secret_value()
    async with fake_services(secret, gate) as upstream:
        gs = GatewaySettings(
            **{k: v for k, v in settings.model_dump().items() if k != "http_port"},
            registry_url=upstream["registry"],
            activities_url=upstream["activities"],
            reporting_url=upstream["reporting"],
            notifier_url=f"http://127.0.0.1:{closed_port()}",  # down
            max_body_bytes=64 * 1024,
            max_upload_bytes=8 * 1024 * 1024,
            verify_rate_per_min=6,
        )
        await create_admin(gs, *ADMIN, "省级管理员")
        app = create_app(gs)
        async with serving(app, lifespan="on") as url:
            e = Env(url, app.state.gateway, gate, gs)
            await publish(settings, [unit_event(u, a) for u, a in TREE.items()])
            await publish(settings, [volunteer_event("V1", ["K1"]), volunteer_event("V2", ["C2"])])
            await eventually(lambda: e.gw.tree.unit("K1"))
            await eventually(lambda: e.gw.tree.unit("C2"))
            await eventually(lambda: e.gw.tree.volunteers.find_one({"_id": "V2"}))
            yield e
            await e.client.aclose()


@pytest.fixture
def notifier_known(env: Env) -> Iterator[None]:
    """The notifier answered its document once and is down now: its paths are known (the gateway enforces their
    declarations), forwarding them is 503. Without it the notifier's document is unknown and its paths are 503."""
    env.gw.docs.services["notifier"] = stand_in_document("notifier")
    try:
        yield
    finally:
        env.gw.docs.services.pop("notifier", None)


@pytest.fixture(scope="module")
async def admin(env: Env) -> dict[str, str]:
    return await env.bearer(*ADMIN)


@pytest.fixture(scope="module")
async def c1_admin(env: Env, admin: dict[str, str]) -> dict[str, str]:
    r = await env.account(admin, username="c1-admin", password="c1-admin-pass", role="unit_admin", unit_id="C1")
    assert r.status_code == 201, r.text
    return await env.bearer("c1-admin", "c1-admin-pass")


@pytest.fixture(scope="module")
async def volunteer(env: Env, admin: dict[str, str]) -> dict[str, str]:
    r = await env.account(admin, username="v1", password="v1-password", role="volunteer", volunteer_id="V1")
    assert r.status_code == 201, r.text
    return await env.bearer("v1", "v1-password")


# ---------------------------------------------------------------- sign-in, tokens, accounts


async def test_signin_refresh_signout(env: Env) -> None:
    tokens = await env.signin(*ADMIN)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    assert tokens["account"]["role"] == "province_admin"
    me = await env.client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == ADMIN[0]

    r = await env.client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    auth = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert (await env.client.get(f"{API}/auth/me", headers=auth)).status_code == 200

    r = await env.client.post(f"{API}/auth/signout", headers=auth)
    assert r.status_code == 204
    gone = await env.client.get(f"{API}/auth/me", headers=auth)
    assert gone.status_code == 401
    assert gone.headers["content-type"] == PROBLEM
    r = await env.client.post(f"{API}/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert r.status_code == 401


async def test_a_reused_refresh_token_ends_the_session(env: Env) -> None:
    tokens = await env.signin(*ADMIN)
    r = await env.client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200
    replay = await env.client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await env.client.get(f"{API}/auth/me", headers=auth)).status_code == 401


async def test_wrong_password_and_unknown_user(env: Env) -> None:
    for username, password in ((ADMIN[0], "wrong-password"), ("nobody", "whatever-pass")):
        r = await env.client.post(f"{API}/auth/signin", json={"username": username, "password": password})
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == "用户名或密码错误"
    r = await env.client.get(f"{API}/auth/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401
    assert (await env.client.get(f"{API}/units/P")).status_code == 401


async def test_signin_is_rate_limited_per_username_and_ip(env: Env, admin: dict[str, str]) -> None:
    r = await env.account(admin, username="limited", password="limited-pass", role="province_admin")
    assert r.status_code == 201
    for _ in range(env.settings.signin_rate_per_min):
        r = await env.client.post(f"{API}/auth/signin", json={"username": "limited", "password": "bad-password"})
        assert r.status_code == 401
    r = await env.client.post(f"{API}/auth/signin", json={"username": "limited", "password": "limited-pass"})
    assert r.status_code == 429
    assert r.headers["content-type"] == PROBLEM
    assert "频繁" in r.json()["detail"]
    assert int(r.headers["retry-after"]) > 0
    # another username from the same IP is not affected
    assert (
        await env.client.post(f"{API}/auth/signin", json=dict(zip(("username", "password"), ADMIN, strict=True)))
    ).status_code == 200


async def test_a_disabled_account_stops_working_at_once(env: Env, admin: dict[str, str]) -> None:
    r = await env.account(admin, username="soon-gone", password="soon-gone-pass", role="unit_admin", unit_id="C2")
    account_id = r.json()["account"]["id"]
    tokens = await env.signin("soon-gone", "soon-gone-pass")
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await env.client.get(f"{API}/units/C2", headers=auth)).status_code == 200

    r = await env.client.patch(f"{API}/accounts/{account_id}", json={"disabled": True}, headers=admin)
    assert r.status_code == 200
    assert r.json()["disabled"] is True
    for call in (env.client.get(f"{API}/units/C2", headers=auth), env.client.get(f"{API}/auth/me", headers=auth)):
        assert (await call).status_code == 401
    r = await env.client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401
    r = await env.client.post(f"{API}/auth/signin", json={"username": "soon-gone", "password": "soon-gone-pass"})
    assert r.status_code == 403


async def test_admins_create_accounts_only_inside_their_scope(
    env: Env, admin: dict[str, str], c1_admin: dict[str, str]
) -> None:
    inside = await env.account(c1_admin, username="k1-admin", password="k1-admin-pass", role="unit_admin", unit_id="K1")
    assert inside.status_code == 201, inside.text
    assert inside.json()["account"]["unit_id"] == "K1"
    for body in (
        {"username": "c2-admin", "password": "c2-admin-pass", "role": "unit_admin", "unit_id": "C2"},
        {"username": "p-admin", "password": "p-admin-pass", "role": "unit_admin", "unit_id": "P"},
        {"username": "boss", "password": "boss-password", "role": "province_admin"},
        {"username": "robot", "role": "system"},
        {"username": "v2", "password": "v2-password", "role": "volunteer", "volunteer_id": "V2"},
    ):
        r = await env.account(c1_admin, **body)
        assert r.status_code == 403, (body, r.text)
        assert r.headers["content-type"] == PROBLEM
    ok = await env.account(c1_admin, username="v1b", password="v1b-password", role="volunteer", volunteer_id="V1")
    assert ok.status_code == 201  # V1 belongs to K1, below C1

    listed = await env.client.get(f"{API}/accounts", headers=c1_admin)
    names = {a["username"] for a in listed.json()}
    assert {"c1-admin", "k1-admin", "v1b"} <= names
    assert not names & {ADMIN[0], "soon-gone"}
    everyone = {a["username"] for a in (await env.client.get(f"{API}/accounts", headers=admin)).json()}
    assert names < everyone

    c2 = next(a for a in (await env.client.get(f"{API}/accounts", headers=admin)).json() if a["unit_id"] == "C2")
    assert (await env.client.get(f"{API}/accounts/{c2['id']}", headers=c1_admin)).status_code == 404
    r = await env.client.patch(f"{API}/accounts/{c2['id']}", json={"disabled": False}, headers=c1_admin)
    assert r.status_code == 403
    dup = await env.account(admin, username="K1-ADMIN", password="another-pass", role="unit_admin", unit_id="K1")
    assert dup.status_code == 409


async def test_changing_the_password_ends_every_session(env: Env, admin: dict[str, str]) -> None:
    await env.account(admin, username="changer", password="first-password", role="unit_admin", unit_id="K1")
    one, two = await env.bearer("changer", "first-password"), await env.bearer("changer", "first-password")
    url = f"{API}/auth/password"
    wrong = await env.client.post(url, json={"old_password": "nope", "new_password": "second-password"}, headers=one)
    assert wrong.status_code == 422
    change = {"old_password": "first-password", "new_password": "second-password"}
    r = await env.client.post(url, json=change, headers=one)
    assert r.status_code == 204
    for auth in (one, two):
        assert (await env.client.get(f"{API}/auth/me", headers=auth)).status_code == 401
    fresh = await env.bearer("changer", "second-password")
    assert (await env.client.get(f"{API}/auth/me", headers=fresh)).status_code == 200


async def test_volunteers_and_systems_cannot_manage_accounts(
    env: Env, admin: dict[str, str], volunteer: dict[str, str]
) -> None:
    r = await env.account(volunteer, username="x-user", password="x-password", role="volunteer", volunteer_id="V1")
    assert r.status_code == 403
    r = await env.account(admin, username="robot", role="system")
    assert r.status_code == 201
    key = r.json()["api_key"]
    assert key
    r = await env.client.get(f"{API}/accounts", headers={"X-API-Key": key})
    assert r.status_code == 403


# ---------------------------------------------------------------- scope at the gateway


async def test_unit_admin_scope(env: Env, c1_admin: dict[str, str]) -> None:
    async def status(method: str, path: str, **kw: Any) -> int:
        return (await env.client.request(method, API + path, headers=c1_admin, **kw)).status_code

    assert await status("GET", "/units/C1") == 200
    assert await status("GET", "/units/K1") == 200
    assert await status("GET", "/units/C2") == 404  # beside
    assert await status("GET", "/units/P") == 404  # above
    assert await status("GET", "/units/unknown") == 404
    assert await status("POST", "/units/K1/leaders") == 200
    assert await status("POST", "/units/C2/leaders") == 403
    assert await status("GET", "/volunteers", params={"unit_id": "K1"}) == 200
    assert await status("GET", "/volunteers", params={"unit_id": "C2"}) == 404
    assert await status("GET", "/volunteers", params=[("unit_id", "K1"), ("unit_id", "C2")]) == 404
    assert await status("GET", "/volunteers/V1") == 200  # member of K1
    assert await status("GET", "/volunteers/V2") == 404  # member of C2
    assert await status("PATCH", "/volunteers/V2", json={}) == 403
    # the body fields the registry declares as naming a unit (a list of ids: tests/gateway/usecases/test_access.py)
    assert await status("POST", "/units", json={"name": "新队", "parent_id": "C2"}) == 403
    assert await status("POST", "/units", json={"name": "新队", "parent_id": "K1"}) == 200
    assert await status("GET", "/units/C2%3Fx=1") == 404  # an encoded '?' stays part of the id
    assert await status("GET", "/registry/admin/dlq", params={"stream": "x"}) == 403


async def test_volunteer_scope(env: Env, volunteer: dict[str, str], notifier_known: None) -> None:
    """Volunteer V1 (member of K1): itself, its sign-ups, check-in with the code, hours, certificate, inbox."""

    async def status(method: str, path: str, **kw: Any) -> int:
        return (await env.client.request(method, API + path, headers=volunteer, **kw)).status_code

    # itself
    assert await status("GET", "/volunteers/V1") == 200
    assert await status("PATCH", "/volunteers/V1", json={}) == 200
    assert await status("POST", "/volunteers/V1/units/C2") == 200  # asks to join a unit
    assert await status("DELETE", "/volunteers/V1/units/K1") == 200
    assert await status("POST", "/volunteers/V1/units/K1/approve") == 403  # an admin's decision
    assert await status("GET", "/volunteers/V2") == 404
    assert await status("PATCH", "/volunteers/V2", json={}) == 403
    assert await status("GET", "/volunteers") == 404
    # public listings
    assert await status("GET", "/activities") == 200
    assert await status("GET", "/activities/a1") == 200
    assert await status("GET", "/activities/a1/signups") == 404  # the roster is the organisers'
    assert await status("GET", "/activities/a1/attendance") == 404
    assert await status("GET", "/activities/a1/checkin-code") == 404  # the code is shown on site, not fetched
    assert await status("POST", "/activities", json={"title": "x"}) == 403
    assert await status("POST", "/activities/a1/publish") == 403
    # its sign-ups: for itself only, whether the id is in the path or in the body
    assert await status("POST", "/activities/a1/signups") == 200
    assert await status("POST", "/activities/a1/signups", json={}) == 200
    assert await status("POST", "/activities/a1/signups", json={"volunteer_id": "V1"}) == 200
    assert await status("POST", "/activities/a1/signups", json={"volunteer_id": "V2"}) == 403
    assert await status("POST", "/activities/a1/signups", content=b'{"volunteer_id": "V2"}') == 403  # no type
    assert await status("DELETE", "/activities/a1/signups/V1") == 200
    assert await status("DELETE", "/activities/a1/signups/V2") == 403
    assert await status("POST", "/activities/a1/signups/V1/approve") == 403
    # check-in / check-out with the activity's code
    for kind in ("checkin", "checkout"):
        assert await status("POST", f"/activities/a1/{kind}", json={"code": "c0de"}) == 200
        assert await status("POST", f"/activities/a1/{kind}", json={"code": "c0de", "volunteer_id": "V1"}) == 200
        assert await status("POST", f"/activities/a1/{kind}", json={"code": "c0de", "volunteer_id": "V2"}) == 403
    forwarded = env.gate.seen[-1]
    assert forwarded["identity"]["volunteer_id"] == "V1" and forwarded["path"] == "/activities/a1/checkout"
    assert await status("POST", "/activities/a1/attendance/V1/correction", json={"hours": 9}) == 403
    # hours, certificate, inbox
    assert await status("GET", "/stats/volunteers/V1") == 200
    assert await status("GET", "/stats/volunteers/V2") == 404
    assert await status("GET", "/stats/units/K1") == 404
    assert await status("GET", "/certificates/volunteers/V1.pdf") == 200
    assert await status("GET", "/certificates/volunteers/V1.pdf", params={"unit_id": "K1"}) == 200
    assert await status("GET", "/certificates/volunteers/V1.pdf", params={"unit_id": "P"}) == 404  # not its unit
    assert await status("GET", "/certificates/volunteers/V2.pdf") == 404
    # (forwarded: the notifier is down in this module, so 503 says the gateway let the call through)
    assert await status("GET", "/notifications") == 503
    assert await status("GET", "/notifications", params={"recipient": "volunteer:V1"}) == 503
    assert await status("GET", "/notifications", params={"recipient": "volunteer:V2"}) == 404
    assert await status("GET", "/notifications", params={"recipient": "unit:K1"}) == 404
    # nothing else
    assert await status("GET", "/units/K1") == 404
    assert await status("POST", "/units", json={"name": "x"}) == 403
    assert await status("GET", "/compliance", params={"unit_id": "K1"}) == 404
    assert await status("GET", "/deadlines") == 404
    assert await status("GET", "/demands") == 404


async def test_unit_admins_reach_volunteers_records_only_in_scope(
    env: Env, c1_admin: dict[str, str], notifier_known: None
) -> None:
    async def status(method: str, path: str, **kw: Any) -> int:
        return (await env.client.request(method, API + path, headers=c1_admin, **kw)).status_code

    assert await status("GET", "/stats/volunteers/V1") == 200
    assert await status("GET", "/stats/volunteers/V2") == 404
    assert await status("GET", "/certificates/volunteers/V1.pdf") == 200
    assert await status("GET", "/certificates/volunteers/V2.pdf") == 404
    assert await status("GET", "/stats/units/K1") == 200
    assert await status("GET", "/stats/units/C2") == 404
    assert await status("GET", "/obligations/C2") == 404
    assert await status("GET", "/obligations/K1") == 503  # forwarded (to the notifier, down here)
    assert await status("POST", "/monthly-reports/C2/2026-05/submit") == 403
    assert await status("POST", "/volunteers/V1/units/C2") == 403
    assert await status("GET", "/units/suggest-name", params={"kind": "county_team"}) == 200  # a route, not a unit
    # an activity's sign-up of a volunteer from elsewhere is the organising unit's (the service checks the activity)
    assert await status("DELETE", "/activities/a1/signups/V2") == 200


async def test_a_unit_just_registered_is_reached_at_once(env: Env, c1_admin: dict[str, str]) -> None:
    """Issue 14: the gateway's copy of the tree lags the registry's events; for an id it does not know it asks the
    registry, so an admin reads and changes the unit it has just registered (and still nothing beside it)."""
    assert await env.gw.tree.units.find_one({"_id": "NEW-K9"}) is None
    r = await env.client.get(f"{API}/units/NEW-K9", headers=c1_admin)
    assert r.status_code == 200, r.text
    r = await env.client.patch(f"{API}/units/NEW-K9", json={"phone": "0311-1"}, headers=c1_admin)
    assert r.status_code == 200, r.text
    assert (await env.gw.tree.units.find_one({"_id": "NEW-K9"}) or {}).get("ancestors") == ["P", "C1"]  # learned
    beside = await env.client.get(f"{API}/units/NEW-ELSEWHERE", headers=c1_admin)
    assert beside.status_code == 404 and beside.headers["x-stvs-denied-by"] == "gateway"
    unknown = await env.client.get(f"{API}/units/NO-SUCH-UNIT", headers=c1_admin)
    assert unknown.status_code == 404 and unknown.headers["x-stvs-denied-by"] == "gateway"


@pytest.mark.parametrize(
    "content_type",
    [
        "Application/JSON",
        "application/merge-patch+json",
        "application/json; charset=utf-8",
        "application/vnd.stvs.unit+json",
        "text/plain",
        None,  # no media type at all: the services read such a body as JSON
    ],
)
async def test_the_body_scope_check_reads_every_json_body(
    env: Env, c1_admin: dict[str, str], content_type: str | None
) -> None:
    """Issue 14: a unit admin's body naming a unit outside its scope is refused by the gateway whatever media type
    the request claims (it used to be checked for exactly ``application/json`` only)."""
    headers = dict(c1_admin)
    if content_type is not None:
        headers["content-type"] = content_type
    body = json.dumps({"name": "某县科技志愿者队", "parent_id": "C2"}).encode()
    r = await env.client.post(f"{API}/units", content=body, headers=headers)
    assert r.status_code == 403, r.text
    assert r.headers["x-stvs-denied-by"] == "gateway"
    inside = json.dumps({"name": "某县科技志愿者队", "parent_id": "K1"}).encode()
    assert (await env.client.post(f"{API}/units/K1/leaders", content=inside, headers=headers)).status_code == 200


async def test_certificates_verify_without_signing_in(env: Env) -> None:
    url = f"{API}/public/certificates"
    r = await env.client.get(f"{url}/ZM20260501-0a1b2c3d4e-good")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "valid": True,
        "number": "ZM20260501-0a1b2c3d4e-good",
        "platform_number": "HB2026000011",
        "name_masked": "张*普",
        "hours": 2.0,
        "issuing_unit_name": "石家庄市科技志愿者支队",
        "issued_at": "2026-05-01T02:00:00Z",
    }
    assert env.gate.seen[-1]["identity"] is None  # nobody's identity is lent to an anonymous caller
    assert env.gate.seen[-1]["path"] == "/certificates/ZM20260501-0a1b2c3d4e-good"
    r = await env.client.get(f"{url}/ZM20260501-0a1b2c3d4e-forged")
    assert r.status_code == 200
    assert r.json()["valid"] is False
    assert r.json()["platform_number"] is None and r.json()["name_masked"] is None
    # rate-limited per client address
    for _ in range(env.settings.verify_rate_per_min - 2):
        await env.client.get(f"{url}/ZM20260501-0a1b2c3d4e-x")
    r = await env.client.get(f"{url}/ZM20260501-0a1b2c3d4e-good")
    assert r.status_code == 429
    assert r.headers["content-type"] == PROBLEM
    assert "频繁" in r.json()["detail"]
    assert int(r.headers["retry-after"]) > 0


def real_service_documents(settings: ServiceSettings) -> dict[str, dict[str, Any]]:
    """The OpenAPI documents of the four real services (their apps built, not started)."""
    from services.activities.app import create_app as activities_app
    from services.activities.settings import ActivitiesSettings
    from services.notifier.app import create_app as notifier_app
    from services.notifier.settings import NotifierSettings
    from services.registry.app import create_app as registry_app
    from services.registry.settings import RegistrySettings
    from services.reporting.app import create_app as reporting_app
    from services.reporting.settings import ReportingSettings

    values = {k: v for k, v in settings.model_dump().items() if k != "http_port"}
    apps = {
        "registry": registry_app(RegistrySettings(**values)),
        "activities": activities_app(ActivitiesSettings(**values)),
        "reporting": reporting_app(ReportingSettings(**values)),
        "notifier": notifier_app(NotifierSettings(**values)),
    }
    return {name: app.openapi() for name, app in apps.items()}


async def test_system_accounts_are_read_only(env: Env, admin: dict[str, str]) -> None:
    r = await env.account(admin, username="reader", role="system")
    key = {"X-API-Key": r.json()["api_key"]}
    ok = await env.client.get(f"{API}/units/C2", headers=key)
    assert ok.status_code == 200
    assert ok.json()["identity"]["role"] == "system"
    assert (await env.client.post(f"{API}/units/C2/leaders", headers=key)).status_code == 403
    assert (await env.client.get(f"{API}/units/C2", headers={"X-API-Key": "stvs_wrong"})).status_code == 401


async def test_the_tree_copy_follows_moves_and_ignores_stale_events(env: Env) -> None:
    c1_admin = Identity(subject="t", role="unit_admin", unit_id="C1")
    tree = env.gw.tree
    moved = UnitUpdated(
        **{**unit_event("M1", ["P", "C1"]).data.model_dump(), "version": 2, "changed": ["parent_id"]}
    ).model_copy(update={"parent_id": "C2", "ancestors": ["P", "C2"]})
    await publish(env.settings, [unit_event("M1", ["P", "C1"])])
    await eventually(lambda: tree.in_scope(c1_admin, "M1"))
    await publish(env.settings, [Envelope.new(moved, source="/stvs/registry", subject="M1")])
    await eventually(lambda: _version(tree, "M1", 2))
    assert not await tree.in_scope(c1_admin, "M1")
    await publish(env.settings, [unit_event("M1", ["P", "C1"])])  # redelivered old state: version 1 < 2
    await publish(env.settings, [unit_event("M2", ["P", "C1"])])  # a later event on the same stream
    await eventually(lambda: tree.unit("M2"))
    assert not await tree.in_scope(c1_admin, "M1")

    joined = VolunteerJoinedUnit(volunteer_id="V2", unit_id="K1", joined_at=datetime.now(UTC), version=2)
    await publish(env.settings, [Envelope.new(joined, source="/stvs/registry", subject="V2")])
    await eventually(lambda: tree.volunteer_in_scope(c1_admin, "V2"))
    left = VolunteerLeftUnit(volunteer_id="V2", unit_id="K1", left_at=datetime.now(UTC), version=3)
    await publish(env.settings, [Envelope.new(left, source="/stvs/registry", subject="V2")])
    await eventually(lambda: _vversion(tree, "V2", 3))
    assert not await tree.volunteer_in_scope(c1_admin, "V2")


async def _version(tree: Any, unit_id: str, version: int) -> bool:
    doc = await tree.unit(unit_id)
    return doc is not None and doc["version"] == version


async def _vversion(tree: Any, volunteer_id: str, version: int) -> bool:
    doc = await tree.volunteers.find_one({"_id": volunteer_id})
    return doc is not None and doc["version"] == version


# ---------------------------------------------------------------- the proxy


async def test_the_identity_arrives_signed_and_credentials_do_not(env: Env, c1_admin: dict[str, str]) -> None:
    forged = sign_identity(
        Identity(subject="x", role="province_admin"),
        "not-the-internal-secret-at-all-nor-near-it",
        service="registry",
        method="GET",
        target="/units/K1?fields=name",
    )
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = await env.client.get(
        f"{API}/units/K1",
        params={"fields": "name"},
        headers={**c1_admin, HEADER: forged, "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["identity"]["role"] == "unit_admin"
    assert seen["identity"]["unit_id"] == "C1"
    assert seen["identity"]["display_name"] == "c1-admin"
    assert seen["authorization"] is None
    assert seen["path"] == "/units/K1"
    assert seen["query"] == "fields=name"
    assert seen["traceparent"] is not None
    assert seen["traceparent"].split("-")[1] == trace_id


async def test_one_trace_from_the_gateway_into_the_service(env: Env, admin: dict[str, str]) -> None:
    exporter = InMemorySpanExporter()
    setup_telemetry("test", extra_processors=(SimpleSpanProcessor(exporter),))
    r = await env.client.get(f"{API}/units/P", headers=admin)
    assert r.status_code == 200
    trace_id = r.json()["traceparent"].split("-")[1]
    spans = [s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]
    kinds = {s.kind for s in spans}
    assert {trace.SpanKind.SERVER, trace.SpanKind.CLIENT} <= kinds, [s.name for s in spans]


async def test_service_problems_pass_through_unchanged(env: Env, admin: dict[str, str]) -> None:
    r = await env.client.get(f"{API}/units/C1/conflict", headers=admin)
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == "unit_conflict"
    assert body["detail"] == "队伍名称已存在"
    assert body["instance"] == "/units/C1/conflict"


async def test_a_service_that_is_down_gives_503_in_chinese(env: Env, admin: dict[str, str]) -> None:
    started = time.monotonic()
    r = await env.client.get(f"{API}/deadlines", headers=admin)
    assert time.monotonic() - started < 5
    assert r.status_code == 503
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["retry-after"]
    body = r.json()
    assert body["code"] == "service_unavailable"
    assert "通知服务暂时不可用" in body["detail"]


class Body(httpx.AsyncByteStream):
    """A response body the gateway streams on (a mock transport's ``json=`` would be read before it)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


async def test_only_idempotent_reads_are_retried(env: Env, admin: dict[str, str], notifier_known: None) -> None:
    """A service that refuses connections (restarting) gets the GET again, never a POST: a write is not repeated."""
    attempts: list[str] = []

    def refuse_twice(request: httpx.Request) -> httpx.Response:
        attempts.append(request.method)
        if len(attempts) <= 2:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=Body(b'{"ok": true}'))

    pool = env.gw.upstreams.pools["notifier"]
    real = pool.replicas
    mocked = httpx.AsyncClient(base_url=real[0].url, transport=httpx.MockTransport(refuse_twice))
    pool.replicas = [Replica(real[0].url, mocked)]
    try:
        r = await env.client.get(f"{API}/deadlines", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json() == {"ok": True}
        assert attempts == ["GET", "GET", "GET"]
        attempts.clear()
        r = await env.client.post(f"{API}/subscriptions", headers=admin, json={"url": "https://example.com/hook"})
        assert r.status_code == 503
        assert r.json()["code"] == "service_unavailable"
        assert attempts == ["POST"]
    finally:
        await mocked.aclose()
        pool.replicas = real


async def test_unknown_resource_is_404(env: Env, admin: dict[str, str], notifier_known: None) -> None:
    r = await env.client.get(f"{API}/nothing-here", headers=admin)
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM


async def test_uploads_stream_through(env: Env, admin: dict[str, str]) -> None:
    """The first chunk reaches the service before the client sent the rest: the gateway does not buffer."""
    env.gate.request_started.clear()
    chunk = b"z" * (256 * 1024)
    sent = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        sent.update(chunk)
        yield chunk
        await asyncio.wait_for(env.gate.request_started.wait(), 10)
        for _ in range(11):
            sent.update(chunk)
            yield chunk

    r = await env.client.post(
        f"{API}/forms/upload",
        content=body(),
        headers={**admin, "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["bytes"] == 12 * len(chunk)
    assert r.json()["sha256"] == sent.hexdigest()


async def test_downloads_stream_through(env: Env, admin: dict[str, str]) -> None:
    """The first megabyte reaches the client before the service produced the rest."""
    env.gate.response_read.clear()
    total = 0
    async with env.client.stream("GET", f"{API}/exports/big", params={"size_mb": 4, "wait": True}, headers=admin) as r:
        assert r.status_code == 200
        assert r.headers["content-disposition"] == 'attachment; filename="big.xlsx"'
        async for part in r.aiter_raw():
            total += len(part)
            if total >= 1024 * 1024:
                env.gate.response_read.set()
    assert total == 4 * 1024 * 1024


async def test_bodies_over_the_limit_are_413(env: Env, admin: dict[str, str]) -> None:
    big = b"{" + b" " * (65 * 1024) + b"}"
    r = await env.client.post(f"{API}/units", content=big, headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "body_too_large"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(20):
            yield b" " * 8192

    r = await env.client.post(f"{API}/units", content=chunked(), headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 413

    upload = b"u" * (9 * 1024 * 1024)
    r = await env.client.post(
        f"{API}/forms/upload", content=upload, headers={**admin, "Content-Type": "multipart/form-data; boundary=x"}
    )
    assert r.status_code == 413
    assert r.json()["code"] == "upload_too_large"


async def test_dead_letter_admin_routes_are_for_province_admins(env: Env, admin: dict[str, str]) -> None:
    r = await env.client.get(f"{API}/registry/admin/dlq", params={"stream": "stvs.registry.units"}, headers=admin)
    assert r.status_code == 200
    assert r.json()[0]["path"] == "/admin/dlq"


async def test_the_gateways_own_dead_letters(env: Env, admin: dict[str, str], c1_admin: dict[str, str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=env.settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(env.settings.topic(UNITS), b"not an event", key=b"poison")
    finally:
        await producer.stop()
    url = f"{API}/gateway/admin/dlq"

    async def letters() -> list[Any]:
        r = await env.client.get(url, params={"stream": UNITS}, headers=admin)
        assert r.status_code == 200, r.text
        return list(r.json())

    found = await eventually(letters)
    assert found[0]["reason"] == "not_json"
    assert (await env.client.get(url, params={"stream": UNITS}, headers=c1_admin)).status_code == 403
    assert (await env.client.get(url, params={"stream": "stvs.notifier.deadlines"}, headers=admin)).status_code == 404


# ---------------------------------------------------------------- documents and health


async def test_one_openapi_document_and_swagger(env: Env) -> None:
    r = await env.client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert f"{API}/auth/signin" in paths
    assert f"{API}/accounts" in paths
    assert f"{API}/units/{{unit_id}}" in paths
    assert f"{API}/forms/upload" in paths
    assert f"{API}/registry/admin/dlq" in paths
    assert "/healthz" not in [p for p in paths if p.startswith(API)]
    assert r.json()["info"]["x-missing-services"] == ["notifier"]
    docs = await env.client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_health_and_readiness(env: Env) -> None:
    assert (await env.client.get("/healthz")).json()["service"] == "gateway"
    r = await env.client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mongodb"] == "ok"
    assert body["services"]["registry"] == "ok"
    assert body["services"]["notifier"].startswith("unreachable")


async def test_a_service_that_comes_up_later_joins_the_document_and_the_proxy(env: Env, admin: dict[str, str]) -> None:
    """Last in this module: brings the 'down' notifier up."""
    before = (await env.client.get("/openapi.json")).json()
    assert f"{API}/notifier/admin/dlq" not in before["paths"]
    port = int(env.settings.notifier_url.rsplit(":", 1)[1])
    async with serving(fake_service(env.settings.internal_token.get_secret_value(), Gate(), "notifier"), port=port):
        after = (await env.client.get("/openapi.json")).json()
        assert f"{API}/notifier/admin/dlq" in after["paths"]
        assert "x-missing-services" not in after["info"]
        r = await env.client.get(f"{API}/notifier/admin/dlq", params={"stream": "s"}, headers=admin)
        assert r.status_code == 200
        assert r.json()[0]["identity"]["role"] == "province_admin"
        assert (await env.client.get("/readyz")).json()["services"]["notifier"] == "ok"


async def test_a_route_deployed_after_the_gateway_read_the_documents_is_learned(
    env: Env, admin: dict[str, str]
) -> None:
    """A path no document declares sends for every document again (at most every 30 s): a service redeployed with a
    new route is reached without restarting the gateway."""
    docs = env.gw.docs
    read = docs.services["registry"]
    docs.services["registry"] = {"paths": {}}  # as read before the registry's routes were deployed
    docs.next_reload = 0.0
    try:
        r = await env.client.get(f"{API}/units/K1", headers=admin)
        assert r.status_code == 200, r.text
        assert "/units/{unit_id}" in docs.services["registry"]["paths"]
        assert docs.next_reload > 0.0
    finally:
        docs.services["registry"] = read
