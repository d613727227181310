"""An upload as a job, against the real infrastructure: answered 202 at once with its id and Location; its status
with progress and an estimate, readable by its uploader only; cancelled before its commit (nothing imported);
on row problems a marked .xlsx copy and the list as JSON; a job whose replica died settled by any replica."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook

from services.registry.adapters import import_jobs as job_store
from services.registry.adapters.import_log import IMPORTS
from services.registry.adapters.spreadsheets.forms import VOLUNTEERS
from services.registry.adapters.spreadsheets.marked import PROBLEMS_SHEET
from shared.settings import ServiceSettings
from tests.registry.api.test_forms_api import count_volunteers, volunteer_row, workbook
from tests.registry.helpers import CITY_LEADERS, headers

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class W:
    city: str
    county: str


@pytest.fixture(scope="module")
def province(settings: ServiceSettings) -> dict[str, str]:
    return headers(settings, "province_admin", subject="province")


@pytest.fixture(scope="module")
def admin(settings: ServiceSettings) -> dict[str, str]:
    return headers(settings, "unit_admin", unit_id=W.county, subject="county-admin")


async def submit(
    client: httpx.AsyncClient, data: bytes, hdrs: dict[str, str], form: str = "volunteers", **params: Any
) -> dict[str, Any]:
    files = {"file": ("附件2.xlsx", data, XLSX)}
    r = await client.post(f"/forms/{form}/imports", files=files, params=params, headers=hdrs)
    assert r.status_code == 202, r.text
    job: dict[str, Any] = r.json()
    assert r.headers["location"] == f"/api/v1/forms/import-jobs/{job['id']}" == job["status_url"]
    return job


async def finished(
    client: httpx.AsyncClient, job_id: str, hdrs: dict[str, str], timeout_s: float = 120
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The job once finished, and every status read on the way."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = await client.get(f"/forms/import-jobs/{job_id}", headers=hdrs)
        assert r.status_code == 200, r.text
        seen.append(r.json())
        if r.json()["state"] in ("succeeded", "failed", "cancelled"):
            return r.json(), seen
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {seen[-1]}")


async def test_setup(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    corps = await client.post(
        "/units", json={"kind": "总队", "leaders": [{"name": "张总", "role": "总队长"}]}, headers=province
    )
    city = await client.post(
        "/units",
        json={"kind": "市级支队", "base": "保定", "parent_id": corps.json()["id"], "leaders": CITY_LEADERS},
        headers=province,
    )
    assert city.status_code == 201, city.text
    W.city = city.json()["id"]
    county = await client.post(
        "/units",
        json={"kind": "县级队", "base": "清苑区", "parent_id": W.city, "leaders": [{"name": "刘队", "role": "队长"}]},
        headers=province,
    )
    assert county.status_code == 201, county.text
    W.county = county.json()["id"]


async def test_an_upload_is_a_job_that_imports_whole_and_reports_its_progress(
    client: httpx.AsyncClient, admin: dict[str, str], province: dict[str, str], settings: ServiceSettings
) -> None:
    before = await count_volunteers(client, province)
    rows = [volunteer_row(500 + i) for i in range(3)]
    job = await submit(client, workbook(VOLUNTEERS, rows), admin)
    assert job["state"] in ("queued", "reading") and job["form"] == "volunteers" and not job["dry_run"]
    done, _ = await finished(client, job["id"], admin)
    assert done["state"] == "succeeded" and done["state_label"] == "导入完成", done
    assert done["progress"] == {
        "total": 3, "read": 3, "checked": 3, "to_store": 3, "stored": 3, "to_publish": 3, "published": 3
    }  # fmt: skip
    assert done["result"]["created"] == 3 and done["fraction"] == 1.0 and done["remaining_s"] is None
    assert done["problem"] is None and done["marked_url"] is None
    assert await count_volunteers(client, province) == before + 3
    # the province reads it too; another unit's admin does not learn it exists
    assert (await client.get(f"/forms/import-jobs/{job['id']}", headers=province)).status_code == 200
    other = headers(settings, "unit_admin", unit_id=W.city, subject="city-admin")
    assert (await client.get(f"/forms/import-jobs/{job['id']}", headers=other)).status_code == 404
    # committed: too late to cancel
    late = await client.delete(f"/forms/import-jobs/{job['id']}", headers=admin)
    assert late.status_code == 409 and late.json()["code"] == "conflict", late.text


async def test_a_file_with_problems_imports_nothing_and_comes_back_marked(
    client: httpx.AsyncClient, admin: dict[str, str], province: dict[str, str]
) -> None:
    before = await count_volunteers(client, province)
    rows = [volunteer_row(600), volunteer_row(601, mobile="12345"), volunteer_row(602, gender="未知")]
    job = await submit(client, workbook(VOLUNTEERS, rows), admin)
    done, _ = await finished(client, job["id"], admin)
    assert done["state"] == "failed" and done["problem"]["code"] == "form_rows_invalid", done
    assert "2行共2处错误" in done["problem"]["detail"]
    assert done["result"]["problems"] == 2 and done["progress"]["stored"] == 0
    assert await count_volunteers(client, province) == before
    listed = (await client.get(done["problems_url"].removeprefix("/api/v1"), headers=admin)).json()
    assert listed["total"] == 2
    assert [(e["row"], e["column"]) for e in listed["errors"]] == [(3, "手机号码"), (4, "性别")]
    marked = await client.get(done["marked_url"].removeprefix("/api/v1"), headers=admin)
    assert marked.status_code == 200 and marked.headers["content-type"] == XLSX
    book = load_workbook(io.BytesIO(marked.content))
    assert book.sheetnames == [VOLUNTEERS.sheet_name, PROBLEMS_SHEET]
    sheet = book[VOLUNTEERS.sheet_name]
    mobile, gender = sheet["D3"], sheet["B4"]
    assert mobile.value == "12345" and mobile.comment is not None and "手机" in mobile.comment.text
    assert mobile.fill.fgColor.rgb.endswith("FFC7CE") and gender.comment is not None
    assert sheet["A2"].comment is None and sheet["A2"].value == rows[0]["name"]
    problems = list(book[PROBLEMS_SHEET].iter_rows(min_row=2, values_only=True))
    assert [(p[1], p[2]) for p in problems] == [(3, "手机号码"), (4, "性别")]
    # the marked copy is uploaded as it is: the same two problems, nothing else
    again = await submit(client, marked.content, admin, dry_run="true")
    dry, _ = await finished(client, again["id"], admin)
    assert dry["state"] == "succeeded" and dry["result"]["problems"] == 2 and dry["result"]["created"] == 1


async def test_a_file_refused_whole_fails_its_job(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    job = await submit(client, b"not a spreadsheet", admin)
    done, _ = await finished(client, job["id"], admin)
    assert done["state"] == "failed" and done["problem"]["code"] == "form_not_xlsx", done
    assert (await client.get(f"/forms/import-jobs/{job['id']}/marked.xlsx", headers=admin)).status_code == 404


async def test_a_queued_job_cancelled_imports_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], province: dict[str, str]
) -> None:
    before = await count_volunteers(client, province)
    jobs = app.state.import_jobs
    async with jobs.slots:  # the replica busy: the job waits its turn
        job = await submit(client, workbook(VOLUNTEERS, [volunteer_row(700)]), admin)
        r = await client.post(f"/forms/import-jobs/{job['id']}/cancel", headers=admin)
        assert r.status_code == 202 and r.json()["cancel_requested"], r.text
        assert r.json()["state"] == "queued"
    done, _ = await finished(client, job["id"], admin)
    assert done["state"] == "cancelled" and done["problem"]["code"] == "import_cancelled", done
    assert await count_volunteers(client, province) == before


async def test_a_job_cancelled_while_storing_imports_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], province: dict[str, str]
) -> None:
    before = await count_volunteers(client, province)
    rows = [volunteer_row(1_000 + i) for i in range(8_000)]
    job = await submit(client, workbook(VOLUNTEERS, rows), admin)
    deadline = time.monotonic() + 120
    while (state := (await client.get(f"/forms/import-jobs/{job['id']}", headers=admin)).json())["state"] != "storing":
        assert state["state"] in ("queued", "reading", "checking"), state
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    r = await client.delete(f"/forms/import-jobs/{job['id']}", headers=admin)
    assert r.status_code == 202, r.text
    done, _ = await finished(client, job["id"], admin)
    assert done["state"] == "cancelled", done
    assert done["progress"]["read"] == done["progress"]["checked"] == 8_000
    assert await count_volunteers(client, province) == before


async def test_a_job_whose_replica_died_is_failed_cleanly_or_finished(app: FastAPI) -> None:
    jobs = app.state.import_jobs
    db = jobs.store.db
    past = datetime.now(UTC) - timedelta(minutes=5)
    base = {"form": "volunteers", "dry_run": False, "owner": "x", "cancel_requested": False, "created_at": past}
    await db[job_store.JOBS].insert_many(
        [
            {**base, "_id": "a" * 32, "state": "storing", "lease_until": past},  # its import never committed
            {**base, "_id": "b" * 32, "state": "publishing", "lease_until": past},  # committed before it died
            {**base, "_id": "c" * 32, "state": "storing", "lease_until": datetime.now(UTC) + timedelta(minutes=1)},
        ]
    )
    await db[IMPORTS].insert_many(
        [
            {"_id": "a" * 32, "state": "running", "lease_until": past},
            {"_id": "b" * 32, "state": "done", "lease_until": past},
        ]
    )
    assert await jobs.recover() == 2
    failed, done, alive = [await db[job_store.JOBS].find_one({"_id": c * 32}) for c in "abc"]
    assert failed["state"] == "failed" and failed["problem"]["code"] == "import_interrupted"
    assert (await db[IMPORTS].find_one({"_id": "a" * 32}))["state"] == "aborted"
    assert done["state"] == "succeeded" and alive["state"] == "storing"
