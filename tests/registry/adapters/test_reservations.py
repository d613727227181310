"""Unit-name and province-corps reservations are never left behind: a create that fails for any reason (not a
duplicate) takes its reservations back with it, since both are one transaction. Against the real infrastructure."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.registry.adapters.mongo import UNIT_NAMES
from shared.settings import ServiceSettings
from tests.registry.helpers import CITY_LEADERS, headers

CORPS = {"kind": "总队", "leaders": [{"name": "张总", "role": "总队长"}]}


class Broken(RuntimeError):
    pass


async def test_a_failed_create_releases_its_name_and_corps_reservation(
    app: FastAPI, client: httpx.AsyncClient, settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    province = headers(settings, "province_admin", subject="province")
    registry = app.state.registry
    real_create = registry.units.create

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise Broken("storage failed after the reservation was written")

    monkeypatch.setattr(registry.units, "create", failing)
    with pytest.raises(Broken):
        await client.post("/units", json=CORPS, headers=province)
    assert await registry.db[UNIT_NAMES].count_documents({}) == 0  # neither the name nor the corps key stayed

    monkeypatch.setattr(registry.units, "create", real_create)
    r = await client.post("/units", json=CORPS, headers=province)
    assert r.status_code == 201, r.text  # the corps can be registered: nothing holds its key
    corps = r.json()["id"]
    city = {"kind": "市级支队", "base": "石家庄", "parent_id": corps, "leaders": CITY_LEADERS}
    monkeypatch.setattr(registry.units, "create", failing)
    with pytest.raises(Broken):
        await client.post("/units", json=city, headers=province)
    monkeypatch.setattr(registry.units, "create", real_create)
    r = await client.post("/units", json=city, headers=province)
    assert r.status_code == 201, r.text  # the name is free again
