"""The refusals of the use cases as HTTP problems: each kind mapped once to its status, each code as before."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.reporting.api.errors import problem_of
from services.reporting.domain.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from shared.identity import Identity
from shared.settings import ServiceSettings
from tests.fixtures import eventually
from tests.reporting.helpers import PROVINCE_ADMIN, Harness, headers, publish, running, unit_event, when


def test_every_kind_of_refusal_has_its_status() -> None:
    for error, status in (
        (NotFound("unit_not_found", "未找到"), 404),
        (Forbidden("forbidden_unit", "不可"), 403),
        (Invalid("bad_month", "格式"), 422),
        (Conflict("already_submitted", "已报送"), 409),
        (Unavailable("registry_unavailable", "稍后"), 503),
    ):
        problem = problem_of(error)
        assert (problem.status, problem.code, problem.detail) == (status, error.code, error.detail)


@pytest.fixture(scope="module")
async def harness(settings: ServiceSettings) -> AsyncIterator[Harness]:
    async with running(settings) as started:
        await publish(started.settings, [unit_event("E1", "county_team", ["EP"])])
        await eventually(lambda: when(started.stats("E1"), lambda b: b["unit_id"] == "E1"))
        yield started


async def problem(harness: Harness, url: str, identity: Identity | None = None, **params: str) -> tuple[int, str]:
    caller = headers(harness.settings, identity or PROVINCE_ADMIN)
    response = await harness.client.get(url, params=params, headers=caller)
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.status_code, response.json()["code"]


async def test_the_reads_refuse_with_their_codes(harness: Harness) -> None:
    assert await problem(harness, "/compliance", unit_id="nowhere") == (404, "unit_not_found")
    naive = await problem(harness, "/compliance", unit_id="E1", at="2026-05-01T00:00:00")
    assert naive == (422, "naive_datetime")
    assert await problem(harness, "/monthly-reports/E1/2026-13") == (422, "bad_month")
    assert await problem(harness, "/stats/volunteers/nobody") == (404, "volunteer_not_found")
    other = Identity(subject="u-x", role="unit_admin", unit_id="K-elsewhere")
    assert await problem(harness, "/stats/units/E1", other) == (404, "unit_not_found")  # out of scope: not revealed


async def test_the_writes_refuse_with_their_codes(harness: Harness) -> None:
    client, settings = harness.client, harness.settings
    admin = Identity(subject="e1-admin", role="unit_admin", unit_id="E1")
    future = await client.post("/monthly-reports/E1/2999-01/submit", headers=headers(settings, admin))
    assert (future.status_code, future.json()["code"]) == (422, "future_month")
    other = Identity(subject="u-x", role="unit_admin", unit_id="K-elsewhere")
    forbidden = await client.post("/monthly-reports/E1/2026-04/submit", headers=headers(settings, other))
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden_unit")
    unknown = await client.post("/monthly-reports/nowhere/2026-04/submit", headers=headers(settings))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unit_not_found")
    first = await client.post("/monthly-reports/E1/2026-04/submit", headers=headers(settings, admin))
    assert first.status_code == 201, first.text
    again = await client.post("/monthly-reports/E1/2026-04/submit", headers=headers(settings, admin))
    assert (again.status_code, again.json()["code"]) == (409, "already_submitted")
    system = Identity(subject="sys", role="system")
    read_only = await client.get("/certificates/volunteers/v1.pdf", headers=headers(settings, system))
    assert (read_only.status_code, read_only.json()["code"]) == (403, "read_only")
