"""End-to-end: a 附件2 upload as a job, through the gateway as the city detachment's admin (issue 16 §4).

The upload answers 202 at once with the job and its Location; the admin follows it there (state, rows read,
checked, stored, events published, an estimate); a file with problems comes back as an .xlsx with every problem
marked in its cell and as a JSON list, and imports nothing; a corrected file imports whole; a job cancelled before
its commit imports nothing. ``test_a_hundred_thousand_rows`` (marked slow: several minutes on a small machine; run
with an explicit ``-m``, e.g. ``pytest -m 'slow or not slow' tests/e2e/test_importjobs.py``) imports the largest
file the form allows, 100,000 rows, and watches its progress move.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from typing import Any

import httpx
import openpyxl
import pytest
import xlsxwriter

from services.registry.adapters.spreadsheets.forms import VOLUNTEERS
from services.registry.adapters.spreadsheets.layout import MAX_ROWS
from tests.e2e.test_platform import ADMIN, CITY_ADMIN, WAIT_S, Platform, ok, platform, signin
from tests.fixtures import eventually
from tests.registry.helpers import CITY_LEADERS, id_number

__all__ = ["platform"]  # the platform fixture of test_platform.py: five processes of this module's own

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FINISHED = ("succeeded", "failed", "cancelled")


def volunteers_file(first: int, n: int, **over: str) -> bytes:
    """A filled 附件2 (text cells under the form's headers), rows ``first`` … ``first + n - 1``; ``over`` maps a
    header to the value every row gets there (to make rows wrong)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet(VOLUNTEERS.sheet_name)
    headers = list(VOLUNTEERS.headers)
    for c, title in enumerate(headers):
        sheet.write_string(0, c, title)
    for r, seq in enumerate(range(first, first + n), start=1):
        row = {
            "姓名": f"导入{chr(0x4E00 + seq % 20_000)}",
            "性别": "男",
            "身份证号码": id_number(seq),
            "手机号码": f"13{seq % 1_000_000_000:09d}",
            "工作单位": "石家庄市农林科学研究院",
            "职称级别": "中级",
            "学历": "大学本科",
            "专业领域": "作物栽培",
            "政治面貌": "群众",
        }
        row.update(over)
        for c, title in enumerate(headers):
            if title in row:
                sheet.write_string(r, c, row[title])
    book.close()
    return buffer.getvalue()


async def submit(client: httpx.AsyncClient, admin: dict[str, str], data: bytes, **params: str) -> dict[str, Any]:
    r = await client.post(
        "/forms/volunteers/imports", headers=admin, params=params, files={"file": ("附件2.xlsx", data, XLSX)}
    )
    job: dict[str, Any] = ok(r, 202)
    assert r.headers["location"] == f"/api/v1/forms/import-jobs/{job['id']}", r.headers
    return job


async def follow(
    client: httpx.AsyncClient, admin: dict[str, str], job: dict[str, Any], timeout_s: float
) -> list[dict[str, Any]]:
    """Every status read at the job's Location until it finished (the last one)."""
    url = httpx.URL(str(client.base_url)).copy_with(path=job["status_url"])
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen.append(ok(await client.get(url, headers=admin)))
        if seen[-1]["state"] in FINISHED:
            return seen
        await asyncio.sleep(0.5)
    raise AssertionError(f"the job did not finish within {timeout_s}s: {seen[-1] if seen else job}")


SEEDED: dict[str, tuple[dict[str, str], dict[str, str], str]] = {}


async def city_admin(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str], str]:
    """The province seeds the corps and 石家庄's detachment with its admin account (once per platform); the admin
    signs in."""
    key = str(client.base_url)
    if key in SEEDED:
        province, admin, city_id = SEEDED[key]
        return await signin(client, *ADMIN), await signin(client, *CITY_ADMIN), city_id
    province = await signin(client, *ADMIN)
    corps = await client.post(
        "/units", headers=province, json={"kind": "province_corps", "leaders": [{"name": "张总", "role": "总队长"}]}
    )
    corps_id = ok(corps, 201)["id"]
    city = await client.post(
        "/units",
        headers=province,
        json={"kind": "city_detachment", "base": "石家庄市", "parent_id": corps_id, "leaders": CITY_LEADERS},
    )
    city_id = ok(city, 201)["id"]
    account = {"username": CITY_ADMIN[0], "password": CITY_ADMIN[1], "role": "unit_admin", "unit_id": city_id}
    ok(await client.post("/accounts", headers=province, json=account), 201)
    admin = await signin(client, *CITY_ADMIN)

    async def sees_city() -> bool:
        return (await client.get(f"/units/{city_id}", headers=admin)).status_code == 200

    await eventually(sees_city, timeout_s=WAIT_S, interval_s=0.2)
    SEEDED[key] = (province, admin, city_id)
    return province, admin, city_id


async def count(client: httpx.AsyncClient, admin: dict[str, str], city_id: str) -> int:
    listed = ok(await client.get("/volunteers", headers=admin, params={"unit_id": city_id, "limit": 1}))
    return int(listed["total"])


async def test_an_upload_is_a_job_followed_corrected_and_cancelled(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.api, timeout=WAIT_S) as client:
        try:
            await walk(client)
        except BaseException:
            print(platform.tail())
            raise


async def walk(client: httpx.AsyncClient) -> None:
    province, admin, city_id = await city_admin(client)
    # ---- a file with a wrong row: nothing imported, the problems marked in a copy and listed
    bad = volunteers_file(1, 3)
    book = openpyxl.load_workbook(io.BytesIO(bad))
    book.active["D3"] = "12345"  # the second person's mobile
    out = io.BytesIO()
    book.save(out)
    job = await submit(client, admin, out.getvalue())
    failed = (await follow(client, admin, job, 120))[-1]
    assert failed["state"] == "failed" and failed["problem"]["code"] == "form_rows_invalid", failed
    assert await count(client, admin, city_id) == 0
    problems = ok(await client.get(failed["problems_url"].removeprefix("/api/v1"), headers=admin))
    assert [(e["row"], e["column"]) for e in problems["errors"]] == [(3, "手机号码")]
    marked = await client.get(failed["marked_url"].removeprefix("/api/v1"), headers=admin)
    assert marked.status_code == 200 and marked.headers["content-type"] == XLSX
    cell = openpyxl.load_workbook(io.BytesIO(marked.content))[VOLUNTEERS.sheet_name]["D3"]
    assert cell.value == "12345" and cell.comment is not None and "手机" in cell.comment.text
    # ---- corrected: imported whole, its progress at the end complete
    job = await submit(client, admin, volunteers_file(1, 3))
    done = (await follow(client, admin, job, 120))[-1]
    assert done["state"] == "succeeded", done
    assert done["progress"] | {"total": 3} == {
        "total": 3, "read": 3, "checked": 3, "to_store": 3, "stored": 3, "to_publish": 3, "published": 3
    }  # fmt: skip
    assert await count(client, admin, city_id) == 3
    # ---- the province reads the job too; once committed it cannot be cancelled
    assert ok(await client.get(f"/forms/import-jobs/{job['id']}", headers=province))["state"] == "succeeded"
    assert (await client.delete(f"/forms/import-jobs/{job['id']}", headers=admin)).status_code == 409
    # ---- cancelled at once: nothing of it imported
    job = await submit(client, admin, volunteers_file(100, 3_000))
    cancelling = ok(await client.delete(f"/forms/import-jobs/{job['id']}", headers=admin), 202)
    assert cancelling["cancel_requested"], cancelling
    cancelled = (await follow(client, admin, job, 120))[-1]
    assert cancelled["state"] == "cancelled" and cancelled["problem"]["code"] == "import_cancelled", cancelled
    assert await count(client, admin, city_id) == 3


@pytest.mark.slow
async def test_a_hundred_thousand_rows(platform: Platform, request: pytest.FixtureRequest) -> None:
    """The largest 附件2 the form allows completes through the gateway, its progress moving on the way."""
    if not request.config.getoption("markexpr"):
        pytest.skip("slow: several minutes; select it with an explicit -m (e.g. -m 'slow or not slow')")
    async with httpx.AsyncClient(base_url=platform.api, timeout=WAIT_S) as client:
        try:
            await hundred_thousand(client)
        except BaseException:
            print(platform.tail())
            raise


async def hundred_thousand(client: httpx.AsyncClient) -> None:
    _, admin, city_id = await city_admin(client)
    before = await count(client, admin, city_id)
    data = await asyncio.to_thread(volunteers_file, 50_000, MAX_ROWS)  # ID numbers of no other test here
    started = time.monotonic()
    job = await submit(client, admin, data)
    assert time.monotonic() - started < 30, "the upload itself answers at once (202), not after the import"
    seen = await follow(client, admin, job, 1_200)
    done = seen[-1]
    assert done["state"] == "succeeded", done
    assert done["result"]["created"] == MAX_ROWS and done["progress"]["stored"] == MAX_ROWS, done
    # the events follow through the outbox; the job counts those it saw published before it finished
    assert 0 < done["progress"]["published"] <= done["progress"]["to_publish"] == MAX_ROWS, done
    assert await count(client, admin, city_id) == before + MAX_ROWS
    # the progress moved: several distinct points on the way, in order, each counter never going back
    points = [(s["progress"]["read"], s["progress"]["checked"], s["progress"]["stored"]) for s in seen]
    assert len(set(points)) >= 4, points
    assert all(a <= b for p, q in itertools.pairwise(points) for a, b in zip(p, q, strict=True))
    assert any(0 < s["progress"]["stored"] < MAX_ROWS for s in seen), "stored seen part way"
    assert any(s["remaining_s"] is not None for s in seen[:-1]), "an estimate on the way"
    print(f"100,000 rows through the gateway in {time.monotonic() - started:.0f}s")
