"""The scope matrix against the real platform (issue 14): the four services and the gateway as real processes on
this session's Kafka and MongoDB-protocol server, two branches of units, every operation of the gateway's OpenAPI
document x every role x own / other resource (path, query, body; the body also as another JSON media type), each
with its exact status (tests/gateway/matrix.py states them). One platform serves the whole module.

Beside the matrix, what the gateway cannot see and only a service can stop (an id the gateway's copies do not know
yet), asked of the services directly with a signed identity, and what a caller must always be able to do: read what
it has just written.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.local.runner import REPO_ROOT
from shared.clock import Clock, anchored
from shared.messaging.topics import ensure_topics
from tests.e2e.test_platform import SHANGHAI, free_ports, stop, wait_healthy
from tests.fixtures import eventually, make_settings
from tests.gateway.matrix import ALT_JSON, ROLES, ROWS, Case, cases
from tests.registry.helpers import CITY_LEADERS, CONTACT, volunteer_body

SERVICES = ("registry", "activities", "reporting", "notifier", "gateway")
WAIT_S = 180.0  # a busy machine starts five interpreters slowly
START = datetime(2026, 5, 29, 10, 0, tzinfo=SHANGHAI)  # the platform's clock, never today's date
ADMIN = ("province", "province-pass-1")
PASSWORD = "matrix-pass-1234"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Platform:
    gateway: str
    urls: dict[str, str]
    token: str  # the internal token: to call a service directly as the gateway would
    clock: Clock
    logs: Path


@pytest.fixture(scope="module")
async def platform(infra: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    settings = make_settings(infra)
    await ensure_topics(settings, partitions=3)
    logs = tmp_path_factory.mktemp("matrix-logs")
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    clock = anchored(START)
    token = f"matrix-internal-token-{settings.namespace}-{os.getpid():08d}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STVS_", "OTEL_"))}
    env.update(
        STVS_KAFKA_BOOTSTRAP=infra.kafka_bootstrap,
        STVS_MONGO_URL=infra.mongo_url,
        STVS_NAMESPACE=settings.namespace,
        STVS_INTERNAL_TOKEN=token,
        STVS_HTTP_HOST="127.0.0.1",
        STVS_REGISTRY_URL=urls["registry"],
        STVS_ACTIVITIES_URL=urls["activities"],
        STVS_REPORTING_URL=urls["reporting"],
        STVS_NOTIFIER_URL=urls["notifier"],
        STVS_CAMPAIGN_YEAR=str(START.year),
        STVS_CLOCK_START=START.isoformat(),
        STVS_CLOCK_ANCHOR=(clock.anchor or START).isoformat(),
        STVS_SMTP_PORT=str(free_ports(1)[0]),  # nothing listens: nothing leaves the machine
        STVS_CONSUMER_BACKOFF_MS="20",
        STVS_SIGNIN_RATE_PER_MIN="1000",
        STVS_SIGNIN_ADDRESS_RATE_PER_MIN="100000",  # every account signs in from 127.0.0.1 here
        STVS_SIGNIN_TOTAL_RATE_PER_MIN="100000",
        STVS_VERIFY_RATE_PER_MIN="1000",
        PYTHONUNBUFFERED="1",
    )
    processes: dict[str, asyncio.subprocess.Process] = {}
    try:
        for name in SERVICES:
            with (logs / f"{name}.log").open("wb") as log:
                processes[name] = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", f"services.{name}", cwd=REPO_ROOT,
                    env={**env, "STVS_HTTP_PORT": str(ports[name])},
                    stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
            await wait_healthy(name, urls[name], processes[name], logs, WAIT_S)
        made = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.gateway.create_admin", "--username", ADMIN[0], "--password", ADMIN[1],
            cwd=REPO_ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(made.communicate(), timeout=WAIT_S)
        assert made.returncode == 0, output.decode(errors="replace")
        yield Platform(urls["gateway"], urls, token, clock, logs)
    finally:
        await stop(processes)


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:300]}"
    return r.json()


@dataclass
class World:
    """What the matrix names: per role its credentials and, per side, the placeholders."""

    auth: dict[str, dict[str, str]]
    logins: dict[str, tuple[str, str]]
    refs: dict[tuple[str, bool], dict[str, Any]]
    units: dict[str, str]
    volunteers: dict[str, str]
    activities: dict[str, str]
    uniq: itertools.count  # type: ignore[type-arg]

    def refs_of(self, role: str, own: bool) -> dict[str, Any]:
        n = next(self.uniq)
        refs = dict(self.refs[(role, own)])
        refs["uniq"] = f"矩阵{n:04d}"
        refs["new_volunteer"] = volunteer_body(5000 + n, unit_id=refs["unit"])
        refs["login"] = f"matrix_{n:04d}"
        return refs


async def signin(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/signin", json={"username": username, "password": password})
    return {"Authorization": f"Bearer {ok(r)['access_token']}"}


async def seed(client: httpx.AsyncClient, clock: Clock) -> World:
    p = await signin(client, *ADMIN)
    api = "/api/v1"

    async def unit(body: dict[str, Any]) -> str:
        return str(ok(await client.post(f"{api}/units", headers=p, json=body), 201)["id"])

    corps = await unit({"kind": "province_corps", "leaders": [{"name": "张总队", "role": "总队长"}],
                        "contact": {**CONTACT, "email": "office@example.com"}})  # fmt: skip
    c1 = await unit({"kind": "city_detachment", "base": "石家庄市", "parent_id": corps, "city": "shijiazhuang",
                     "leaders": CITY_LEADERS, "contact": CONTACT})  # fmt: skip
    c2 = await unit({"kind": "city_detachment", "base": "保定市", "parent_id": corps, "city": "baoding",
                     "leaders": CITY_LEADERS, "contact": CONTACT})  # fmt: skip
    k1 = await unit({"kind": "county_team", "name": "正定县科技志愿者队", "parent_id": c1})
    k2 = await unit({"kind": "county_team", "name": "清苑区科技志愿者队", "parent_id": c2})
    s2 = await unit({"kind": "sub_team", "name": "清苑区农技科技志愿服务分队", "parent_id": k2})

    async def volunteer(seq: int, unit_id: str) -> str:
        return str(
            ok(await client.post(f"{api}/volunteers", headers=p, json=volunteer_body(seq, unit_id=unit_id)), 201)["id"]
        )

    v1, v2, v3, v4, v5 = [await volunteer(s, u) for s, u in ((1, k1), (2, k2), (3, c1), (4, c2), (5, s2))]
    accounts = {
        "C": ("matrix_city", {"role": "unit_admin", "unit_id": c1}),
        "K": ("matrix_county", {"role": "unit_admin", "unit_id": k2}),
        "V": ("matrix_volunteer", {"role": "volunteer", "volunteer_id": v1}),
    }
    auth: dict[str, dict[str, str]] = {"P": p, "A": {}}
    account_ids: dict[str, str] = {}
    logins = {"P": ADMIN}
    for role, (username, fields) in accounts.items():

        async def create(username: str = username, fields: dict[str, Any] = fields) -> bool:
            body = {"username": username, "password": PASSWORD, **fields}
            return (await client.post(f"{api}/accounts", headers=p, json=body)).status_code == 201

        await eventually(create, timeout_s=WAIT_S, interval_s=0.2)  # the gateway learns the volunteer from events
        auth[role] = await signin(client, username, PASSWORD)
        account_ids[role] = ok(await client.get(f"{api}/auth/me", headers=auth[role]))["id"]
        logins[role] = (username, PASSWORD)
    key = ok(await client.post(f"{api}/accounts", headers=p, json={"username": "matrix_robot", "role": "system"}), 201)
    auth["S"] = {"X-API-Key": key["api_key"]}

    # per branch: a published activity (V1 / V2 signed up) and a cancelled one (every write on it is refused by
    # its state once the scope let it through), a demand, this year's action plan and April's report submitted
    now = clock.now().replace(microsecond=0)
    times = {"starts_at": now + timedelta(days=2), "ends_at": now + timedelta(days=2, hours=2),
             "opens_at": now - timedelta(days=1), "closes_at": now + timedelta(days=1)}  # fmt: skip
    iso = {k: v.isoformat() for k, v in times.items()}

    async def activity(unit_id: str, cancel: bool) -> str:
        from tests.gateway.matrix import ACTIVITY, resolve

        aid = str(
            ok(
                await client.post(f"{api}/activities", headers=p, json=resolve(ACTIVITY, {**iso, "unit": unit_id})), 201
            )["id"]
        )
        ok(await client.post(f"{api}/activities/{aid}/publish", headers=p))
        if cancel:
            ok(await client.post(f"{api}/activities/{aid}/cancel", headers=p, json={"reason": "矩阵"}))
        return aid

    a1, a2, x1, x2 = [await activity(u, c) for u, c in ((k1, False), (k2, False), (k1, True), (k2, True))]

    async def signed_up(aid: str, vid: str) -> bool:
        r = await client.post(f"{api}/activities/{aid}/signups", headers=p, json={"volunteer_id": vid})
        return r.status_code == 201

    for aid, vid in ((a1, v1), (a2, v2), (a2, v1)):
        await eventually(functools.partial(signed_up, aid, vid), timeout_s=WAIT_S, interval_s=0.2)
    d1, d2 = [
        str(ok(await client.post(f"{api}/demands", headers=p, json={"unit_id": u, "enterprise": "企业", "title": "难题",
                                                                    "description": "说明"}), 201)["id"])
        for u in (k1, k2)
    ]  # fmt: skip
    codes = {x: ok(await client.get(f"{api}/activities/{x}/checkin-code", headers=p))["code"] for x in (x1, x2)}

    async def submitted(unit_id: str) -> bool:
        plan_body = {"unit_id": unit_id, "year": 2026, "text": "计划"}
        plan = await client.post(f"{api}/action-plans", headers=p, json=plan_body)
        month = await client.post(f"{api}/monthly-reports/{unit_id}/2026-04/submit", headers=p)
        return plan.status_code in (201, 409) and month.status_code in (201, 409)

    for u in (k1, k2, c2):
        await eventually(functools.partial(submitted, u), timeout_s=WAIT_S, interval_s=0.3)  # reporting knows it

    async def ready() -> bool:  # every copy knows every record: what the matrix asks is scope, not lag
        for path in (f"obligations/{s2}", f"stats/volunteers/{v5}", f"stats/units/{s2}"):
            if (await client.get(f"{api}/{path}", headers=p)).status_code != 200:
                return False
        return True

    async def everywhere() -> bool:
        below = await client.get(f"{api}/activities/{x1}/signups", headers=auth["C"])  # activities' unit copy
        known = await client.get(f"{api}/volunteers/{v2}", headers=auth["C"])  # the gateway's volunteer copy
        return below.status_code == 200 and known.headers.get("x-stvs-denied-by") == "gateway"

    await eventually(ready, timeout_s=WAIT_S, interval_s=0.3)
    # the copies that scope checks read: given time to fill, without failing here — a rule that is broken shows in
    # the matrix, case by case, not as a set-up that waited in vain
    for _ in range(100):
        if await everywhere():
            break
        await asyncio.sleep(0.3)
    branch = {
        1: {"unit": k1, "volunteer": v1, "activity": x1, "demand": d1, "nobody": v3, "stranger_unit": c1,
            "code": codes[x1], "account": account_ids["V"]},
        2: {"unit": k2, "volunteer": v2, "activity": x2, "demand": d2, "nobody": v5, "stranger_unit": s2,
            "code": codes[x2], "account": account_ids["K"]},
    }  # fmt: skip
    common = {"month": "2026-04", "form": "volunteers", "number": "ZM20260501-0a1b2c3d4e-matrix",
              "subscription": "no-such-subscription", "now": now.isoformat(), **iso}  # fmt: skip
    sides: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "P": (branch[1], branch[2]),
        "C": (branch[1], branch[2]),
        # the county team of the other branch: "other" is its parent (above it) and branch 1's records
        "K": (branch[2], {**branch[1], "unit": c2, "stranger_unit": c2}),
        "V": (branch[1], branch[2]),
        "S": (branch[1], branch[2]),
        "A": (branch[1], branch[2]),
    }
    refs = {(r, own): {**common, **sides[r][0 if own else 1]} for r in ROLES for own in (True, False)}
    return World(
        auth, logins, refs,
        units={"P": corps, "C1": c1, "C2": c2, "K1": k1, "K2": k2, "S2": s2},
        volunteers={"V1": v1, "V2": v2, "V3": v3, "V4": v4, "V5": v5},
        activities={"A1": a1, "A2": a2, "X1": x1, "X2": x2},
        uniq=itertools.count(1),
    )  # fmt: skip


@pytest.fixture(scope="module")
async def world(platform: Platform) -> World:
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=WAIT_S) as client:
        return await seed(client, platform.clock)


async def send(client: httpx.AsyncClient, world: World, case: Case) -> httpx.Response:
    headers = dict(world.auth[case.role])
    if case.row.template.endswith("/auth/signout") and case.role in world.logins:
        headers = await signin(client, *world.logins[case.role])  # a session of its own: the others stay
    kwargs: dict[str, Any] = {"params": case.query, "headers": headers}
    if case.row.multipart:
        kwargs["files"] = {"file": ("附件2.xlsx", b"not a spreadsheet", XLSX)}
    elif case.body is not None:
        import json

        kwargs["content"] = json.dumps(case.body, ensure_ascii=False).encode()
        headers["content-type"] = case.content_type or "application/json"
    return await client.request(case.row.method.upper(), case.path, **kwargs)


async def test_every_operation_every_role_own_and_other(platform: Platform, world: World) -> None:
    """The exact status of each case; the rules of shared/scope.py undone anywhere make some case answer another."""
    matrix = cases(ROWS, world.refs_of)
    assert any(c.content_type == ALT_JSON for c in matrix)
    wrong = []
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=WAIT_S) as client:
        for case in matrix:  # one at a time: the writes that succeed are few and change nothing another case reads
            r = await send(client, world, case)
            if r.status_code != case.expected:
                wrong.append(f"{case}: {r.status_code} (expected {case.expected}) {r.text[:120]}")
    assert not wrong, f"{len(wrong)} of {len(matrix)} cases:\n" + "\n".join(wrong)


async def test_the_matrix_covers_every_operation_of_the_openapi_document(platform: Platform, world: World) -> None:
    """A new operation without a row fails here (the gateway serves the merged document of the real services)."""
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=WAIT_S) as client:
        doc = ok(await client.get("/openapi.json"))
    operations = {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    rows = {row.key for row in ROWS}
    assert operations - rows == set(), "operations without a row in tests/gateway/matrix.py"
    assert rows - operations == set(), "rows of operations the document does not have"
    assert len(operations) >= 70
