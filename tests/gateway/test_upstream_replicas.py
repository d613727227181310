"""A service behind the gateway as several replicas (``STVS_REGISTRY_URL=a,b``): requests are spread over them, and
one that is down (refuses connections) is skipped for reads and writes alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.gateway.app import create_app
from services.gateway.create_admin import create_admin
from services.gateway.settings import GatewaySettings
from shared.settings import ServiceSettings
from tests.gateway.upstream import Gate, closed_port, fake_service, serving

API = "/api/v1"
ADMIN = ("replicas-admin", "replicas-admin-pass")


class Setup:
    def __init__(self, client: httpx.AsyncClient, gates: list[Gate], auth: dict[str, str]) -> None:
        self.client = client
        self.gates = gates
        self.auth = auth


@pytest.fixture(scope="module")
async def setup(settings: ServiceSettings) -> AsyncIterator[Setup]:
    """The registry as two live stand-ins plus one address nothing listens on; the gateway in front of them."""
    secret = settings.internal_token.get_secret_value()
    gates = [Gate(), Gate()]
    down = f"http://127.0.0.1:{closed_port()}"
    async with (
        serving(fake_service(secret, gates[0], "registry")) as one,
        serving(fake_service(secret, gates[1], "registry")) as two,
    ):
        gs = GatewaySettings(
            **{k: v for k, v in settings.model_dump().items() if k != "http_port"},
            registry_url=f"{down}, {one},{two}/",
            activities_url=down,
            reporting_url=f"{one},{down}",
            notifier_url=down,
        )
        await create_admin(gs, *ADMIN, "省级管理员")
        async with serving(create_app(gs), lifespan="on") as url, httpx.AsyncClient(base_url=url, timeout=15) as c:
            r = await c.post(f"{API}/auth/signin", json={"username": ADMIN[0], "password": ADMIN[1]})
            assert r.status_code == 200, r.text
            yield Setup(c, gates, {"Authorization": f"Bearer {r.json()['access_token']}"})


def test_the_setting_takes_a_list_of_base_urls() -> None:
    gs = GatewaySettings(registry_url=" http://a:1/ , https://b:2")
    assert gs.service_urls("registry") == ["http://a:1", "https://b:2"]
    assert gs.service_urls("notifier") == ["http://127.0.0.1:8004"]
    for bad in ("", "http://a:1,ftp://b", "http://a:1,http://a:1"):
        with pytest.raises(ValidationError):
            GatewaySettings(registry_url=bad)


async def test_reads_and_writes_skip_the_replica_that_is_down_and_spread_over_the_others(setup: Setup) -> None:
    for gate in setup.gates:
        gate.seen.clear()
    for n in range(12):
        r = await setup.client.get(f"{API}/units/U{n}", headers=setup.auth)
        assert r.status_code == 200, r.text
        assert r.json()["unit_id"] == f"U{n}"
    for n in range(6):  # a write is never sent twice, but one that reached no replica may go to the next
        r = await setup.client.post(f"{API}/units", json={"name": f"新队{n}"}, headers=setup.auth)
        assert r.status_code == 200, r.text
        assert r.json()["created"] == f"新队{n}"
    served = [len(g.seen) for g in setup.gates]
    assert sum(served) == 18, "each request reached exactly one live replica"
    assert min(served) >= 3, f"spread over both live replicas: {served}"


async def test_a_service_with_every_replica_down_is_503(setup: Setup) -> None:
    r = await setup.client.get(f"{API}/activities", headers=setup.auth)
    assert r.status_code == 503
    assert r.json()["code"] == "service_unavailable" and "活动服务暂时不可用" in r.json()["detail"]
    r = await setup.client.post(f"{API}/activities", json={"title": "x"}, headers=setup.auth)
    assert r.status_code == 503


async def test_readiness_names_the_replica_that_is_down(setup: Setup) -> None:
    body: dict[str, Any] = (await setup.client.get("/readyz")).json()
    assert body["services"]["registry"].startswith("degraded: 2/3 replicas ok")
    assert body["services"]["reporting"].startswith("degraded: 1/2 replicas ok")
    assert body["services"]["activities"].startswith("unreachable")


async def test_the_public_certificate_check_also_skips_a_replica_that_is_down(setup: Setup) -> None:
    for _ in range(3):
        r = await setup.client.get(f"{API}/public/certificates/ZM20260501-0a1b2c3d4e-good")
        assert r.status_code == 200 and r.json()["valid"] is True
