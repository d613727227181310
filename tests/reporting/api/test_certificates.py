"""The service-record certificate (志愿服务记录证明) with a real registry app: the volunteer is registered in the
registry (whose events reach the reporting projections through Kafka), the certificate shows the platform number
and the masked ID number the registry returns, verifies by its number, and is refused with a clear 503 when the
registry cannot be reached."""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from services.reporting.domain import certificates
from shared.identity import Identity
from shared.settings import ServiceSettings
from tests.fixtures import eventually, signing
from tests.registry.helpers import headers as registry_headers
from tests.registry.helpers import id_number, volunteer_body
from tests.reporting.helpers import Harness, at, completed, headers, publish, running, when


class World:
    corps: str
    city: str
    county: str
    other_county: str
    volunteer: str
    platform_number: str


W = World()


@pytest.fixture(scope="module")
async def registry(settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_registry(RegistrySettings(**settings.model_dump()))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), auth=signing(app), base_url="http://registry") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture(scope="module")
async def harness(settings: ServiceSettings, registry: httpx.AsyncClient) -> AsyncIterator[Harness]:
    async with running(settings) as started:
        started.app.state.registry_transport = httpx.ASGITransport(registry.app)  # type: ignore[attr-defined]
        yield started


def pdf_text(content: bytes) -> str:
    """The text a reportlab PDF shows (content streams: ASCII85 + Flate; CID strings: UCS-2 big endian)."""
    shown: list[str] = []
    for stream in re.finditer(rb"stream\r?\n(.*?)endstream", content, re.S):
        try:
            data = zlib.decompress(base64.a85decode(stream.group(1).strip(), adobe=True))
        except ValueError:
            continue
        for literal in re.finditer(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", data, re.S):
            raw = re.sub(
                rb"\\([0-7]{1,3}|.)",
                lambda m: bytes([int(m.group(1), 8)]) if m.group(1)[:1].isdigit() else m.group(1),
                literal.group(1),
            )
            shown.append(raw.decode("utf-16-be", errors="replace") if len(raw) % 2 == 0 else raw.decode("latin-1"))
    return "\n".join(shown)


async def test_setup_registers_the_volunteer_in_the_registry(
    registry: httpx.AsyncClient, harness: Harness, settings: ServiceSettings
) -> None:
    province = registry_headers(settings, "province_admin")
    W.corps = (await registry.post("/units", json={"kind": "总队"}, headers=province)).json()["id"]
    city = {"kind": "市级支队", "base": "石家庄", "parent_id": W.corps}
    r = await registry.post("/units", json=city, headers=province)
    W.city = r.json()["id"]
    ids = []
    for county in ("正定县", "栾城区"):
        r = await registry.post(
            "/units", json={"kind": "county_team", "base": county, "parent_id": W.city}, headers=province
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    W.county, W.other_county = ids
    r = await registry.post("/volunteers", json=volunteer_body(7, unit_id=W.county), headers=province)
    assert r.status_code == 201, r.text
    W.volunteer, W.platform_number = r.json()["id"], r.json()["platform_number"]
    # the registry's own events reach the projection; then an activity gives the volunteer hours
    await eventually(lambda: when(harness.volunteer(W.volunteer), lambda b: b["unit_ids"] == [W.county]))
    await publish(harness.settings, [completed("cert-a1", W.county, at(2026, 5, 10), [(W.volunteer, 3.5)])])
    await eventually(lambda: when(harness.volunteer(W.volunteer), lambda b: b["hours"] == 3.5))


async def test_certificate_shows_platform_number_and_masked_id_and_verifies(harness: Harness) -> None:
    me = Identity(subject="u-v", role="volunteer", volunteer_id=W.volunteer)
    response = await harness.client.get(
        f"/certificates/volunteers/{W.volunteer}.pdf", headers=headers(harness.settings, me)
    )
    assert response.status_code == 200, response.text
    masked = id_number(7)[:2] + "*" * 16  # the province only: the check digit would narrow the candidates
    text = pdf_text(response.content)
    assert "志愿服务记录证明" in text
    assert W.platform_number in text
    assert masked in text
    assert id_number(7) not in text  # never the full number
    assert "3.50 小时" in text

    number = response.headers["X-Certificate-Number"]
    verified = await harness.client.get(f"/certificates/{number}")  # no identity needed to verify
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["valid"] is True
    assert (body["platform_number"], body["id_number_masked"]) == (W.platform_number, masked)
    assert (body["hours"], body["activities"], body["star_level"]) == (3.5, 1, 0)
    assert body["issuing_unit_name"].startswith("正定县")

    prefix, random_part, mac = number.split("-")
    flipped = random_part[:-1] + ("0" if random_part[-1] != "0" else "1")
    for tampered in (f"{prefix}-{flipped}-{mac}", f"{prefix}-{random_part}-{'0' * 16}", number.upper(), "ZM1"):
        refused = await harness.client.get(f"/certificates/{tampered}")
        assert refused.status_code == 404, tampered
        assert refused.json()["code"] == "certificate_invalid"
    # authentic-looking but never issued
    forged = certificates.new_number(harness.settings.certificate_secret.get_secret_value(), at(2026, 5, 1))
    assert (await harness.client.get(f"/certificates/{forged}")).status_code == 404


async def test_who_may_have_a_certificate_issued(harness: Harness) -> None:
    url = f"/certificates/volunteers/{W.volunteer}.pdf"

    async def status(identity: Identity) -> Any:
        return (await harness.client.get(url, headers=headers(harness.settings, identity))).status_code

    # out of scope: 404, the person's record is not revealed (issue 14)
    assert await status(Identity(subject="x", role="volunteer", volunteer_id="someone-else")) == 404
    assert await status(Identity(subject="y", role="unit_admin", unit_id=W.other_county)) == 404
    assert await status(Identity(subject="s", role="system")) == 403  # issuing is a write: not for a read-only key
    assert await status(Identity(subject="z", role="unit_admin", unit_id=W.city)) == 200  # the county's city


async def test_registry_unreachable_is_a_clear_503_and_issues_nothing(harness: Harness) -> None:
    saved = harness.app.state.registry_transport
    harness.app.state.registry_transport = None
    settings = harness.app.state.service.settings
    harness.app.state.service.settings = settings.model_copy(update={"registry_url": "http://127.0.0.1:9"})
    try:
        response = await harness.client.get(
            f"/certificates/volunteers/{W.volunteer}.pdf", headers=headers(harness.settings)
        )
    finally:
        harness.app.state.service.settings = settings
        harness.app.state.registry_transport = saved
    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["code"] == "registry_unavailable"
    assert "登记服务暂时无法访问" in problem["detail"]
    assert "X-Certificate-Number" not in response.headers
