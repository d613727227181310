"""Collective registration through the API: whole files refused with a clear status and a Chinese message
(encrypted, too many rows, no or missing header, blank, not a workbook), and an import that fails while storing
takes back everything it stored and publishes nothing; against the real infrastructure."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from typing import Any

import httpx
import pytest
import xlsxwriter
from fastapi import FastAPI

from services.registry.adapters import import_log
from services.registry.adapters.mongo import COUNTERS
from services.registry.adapters.mongo import VOLUNTEERS as VOLUNTEER_COLLECTION
from services.registry.adapters.spreadsheets.forms import VOLUNTEERS
from services.registry.adapters.spreadsheets.layout import MAX_ROWS
from services.registry.domain.volunteers import format_platform_number
from shared.contracts.events import VOLUNTEERS as VOLUNTEER_STREAM
from shared.settings import ServiceSettings
from tests.fixtures import read_topic
from tests.registry.api.test_forms_api import upload, volunteer_row, workbook
from tests.registry.helpers import CITY_LEADERS, headers


class W:
    corps: str
    city: str
    city_name: str


@pytest.fixture(scope="module")
def province(settings: ServiceSettings) -> dict[str, str]:
    return headers(settings, "province_admin", subject="province")


# --- an encrypted (password-protected) workbook, as Excel saves it --------------------------------------------

_FREE, _END, _FAT, _NONE = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
_SECTOR = 512


def _dir_entry(name: str, kind: int, start: int, size: int, *, right: int = _NONE, child: int = _NONE) -> bytes:
    encoded = (name + "\0").encode("utf-16-le") if name else b""
    return (
        encoded.ljust(64, b"\0")
        + struct.pack("<HBB", len(encoded), kind, 1)  # name length, type (5 root, 2 stream), black
        + struct.pack("<III", _NONE, right, child)  # left sibling, right sibling, child
        + b"\0" * 16  # CLSID
        + struct.pack("<IQQ", 0, 0, 0)  # state bits, created, modified
        + struct.pack("<IQ", start, size)
    )


def encrypted_workbook() -> bytes:
    """A compound file (CFB v3) with the two streams of an encrypted OOXML package (MS-OFFCRYPTO):
    ``EncryptionInfo`` (agile encryption, version 4.4) and ``EncryptedPackage``, each 8 sectors long so that
    they live in regular sectors; sector 0 is the FAT, sector 1 the directory."""
    info = (struct.pack("<HHI", 4, 4, 0x40) + b'<?xml version="1.0"?><encryption/>').ljust(8 * _SECTOR, b"\0")
    package = struct.pack("<Q", 4096) + bytes(range(256)) * 15 + b"\0" * 248
    assert len(package) == 8 * _SECTOR
    fat = [_FAT, _END, *range(3, 10), _END, *range(11, 18), _END]
    fat += [_FREE] * (_SECTOR // 4 - len(fat))
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)  # minor, major version, byte order, sector and mini shifts
        + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, _END, 0, _END, 0)  # FAT in 1 sector, directory at 1
        + struct.pack("<I", 0)  # DIFAT[0]: the FAT is sector 0
        + struct.pack("<I", _FREE) * 108
    )
    directory = (
        _dir_entry("Root Entry", 5, _END, 0, child=1)
        + _dir_entry("EncryptionInfo", 2, 2, len(info), right=2)
        + _dir_entry("EncryptedPackage", 2, 10, len(package))
        + _dir_entry("", 0, 0, 0)
    )
    body = header + struct.pack(f"<{len(fat)}I", *fat) + directory + info + package
    assert len(header) == _SECTOR and len(body) == _SECTOR + 18 * _SECTOR  # the header, then sectors 0–17
    return body


def test_the_encrypted_workbook_is_a_well_formed_compound_file() -> None:
    data = encrypted_workbook()
    directory = data[2 * _SECTOR : 3 * _SECTOR]
    names = [directory[i : i + 64].decode("utf-16-le").split("\0")[0] for i in range(0, _SECTOR, 128)]
    assert names == ["Root Entry", "EncryptionInfo", "EncryptedPackage", ""]
    fat = struct.unpack("<128I", data[_SECTOR : 2 * _SECTOR])
    assert fat[9] == _END and fat[17] == _END and fat[2] == 3


# --- refusals -----------------------------------------------------------------------------------------------


async def test_setup(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    r = await client.post(
        "/units", json={"kind": "总队", "leaders": [{"name": "张总", "role": "总队长"}]}, headers=province
    )
    assert r.status_code == 201, r.text
    W.corps = r.json()["id"]
    r = await client.post(
        "/units",
        json={"kind": "市级支队", "base": "保定", "parent_id": W.corps, "leaders": CITY_LEADERS},
        headers=province,
    )
    assert r.status_code == 201, r.text
    W.city, W.city_name = r.json()["id"], r.json()["name"]


async def test_password_protected_workbook_gets_422_in_chinese(
    client: httpx.AsyncClient, province: dict[str, str]
) -> None:
    r = await upload(client, "volunteers", encrypted_workbook(), province)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "form_protected"
    assert r.json()["detail"] == "文件设置了打开密码（已加密），请取消密码后重新上传"
    dry = await upload(client, "organisations", encrypted_workbook(), province, dry_run="true")
    assert dry.status_code == 422 and dry.json()["code"] == "form_protected"


async def test_more_than_the_row_limit_gets_413(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet(VOLUNTEERS.sheet_name)
    for i, title in enumerate(VOLUNTEERS.headers):
        sheet.write_string(0, i, title)
    for r in range(1, MAX_ROWS + 2):  # one row too many (only a number in the first column: a small file)
        sheet.write_number(r, 0, r)
    book.close()
    r = await upload(client, "volunteers", buffer.getvalue(), province)
    assert r.status_code == 413
    assert r.json()["code"] == "form_too_many_rows"
    assert r.json()["detail"] == "数据行数为100001行，超过上限100000行，请拆分为多个文件上传"


async def test_missing_or_incomplete_header_gets_422(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    rows = [volunteer_row(i, unit=W.city_name) for i in range(3)]
    # no header row at all: the data starts in row 1
    headless = workbook(VOLUNTEERS, rows[1:], header=[str(v) for v in rows[0].values() if v is not None])
    r = await upload(client, "volunteers", headless, province)
    assert r.status_code == 422 and r.json()["code"] == "form_wrong_header"
    assert "缺少列" in r.json()["detail"] and "请使用下载的模板" in r.json()["detail"]
    # one column left out
    short = [c.header for c in VOLUNTEERS.columns if c.key != "mobile"]
    r = await upload(client, "volunteers", workbook(VOLUNTEERS, [], header=short), province)
    assert r.status_code == 422 and r.json()["code"] == "form_wrong_header"
    assert r.json()["missing_columns"] == ["手机号码"]
    assert "缺少列：手机号码" in r.json()["detail"]


async def test_blank_workbook_and_non_workbooks(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.add_worksheet(VOLUNTEERS.sheet_name)
    book.close()
    r = await upload(client, "volunteers", buffer.getvalue(), province)
    assert r.status_code == 422 and r.json()["code"] == "form_empty"
    assert "没有内容" in r.json()["detail"]
    r = await upload(client, "volunteers", b"", province)
    assert r.status_code == 422 and r.json()["code"] == "form_empty"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "不是工作簿")
    r = await upload(client, "volunteers", archive.getvalue(), province)
    assert r.status_code == 415 and r.json()["code"] == "form_not_xlsx"
    assert "Excel" in r.json()["detail"]
    r = await upload(client, "volunteers", b"%PDF-1.7\n" + b"0" * 100, province)
    assert r.status_code == 415 and r.json()["code"] == "form_not_xlsx"


# --- a store that fails part-way takes everything back ------------------------------------------------------


async def test_failure_while_storing_takes_back_everything(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: ServiceSettings,
    province: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another writer takes the platform number the import gives to its 16th row (a real duplicate key on the
    server) after the first chunks were stored: they, the reserved persons and their events go; the other
    writer's document stays; the answer is a clear 409 and no personal data reaches the log."""
    registry = app.state.registry
    db = registry.db
    monkeypatch.setattr(import_log, "INSERT_CHUNK", 5)  # several chunks from a small file
    counter = await db[COUNTERS].find_one({"_id": f"volunteer:{registry.year}"})
    taken = format_platform_number(registry.year, (counter["seq"] if counter else 0) + 16)
    await db[VOLUNTEER_COLLECTION].insert_one({"_id": taken, "platform_number": taken, "name": "别人"})
    rows = [volunteer_row(200 + i, unit=W.city_name) for i in range(25)]
    data = workbook(VOLUNTEERS, rows)
    failed = await upload(client, "volunteers", data, province)
    assert failed.status_code == 409, failed.text
    assert failed.json()["code"] == "form_conflict" and "整个文件未导入" in failed.json()["detail"]
    assert [d["_id"] async for d in db[VOLUNTEER_COLLECTION].find({})] == [taken]
    assert await registry.outbox.relay.sweep(grace_s=0) == 0  # nothing left behind to publish
    assert "13800000215" not in caplog.text and "i215@example.com" not in caplog.text

    await db[VOLUNTEER_COLLECTION].delete_one({"_id": taken})
    again = await upload(client, "volunteers", data, province)
    assert again.status_code == 200, again.text
    assert again.json()["created"] == 25
    docs = [d async for d in db[VOLUNTEER_COLLECTION].find({})]
    stored = {d["_id"] for d in docs}
    assert len(stored) == 25
    # stored encrypted and masked only
    raw = repr(docs)
    assert all(row["id_number"] not in raw for row in rows)
    assert all(d["id_cipher"].startswith("v1:") and d["id_masked"].endswith("*" * 16) for d in docs)
    records = await read_topic(settings.kafka_bootstrap, settings.topic(VOLUNTEER_STREAM), expect=25)
    events: list[dict[str, Any]] = [json.loads(r.value) for r in records]
    registered = {e["data"]["volunteer_id"] for e in events if e["type"] == "stvs.volunteer.registered.v1"}
    assert registered == stored  # events of exactly the stored volunteers, none of the import taken back
