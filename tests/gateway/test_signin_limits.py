"""Sign-in limits per address and in total, before any password is hashed, through real gateways (shared DB)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import services.gateway.adapters.passwords as gateway_api
from services.gateway.app import create_app
from services.gateway.create_admin import create_admin
from services.gateway.domain.clients import forwarded_client
from services.gateway.settings import GatewaySettings
from shared.settings import ServiceSettings
from shared.storage import mongo_client
from tests.gateway.upstream import Gate, closed_port, fake_services, serving

API = "/api/v1"
ADMIN = ("limits-admin", "limits-admin-pass")
PER_ADDRESS = 4
TOTAL = 7


@pytest.fixture(scope="module")
async def gateways(settings: ServiceSettings) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Gateway A trusts no proxy; gateway B (same database) trusts 127.0.0.1 — the test client — as its proxy."""
    async with fake_services(settings.internal_token.get_secret_value(), Gate()) as upstream:
        values: dict[str, Any] = {
            **{k: v for k, v in settings.model_dump().items() if k != "http_port"},
            "registry_url": upstream["registry"],
            "activities_url": upstream["activities"],
            "reporting_url": upstream["reporting"],
            "notifier_url": f"http://127.0.0.1:{closed_port()}",
            "signin_rate_per_min": 3,
            "signin_address_rate_per_min": PER_ADDRESS,
            "signin_total_rate_per_min": TOTAL,
        }
        plain = GatewaySettings(**values)
        proxied = GatewaySettings(**{**values, "trusted_proxies": "127.0.0.1/32"})
        await create_admin(plain, *ADMIN, "省级管理员")
        async with (
            serving(create_app(plain), lifespan="on") as url_a,
            serving(create_app(proxied), lifespan="on") as url_b,
            httpx.AsyncClient(base_url=url_a, timeout=15) as a,
            httpx.AsyncClient(base_url=url_b, timeout=15) as b,
        ):
            yield a, b


@pytest.fixture
async def hashed(settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fresh limits, and a record of every password the gateways hashed to check a sign-in."""
    client = mongo_client(settings.mongo_url, app_name="test")
    try:
        await client[settings.database("gateway")]["rate_limits"].delete_many({})
    finally:
        await client.close()
    seen: list[str] = []
    real = gateway_api.verify_password

    async def counting(password_hash: str | None, password: str) -> bool:
        seen.append(password)
        return await real(password_hash, password)

    monkeypatch.setattr(gateway_api, "verify_password", counting)
    return seen


async def signin(client: httpx.AsyncClient, username: str, *, via: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": via} if via else {}
    body = {"username": username, "password": "wrong-password"}
    return await client.post(f"{API}/auth/signin", json=body, headers=headers)


async def test_many_usernames_from_one_address_are_throttled_before_hashing(
    gateways: tuple[httpx.AsyncClient, httpx.AsyncClient], hashed: list[str]
) -> None:
    a, _ = gateways
    # a forged X-Forwarded-For changes nothing: gateway A trusts no proxy, the peer is the client
    codes = [(await signin(a, f"guess-{n}", via=f"198.51.100.{n}")).status_code for n in range(PER_ADDRESS)]
    assert codes == [401] * PER_ADDRESS
    refused = await signin(a, "guess-new", via="198.51.100.200")
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "signin_rate_limited" and int(refused.headers["retry-after"]) > 0
    assert refused.headers["content-type"] == "application/problem+json"
    assert len(hashed) == PER_ADDRESS, "the refused attempt hashed no password"


async def test_behind_a_trusted_proxy_each_client_address_has_its_own_budget(
    gateways: tuple[httpx.AsyncClient, httpx.AsyncClient], hashed: list[str]
) -> None:
    _, b = gateways
    for n in range(PER_ADDRESS):
        assert (await signin(b, f"spray-{n}", via="203.0.113.5")).status_code == 401
    assert (await signin(b, "spray-x", via="203.0.113.5")).status_code == 429
    # a client that prepends a made-up hop is still itself: the proxy appended its real address last
    assert (await signin(b, "spray-y", via="10.9.9.9, 203.0.113.5")).status_code == 429
    assert (await signin(b, "spray-z", via="203.0.113.6")).status_code == 401, "another client is not held back"


async def test_the_total_limit_holds_across_addresses_and_replicas(
    gateways: tuple[httpx.AsyncClient, httpx.AsyncClient], hashed: list[str]
) -> None:
    a, b = gateways
    codes = [(await signin(b, f"wide-{n}", via=f"192.0.2.{n}")).status_code for n in range(TOTAL - 1)]
    codes.append((await signin(a, "wide-a")).status_code)
    assert codes == [401] * TOTAL
    for client, via in ((b, "192.0.2.99"), (a, None)):
        refused = await signin(client, "wide-late", via=via)
        assert refused.status_code == 429, refused.text
    assert len(hashed) == TOTAL


def test_the_client_address_is_read_from_the_right_of_the_trusted_hops() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert forwarded_client("192.0.2.1", ["203.0.113.9"], proxies) == "192.0.2.1", "an untrusted peer is the client"
    assert forwarded_client("10.0.0.2", ["203.0.113.9"], proxies) == "203.0.113.9"
    assert forwarded_client("10.0.0.2", ["1.2.3.4, 203.0.113.9, 10.0.0.7"], proxies) == "203.0.113.9"
    assert forwarded_client("10.0.0.2", ["1.2.3.4", "203.0.113.9"], proxies) == "203.0.113.9"
    assert forwarded_client("10.0.0.2", ["nonsense, 10.0.0.7"], proxies) == "10.0.0.7"
    assert forwarded_client("10.0.0.2", [], proxies) == "10.0.0.2"
    assert forwarded_client("10.0.0.2", ["203.0.113.9"], []) == "10.0.0.2", "no trusted proxy: the peer"
