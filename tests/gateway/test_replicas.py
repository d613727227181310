"""Two gateway replicas on one database: what one decides about sign-in limits and sessions holds on the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.gateway.adapters.mongo import RateLimiter
from services.gateway.app import create_app
from services.gateway.create_admin import create_admin
from services.gateway.settings import GatewaySettings
from shared.settings import ServiceSettings
from shared.storage import mongo_client
from tests.gateway.upstream import Gate, closed_port, fake_services, serving

API = "/api/v1"
ADMIN = ("replica-admin", "replica-admin-pass")
SIGNIN_RATE = 4


@pytest.fixture(scope="module")
async def pair(settings: ServiceSettings) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Gateways A and B: same settings, same database, each its own process state, served by uvicorn."""
    secret = settings.internal_token.get_secret_value()
    async with fake_services(secret, Gate()) as upstream:
        gs = GatewaySettings(
            **{k: v for k, v in settings.model_dump().items() if k != "http_port"},
            registry_url=upstream["registry"],
            activities_url=upstream["activities"],
            reporting_url=upstream["reporting"],
            notifier_url=f"http://127.0.0.1:{closed_port()}",
            signin_rate_per_min=SIGNIN_RATE,
            verify_rate_per_min=3,
        )
        await create_admin(gs, *ADMIN, "省级管理员")
        async with (
            serving(create_app(gs), lifespan="on") as url_a,
            serving(create_app(gs), lifespan="on") as url_b,
            httpx.AsyncClient(base_url=url_a, timeout=15) as a,
            httpx.AsyncClient(base_url=url_b, timeout=15) as b,
        ):
            yield a, b


async def signin(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(f"{API}/auth/signin", json={"username": username, "password": password})


async def test_the_sign_in_limit_is_shared_by_both_replicas(pair: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    a, b = pair
    for n in range(SIGNIN_RATE):  # alternately on A and B, from the same client address
        r = await signin(a if n % 2 else b, ADMIN[0], "wrong-password")
        assert r.status_code == 401, r.text
    for client in (a, b):  # the next one is refused wherever it lands, even with the right password
        r = await signin(client, *ADMIN)
        assert r.status_code == 429, r.text
        assert r.json()["code"] == "signin_rate_limited" and "频繁" in r.json()["detail"]
        assert int(r.headers["retry-after"]) > 0


async def test_certificate_checks_are_limited_across_replicas(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = pair
    url = f"{API}/public/certificates/ZM20260501-0a1b2c3d4e-good"
    codes = [(await (a if n % 2 else b).get(url)).status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]


async def test_a_refresh_token_used_on_one_replica_is_refused_on_the_other(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], settings: ServiceSettings
) -> None:
    a, b = pair
    await _reset_limits(settings)
    r = await signin(a, *ADMIN)
    assert r.status_code == 200, r.text
    first = r.json()
    used = await a.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert used.status_code == 200, used.text
    again = await b.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401
    assert again.json()["code"] == "invalid_refresh_token"
    # the replay ended the session: the token A just handed out is dead on both replicas
    fresh = used.json()
    for client in (a, b):
        r = await client.post(f"{API}/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
        assert r.status_code == 401
        me = await client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {fresh['access_token']}"})
        assert me.status_code == 401


async def test_one_refresh_token_presented_to_both_at_once_is_honoured_at_most_once(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], settings: ServiceSettings
) -> None:
    a, b = pair
    await _reset_limits(settings)
    token = (await signin(b, *ADMIN)).json()["refresh_token"]
    answers = await asyncio.gather(
        a.post(f"{API}/auth/refresh", json={"refresh_token": token}),
        b.post(f"{API}/auth/refresh", json={"refresh_token": token}),
    )
    assert sorted(r.status_code for r in answers).count(200) <= 1
    assert 401 in [r.status_code for r in answers]


async def test_limiters_on_two_connections_let_exactly_the_limit_through(settings: ServiceSettings) -> None:
    """Forty attempts at once from two limiters (two connection pools, as two replicas have): ten pass."""
    clients = [mongo_client(settings.mongo_url, app_name=f"limiter-{n}") for n in range(2)]
    try:
        db_name = settings.database("gateway") + "_limits"
        limiters = [RateLimiter(c[db_name], "test", 10, window_s=1.0) for c in clients]
        waits = await asyncio.gather(*(limiters[n % 2].hit("10.0.0.1") for n in range(40)))
        assert sum(w == 0 for w in waits) == 10
        assert all(0 < w <= 1.0 for w in waits if w)
        assert await limiters[0].hit("10.0.0.2") == 0, "another key has its own window"
        await asyncio.sleep(1.1)
        assert await limiters[1].hit("10.0.0.1") == 0, "the window slid on"
    finally:
        for c in clients:
            await c.drop_database(settings.database("gateway") + "_limits")
            await c.close()


async def _reset_limits(settings: ServiceSettings) -> Any:
    client = mongo_client(settings.mongo_url, app_name="test")
    try:
        await client[settings.database("gateway")]["rate_limits"].delete_many({})
    finally:
        await client.close()
