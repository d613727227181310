"""The ID-number oracle closed: an upload (dry run or not) or a registration whose ID number is registered in
another city says only "已在其他单位注册" (no platform number, no unit); such answers are bounded per account and
day (shared through MongoDB: 429 beyond) and each is recorded in ``id_lookups``. Inside the caller's scope the
answer still names the number and the unit. Against the real infrastructure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.registry.adapters.lookups import ID_LOOKUPS
from services.registry.adapters.spreadsheets.forms import VOLUNTEERS
from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.settings import ServiceSettings
from tests.registry.api.test_forms_api import upload, volunteer_row, workbook
from tests.registry.helpers import CITY_LEADERS, headers, id_number, volunteer_body

LIMIT = 3


class W:
    shijiazhuang: str
    baoding: str
    number: str  # platform number of the person registered in 石家庄


@pytest.fixture(scope="module")
async def app(settings: ServiceSettings) -> AsyncIterator[FastAPI]:
    app = create_app(RegistrySettings(**{**settings.model_dump(), "id_lookup_daily_limit": LIMIT}))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
def province(settings: ServiceSettings) -> dict[str, str]:
    return headers(settings, "province_admin", subject="province")


def admin(settings: ServiceSettings, unit: str, subject: str) -> dict[str, str]:
    return headers(settings, "unit_admin", unit_id=unit, subject=subject)


async def test_setup(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    r = await client.post(
        "/units", json={"kind": "总队", "leaders": [{"name": "张总", "role": "总队长"}]}, headers=province
    )
    corps = r.json()["id"]
    for city in ("石家庄", "保定"):
        r = await client.post(
            "/units",
            json={
                "kind": "市级支队",
                "base": city,
                "parent_id": corps,
                "leaders": CITY_LEADERS,
                "phone": "0311-81234567",
            },
            headers=province,
        )
        assert r.status_code == 201, r.text
        setattr(W, "shijiazhuang" if city == "石家庄" else "baoding", r.json()["id"])
    r = await client.post("/volunteers", json=volunteer_body(1, unit_id=W.shijiazhuang), headers=province)
    assert r.status_code == 201, r.text
    W.number = r.json()["platform_number"]


async def test_inside_the_scope_the_answer_names_number_and_unit(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    own = admin(settings, W.shijiazhuang, "sjz-admin")
    data = workbook(VOLUNTEERS, [volunteer_row(1, id_number=id_number(1))])
    r = await upload(client, "volunteers", data, own, dry_run=True)
    assert r.status_code == 200, r.text
    (error,) = r.json()["errors"]
    assert W.number in error["message"] and "石家庄" in error["message"]


async def test_outside_the_scope_only_registered_elsewhere_then_429(
    client: httpx.AsyncClient, settings: ServiceSettings, app: FastAPI
) -> None:
    other = admin(settings, W.baoding, "bd-admin")
    data = workbook(VOLUNTEERS, [volunteer_row(1, id_number=id_number(1))])
    for dry_run in (True, True):
        r = await upload(client, "volunteers", data, other, dry_run=dry_run)
        assert r.status_code == 200, r.text
        (error,) = r.json()["errors"]
        assert error["message"] == "该身份证号码已在其他单位注册，不能重复注册"
        assert W.number not in r.text and "石家庄" not in r.text
    one = await client.post("/volunteers", json=volunteer_body(1, unit_id=W.baoding), headers=other)
    assert one.status_code == 409, one.text
    assert one.json()["detail"] == "该身份证号码已在其他单位注册，不能重复注册"
    assert W.number not in one.text and one.json().get("platform_number") is None
    # the limit (3) is reached: the next answer is refused, the upload and the registration alike
    r = await upload(client, "volunteers", data, other, dry_run=True)
    assert r.status_code == 429 and r.json()["code"] == "id_lookup_quota_exceeded", r.text
    assert W.number not in r.text
    again = await client.post("/volunteers", json=volunteer_body(1, unit_id=W.baoding), headers=other)
    assert again.status_code == 429
    # another account is not affected, and rows without such answers are not counted
    fresh = await upload(client, "volunteers", data, admin(settings, W.baoding, "bd-admin-2"), dry_run=True)
    assert fresh.status_code == 200
    new_person = workbook(VOLUNTEERS, [volunteer_row(2, id_number=id_number(2))])
    assert (await upload(client, "volunteers", new_person, other, dry_run=True)).status_code == 200
    # each answer is recorded for the audit log: who, role, unit, when, how many, what for
    cursor = app.state.registry.db[ID_LOOKUPS].find({"subject": "bd-admin"}).sort("_id", 1)
    records: list[dict[str, Any]] = await cursor.to_list()
    assert [(r["purpose"], r["count"], r["refused"]) for r in records] == [
        ("import_dry_run", 1, False),
        ("import_dry_run", 1, False),
        ("register", 1, False),
        ("import_dry_run", 1, True),
        ("register", 1, True),
    ]
    assert all(r["role"] == "unit_admin" and r["unit_id"] == W.baoding and r["at"] for r in records)
