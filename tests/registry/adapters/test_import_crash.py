"""``kill -9`` of the registry in the middle of a 附件2 import: nothing of it stays visible, no event of it ever
reaches Kafka, and the same file imports afterwards. The registry that is killed runs as a subprocess (its own
``python -m services.registry``); the one that takes over runs in this test, on the same namespace. Against the
real infrastructure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.registry.adapters.import_log import IMPORTS, PENDING, PENDING_OUTBOX, ImportLog
from services.registry.adapters.mongo import VOLUNTEERS as VOLUNTEER_COLLECTION
from services.registry.adapters.spreadsheets.forms import VOLUNTEERS
from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.contracts.events import VOLUNTEERS as VOLUNTEER_STREAM
from shared.identity import SignedIdentity
from shared.settings import ServiceSettings
from shared.storage import mongo_client
from tests.fixtures import eventually, read_topic, signing
from tests.registry.api.test_forms_api import upload, volunteer_row, workbook
from tests.registry.helpers import CITY_LEADERS, headers

ROWS = 16_000  # eight chunks of 2,000: the kill lands after the first is stored and before the commit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def doomed(settings: ServiceSettings) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A registry process of its own, with a short import lease and an eager outbox sweeper (an event of the import
    that leaked into the outbox would be published within a second)."""
    port = free_port()
    env = {
        **os.environ,
        "STVS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "STVS_MONGO_URL": settings.mongo_url,
        "STVS_NAMESPACE": settings.namespace,
        "STVS_HTTP_PORT": str(port),
        "STVS_INTERNAL_TOKEN": settings.internal_token.get_secret_value(),
        "STVS_IMPORT_LEASE_S": "10",
        "STVS_OUTBOX_SWEEP_INTERVAL_S": "1",
        "STVS_OUTBOX_SWEEP_GRACE_S": "0",
        "STVS_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([sys.executable, "-m", "services.registry"], env=env)
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def app(settings: ServiceSettings) -> FastAPI:
    """The registry that takes over after the kill (started by the test)."""
    return create_app(
        RegistrySettings(**{**settings.model_dump(), "import_lease_s": 3, "import_recovery_interval_s": 0.5})
    )


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if (await c.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError("the registry subprocess did not start")


async def test_kill9_mid_import_leaves_nothing_and_publishes_nothing(
    settings: ServiceSettings, doomed: tuple[subprocess.Popen[bytes], str], app: FastAPI
) -> None:
    proc, base = doomed

    def admin() -> dict[str, str]:  # who each request acts as (the client's auth signs it)
        return headers(settings, "province_admin", subject="province")

    province = admin()
    await wait_ready(base)
    signed = SignedIdentity(settings.internal_token.get_secret_value(), "registry")
    async with httpx.AsyncClient(base_url=base, timeout=300, auth=signed) as first:
        r = await first.post(
            "/units", json={"kind": "总队", "leaders": [{"name": "张总", "role": "总队长"}]}, headers=province
        )
        assert r.status_code == 201, r.text
        r = await first.post(
            "/units",
            json={"kind": "市级支队", "base": "石家庄", "parent_id": r.json()["id"], "leaders": CITY_LEADERS},
            headers=province,
        )
        assert r.status_code == 201, r.text
        city = r.json()["id"]
        data = workbook(VOLUNTEERS, [volunteer_row(i) for i in range(ROWS)])
        db = mongo_client(settings.mongo_url, app_name="crash-test")[settings.database("registry")]
        uploading = asyncio.create_task(upload(first, "volunteers", data, province, unit_id=city))
        # kill -9 once the first chunk is stored (pending), long before the last
        for _ in range(6000):
            if await db[VOLUNTEER_COLLECTION].count_documents({}) > 0:
                break
            assert not uploading.done(), "the import finished before it could be killed"
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with contextlib.suppress(httpx.HTTPError):
            await uploading
    written = await db[VOLUNTEER_COLLECTION].count_documents({})
    assert 0 < written < ROWS, written  # killed mid-import: some chunks stored
    assert await db[VOLUNTEER_COLLECTION].count_documents({PENDING: {"$exists": True}}) == written  # all pending
    assert await db[IMPORTS].count_documents({"state": "running"}) == 1

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://registry", timeout=300, auth=signing(app)
        ) as client,
    ):
        listed = await client.get("/volunteers", params={"unit_id": city}, headers=admin())
        assert listed.status_code == 200 and listed.json()["total"] == 0  # pending: never visible
        await eventually(lambda: _none_left(db), timeout_s=60)  # the lease ran out: taken back
        assert await db[IMPORTS].count_documents({"state": "aborted"}) == 1
        stray = await read_topic(settings.kafka_bootstrap, settings.topic(VOLUNTEER_STREAM), expect=1, timeout_s=5)
        assert stray == []  # no event of the killed import, ever (the sweeper ran every second)
        # The server may still be writing the chunk that was in flight when the process died; it lands with the
        # killed import's id, the recovery deletes it on its next pass, and an upload meeting it meanwhile is
        # refused whole (409 conflict, or its rows reported as registered): uploaded again, it goes through.
        for _ in range(4):
            again = await upload(client, "volunteers", data, admin(), unit_id=city)
            if again.status_code == 200:
                break
            assert again.status_code in (409, 422), again.text
            await eventually(lambda: _none_left(db), timeout_s=60)
        assert again.status_code == 200, again.text
        assert again.json()["created"] == ROWS and again.json()["errors"] == []
        listed = await client.get("/volunteers", params={"unit_id": city, "limit": 1}, headers=admin())
        assert listed.json()["total"] == ROWS
        records = await read_topic(settings.kafka_bootstrap, settings.topic(VOLUNTEER_STREAM), expect=ROWS)
        registered = {json.loads(r.value)["data"]["volunteer_id"] for r in records}
        assert len(registered) == ROWS and len(records) == ROWS


async def _none_left(db: Any) -> bool:
    return await db[VOLUNTEER_COLLECTION].count_documents({}) == 0


async def test_recovery_finishes_a_committed_import_and_takes_back_orphans(settings: ServiceSettings) -> None:
    """A crash between the commit and the flip: the recovery makes the documents visible with their events in the
    outbox (the sweeper publishes them); pending documents whose record is gone are deleted."""
    from shared.messaging.outbox import OUTBOX, OUTBOX_N, Outbox

    db = mongo_client(settings.mongo_url, app_name="crash-test")[settings.database("registry") + "_recovery"]
    journal = ImportLog(db, Outbox(db, None), VOLUNTEER_COLLECTION, lease_s=60)
    committed = await journal.begin("province", 3)
    assert await journal.commit(committed)
    event = {"e1": {"seq": 1, "stream": "s", "key": "k", "payload": "{}", "staged_at": None}}
    await db[VOLUNTEER_COLLECTION].insert_many(
        [{"_id": f"HB{i}", PENDING: committed, PENDING_OUTBOX: event} for i in range(3)]
        + [{"_id": "HB9", PENDING: "lost-import", PENDING_OUTBOX: event}]
    )
    assert await journal.recover() == 4
    docs = await db[VOLUNTEER_COLLECTION].find().sort("_id", 1).to_list()
    assert [d["_id"] for d in docs] == ["HB0", "HB1", "HB2"]
    assert all(PENDING not in d and PENDING_OUTBOX not in d and d[OUTBOX] == event and d[OUTBOX_N] == 1 for d in docs)
    assert (await db[IMPORTS].find_one({"_id": committed}))["state"] == "done"
    await db.client.drop_database(db.name)
