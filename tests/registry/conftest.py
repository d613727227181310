"""A registry app per test module on the session's real Kafka and MongoDB-protocol server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.settings import ServiceSettings
from tests.fixtures import signing


@pytest.fixture(scope="module")
def registry_settings(settings: ServiceSettings) -> RegistrySettings:
    return RegistrySettings(**settings.model_dump())


@pytest.fixture(scope="module")
async def app(registry_settings: RegistrySettings) -> AsyncIterator[FastAPI]:
    app = create_app(registry_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), auth=signing(app), base_url="http://registry"
    ) as c:
        yield c
