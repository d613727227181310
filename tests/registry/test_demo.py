"""The demo seed against an in-process registry: every kind of unit, volunteers, and idempotent on a rerun."""

from __future__ import annotations

import httpx

from services.registry.demo import demo_id_number, seed
from services.registry.domain.fields import validate_id_number
from shared.settings import ServiceSettings
from tests.registry.helpers import headers


def test_demo_id_numbers_are_valid_and_distinct() -> None:
    numbers = {demo_id_number(seq, male=seq % 2 == 1) for seq in range(1, 600)}
    assert len(numbers) == 599
    for seq in (1, 2, 501):
        validate_id_number(demo_id_number(seq, male=seq % 2 == 1))


async def test_demo_seeds_every_kind_once(client: httpx.AsyncClient, settings: ServiceSettings) -> None:
    def sign() -> dict[str, str]:
        return headers(settings, "province_admin", subject="demo")

    first = await seed(client, sign)
    assert first.created_units == 21 and first.created_volunteers == 37
    province = sign()
    kinds = {}
    for kind in ("province_corps", "city_detachment", "society_detachment", "university_detachment"):
        kinds[kind] = (await client.get("/units", params={"kind": kind}, headers=province)).json()["total"]
    for kind in ("enterprise_detachment", "county_team", "sub_team"):
        kinds[kind] = (await client.get("/units", params={"kind": kind}, headers=province)).json()["total"]
    assert kinds == {
        "province_corps": 1,
        "city_detachment": 14,
        "society_detachment": 1,
        "university_detachment": 1,
        "enterprise_detachment": 2,
        "county_team": 1,
        "sub_team": 1,
    }
    xiongan = await client.get("/units", params={"city": "雄安新区"}, headers=province)
    assert [u["name"] for u in xiongan.json()["items"]] == ["雄安新区科技志愿者支队"]
    again = await seed(client, sign)
    assert again.created_units == 0 and again.created_volunteers == 0 and again.existing == 21 + 37
    assert (await client.get("/volunteers", headers=province)).json()["total"] == 37
