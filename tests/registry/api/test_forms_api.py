"""Collective registration through the API: templates, imports (all errors at once, all or nothing, dry run,
idempotent re-upload), exports that re-import unchanged, refused files; against the real infrastructure."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
import xlsxwriter
from fastapi import FastAPI
from python_calamine import CalamineWorkbook

from services.registry.adapters.spreadsheets.forms import CONTACTS, ORGANISATIONS, VOLUNTEERS
from services.registry.adapters.spreadsheets.layout import FormSpec
from shared.contracts.events import UNITS
from shared.contracts.events import VOLUNTEERS as VOLUNTEER_STREAM
from shared.settings import ServiceSettings
from tests.fixtures import read_topic
from tests.registry.helpers import CITY_LEADERS, headers, id_number


def workbook(spec: FormSpec[Any], rows: list[dict[str, Any]], *, header: list[str] | None = None) -> bytes:
    """A filled form as a person would type it: text cells under the form's Chinese headers."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(spec.sheet_name)
    columns = [c.key for c in spec.columns]
    for i, title in enumerate(header or [c.header for c in spec.columns]):
        sheet.write_string(0, i, title)
    for r, row in enumerate(rows, start=1):
        for i, key in enumerate(columns):
            if row.get(key) is not None:
                sheet.write_string(r, i, str(row[key]))
    book.close()
    return buffer.getvalue()


def volunteer_row(seq: int, *, unit: str | None = None, **over: Any) -> dict[str, Any]:
    row = {
        "name": f"导入{chr(0x4E00 + seq)}",
        "gender": "男",
        "id_number": id_number(10_000 + seq),
        "mobile": f"138{seq:08d}",
        "email": f"i{seq}@example.com",
        "employer": "正定县农业农村局",
        "title": "农艺师",
        "title_level": "中级",
        "education": "大学本科",
        "professional_field": "果树栽培",
        "political_status": "中共党员",
        "unit_name": unit,
        "skills": "果树修剪、病虫害防治",
        "service_areas": "助力乡村振兴",
    }
    row.update(over)
    return row


class W:
    corps: str
    city: str
    county: str


@pytest.fixture(scope="module")
def province(settings: ServiceSettings) -> dict[str, str]:
    return headers(settings, "province_admin", subject="province")


async def upload(
    client: httpx.AsyncClient, form: str, data: bytes, hdrs: dict[str, str], **params: Any
) -> httpx.Response:
    files = {"file": ("form.xlsx", data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}
    return await client.post(f"/forms/{form}/import", files=files, params=params, headers=hdrs)


async def count_volunteers(client: httpx.AsyncClient, province: dict[str, str]) -> int:
    r = await client.get("/volunteers", headers=province)
    total: int = r.json()["total"]
    return total


async def test_setup_and_templates(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    r = await client.post(
        "/units", json={"kind": "总队", "leaders": [{"name": "张总", "role": "总队长"}]}, headers=province
    )
    W.corps = r.json()["id"]
    r = await client.post(
        "/units",
        json={
            "kind": "市级支队",
            "base": "石家庄",
            "parent_id": W.corps,
            "leaders": CITY_LEADERS,
            "phone": "0311-81234567",
        },
        headers=province,
    )
    assert r.status_code == 201, r.text
    W.city = r.json()["id"]
    r = await client.post(
        "/units",
        json={
            "kind": "county_team",
            "base": "正定县",
            "parent_id": W.city,
            "phone": "0311-7654321",
            "leaders": [{"name": "刘队长", "role": "队长"}],
        },
        headers=province,
    )
    W.county = r.json()["id"]
    for form, spec in (("organisations", ORGANISATIONS), ("volunteers", VOLUNTEERS), ("contacts", CONTACTS)):
        t = await client.get(f"/forms/{form}/template", headers=province)
        assert t.status_code == 200
        assert t.headers["content-type"].startswith("application/vnd.openxmlformats")
        book = CalamineWorkbook.from_filelike(io.BytesIO(t.content))
        assert spec.sheet_name in book.sheet_names and "说明" in book.sheet_names
        rows = book.get_sheet_by_name(spec.sheet_name).to_python()
        assert list(rows[0]) == list(spec.headers) and len(rows) == 2  # header and one example row
    assert (await client.get("/forms/other/template", headers=province)).status_code == 422


async def test_volunteer_import_reports_every_error_and_imports_nothing(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    admin = headers(settings, "unit_admin", unit_id=W.county)
    province = headers(settings, "province_admin")
    stored = await client.post(
        "/volunteers",
        json={**{k: v for k, v in volunteer_row(99).items() if k not in ("unit_name", "skills", "service_areas")}},
        headers=admin,
    )
    assert stored.status_code == 201, stored.text
    before = await count_volunteers(client, province)
    bad_check = id_number(10_001)[:-1] + ("1" if id_number(10_001)[-1] != "1" else "2")
    rows = [
        volunteer_row(0),
        volunteer_row(1, id_number=bad_check, mobile="555"),  # row 3: two errors
        volunteer_row(2, gender="女"),  # row 4: gender digit disagrees
        volunteer_row(3, id_number=id_number(10_000)),  # row 5: same person as row 2
        volunteer_row(4, id_number=id_number(10_099)),  # row 6: registered already
        volunteer_row(5, unit="不存在的队伍"),  # row 7
        volunteer_row(6),
    ]
    r = await upload(client, "volunteers", workbook(VOLUNTEERS, rows), admin)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "form_rows_invalid"
    located = {(e["row"], e["column"]) for e in problem["errors"]}
    assert {(3, "身份证号码"), (3, "手机号码"), (4, "身份证号码"), (2, "身份证号码"), (5, "身份证号码")} <= located
    assert (6, "身份证号码") in located and (7, "所属队伍") in located
    assert all(e["sheet"] == VOLUNTEERS.sheet_name for e in problem["errors"])
    dup = next(e for e in problem["errors"] if e["row"] == 6)
    assert "正定县科技志愿者队" in dup["message"]
    assert await count_volunteers(client, province) == before

    dry = await upload(client, "volunteers", workbook(VOLUNTEERS, rows), admin, dry_run="true")
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    assert len(dry.json()["errors"]) == len(problem["errors"])
    good = workbook(VOLUNTEERS, [volunteer_row(i) for i in (10, 11, 12)])
    dry_ok = await upload(client, "volunteers", good, admin, dry_run="true")
    assert dry_ok.json()["created"] == 3 and dry_ok.json()["errors"] == []
    assert await count_volunteers(client, province) == before


async def test_volunteer_import_then_reupload_and_export_round_trip(
    app: FastAPI, client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    admin = headers(settings, "unit_admin", unit_id=W.county)
    province = headers(settings, "province_admin")
    before = await count_volunteers(client, province)
    data = workbook(VOLUNTEERS, [volunteer_row(i) for i in range(20, 45)])
    r = await upload(client, "volunteers", data, admin)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 25 and r.json()["unchanged"] == 0
    assert await count_volunteers(client, province) == before + 25  # listed as soon as the import answers
    again = await upload(client, "volunteers", data, admin)
    assert again.status_code == 200 and again.json()["created"] == 0 and again.json()["unchanged"] == 25
    assert await count_volunteers(client, province) == before + 25

    full = {"unit_id": W.city, "full_ids": "true", "reason": "省级核查：年度名册报送"}
    exported = await client.get("/forms/volunteers/export", params=full, headers=province)
    assert exported.status_code == 200
    rows = CalamineWorkbook.from_filelike(io.BytesIO(exported.content)).get_sheet_by_name(VOLUNTEERS.sheet_name)
    assert len(rows.to_python()) == 1 + before + 25
    back = await upload(client, "volunteers", exported.content, province)
    assert back.status_code == 200, back.text
    assert back.json()["created"] == 0 and back.json()["unchanged"] == before + 25
    # a unit beside cannot export this unit's members
    other = headers(settings, "unit_admin", unit_id="u-elsewhere")
    assert (
        await client.get("/forms/volunteers/export", params={"unit_id": W.county}, headers=other)
    ).status_code == 404  # a read out of scope: nothing revealed


async def test_volunteer_export_masks_id_numbers_unless_a_province_admin_gives_a_reason(
    app: FastAPI, client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    """Members and applicants alike: masked for a unit admin and by default; in full only to a province admin who
    asks with a reason; every 附件2 export recorded (who, full or not, why, how many rows)."""
    admin = headers(settings, "unit_admin", unit_id=W.county, subject="county-admin")
    province = headers(settings, "province_admin", subject="province-auditor")
    full_number = id_number(10_020)  # imported by the previous test

    def id_column(content: bytes) -> list[str]:
        sheet = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_name(VOLUNTEERS.sheet_name)
        rows = sheet.to_python()
        return [str(row[list(rows[0]).index("身份证号码")]) for row in rows[1:]]

    for who, params in ((admin, {}), (province, {"unit_id": W.county})):
        masked = await client.get("/forms/volunteers/export", params=params, headers=who)
        assert masked.status_code == 200, masked.text
        ids = id_column(masked.content)
        assert ids and all(i.endswith("*" * 16) for i in ids)
        assert full_number[:2] + "*" * 16 in ids
    refused = await client.get(
        "/forms/volunteers/export", params={"full_ids": "true", "reason": "核查名册"}, headers=admin
    )
    assert refused.status_code == 403 and refused.json()["code"] == "full_ids_forbidden"
    no_reason = await client.get("/forms/volunteers/export", params={"full_ids": "true"}, headers=province)
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "full_ids_reason_required"
    params = {"unit_id": W.county, "full_ids": "true", "reason": "省级核查：重复注册"}
    full = await client.get("/forms/volunteers/export", params=params, headers=province)
    assert full.status_code == 200 and full_number in id_column(full.content)
    records = await app.state.registry.db["exports"].find({"form": "volunteers"}).sort("_id", 1).to_list()
    mine = [(r["subject"], r["full_ids"], r["reason"]) for r in records if r["subject"] != "province_admin:x"]
    assert mine == [
        ("county-admin", False, None),
        ("province-auditor", False, None),
        ("province-auditor", True, "省级核查：重复注册"),
    ]
    assert all(r["rows"] >= 25 and r["at"] for r in records)


async def test_organisation_and_contact_import_and_round_trip(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    province = headers(settings, "province_admin")
    city_admin = headers(settings, "unit_admin", unit_id=W.city)
    org_rows = [
        {
            "name": "行唐县科技志愿者队",
            "kind": "县（市、区）科技志愿者队",
            "parent_name": "石家庄市科技志愿者支队",
            "leader_name": "孙队长",
            "leader_role": "队长",
            "other_leaders": "周某（副队长）、吴某（副队长）",
            "phone": "0311-82345678",
            "founded_on": "2020-04-01",
            "declared_members": "60",
        },
        {
            "name": "行唐县科技志愿服务口头镇分队",
            "kind": "分队",
            "parent_name": "行唐县科技志愿者队",
            "leader_name": "郑分队",
            "leader_role": "分队负责人",
            "phone": "13912345678",
        },
    ]
    bad = [
        *org_rows,
        {**org_rows[0], "name": "正定县科技志愿者队"},  # taken by a stored unit with other data
        {**org_rows[1], "name": "某分队", "parent_name": "不存在的支队"},
        {**org_rows[1], "name": "错分队", "kind": "县（市、区）科技志愿者队", "parent_name": "河北省科技志愿者总队"},
    ]
    r = await upload(client, "organisations", workbook(ORGANISATIONS, bad), city_admin)
    assert r.status_code == 422, r.text
    rows_with_errors = {e["row"] for e in r.json()["errors"]}
    assert rows_with_errors == {4, 5, 6}
    taken = next(e for e in r.json()["errors"] if e["row"] == 4)
    assert taken["column"] == "组织名称" and "已被" in taken["message"]
    assert (await client.get("/units", params={"kind": "分队"}, headers=province)).json()["total"] == 0

    ok = await upload(client, "organisations", workbook(ORGANISATIONS, org_rows), city_admin)
    assert ok.status_code == 200, ok.text
    assert ok.json()["created"] == 2
    units = (await client.get(f"/units/{W.city}/subtree", headers=province)).json()["items"]
    sub = next(u for u in units if u["kind"] == "sub_team")
    team = next(u for u in units if u["name"] == "行唐县科技志愿者队")
    assert sub["status"] == "pending" and sub["parent_id"] == team["id"]  # a city admin's registrations wait
    assert sub["ancestors"] == [W.corps, W.city, team["id"]]
    again = await upload(client, "organisations", workbook(ORGANISATIONS, org_rows), city_admin)
    assert again.json()["created"] == 0 and again.json()["unchanged"] == 2

    exported = await client.get("/forms/organisations/export", params={"unit_id": W.city}, headers=province)
    back = await upload(client, "organisations", exported.content, province)
    assert back.status_code == 200, back.text
    assert back.json()["created"] == 0 and back.json()["unchanged"] == 4

    contact = {
        "unit_name": "正定县科技志愿者队",
        "name": "钱联系",
        "post": "办公室主任",
        "office_phone": "0311-88888888",
        "mobile": "13711112222",
        "email": "qian@example.com",
    }
    c = await upload(client, "contacts", workbook(CONTACTS, [contact]), city_admin)
    assert c.status_code == 200 and c.json()["updated"] == 1
    assert (await client.get(f"/units/{W.county}", headers=province)).json()["contact"]["name"] == "钱联系"
    c2 = await upload(client, "contacts", workbook(CONTACTS, [contact]), city_admin)
    assert c2.json()["updated"] == 0 and c2.json()["unchanged"] == 1
    exported = await client.get("/forms/contacts/export", params={"unit_id": W.city}, headers=province)
    c3 = await upload(client, "contacts", exported.content, province)
    assert c3.json()["updated"] == 0 and c3.json()["unchanged"] == 1
    beside = await upload(
        client, "contacts", workbook(CONTACTS, [contact]), headers(settings, "unit_admin", unit_id=team["id"])
    )
    assert beside.status_code == 422


async def test_bad_files(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    big = b"PK\x03\x04" + b"0" * (20 * 1024 * 1024 + 10)
    r = await upload(client, "volunteers", big, province)
    assert r.status_code == 413 and r.json()["code"] == "form_too_large"
    r = await upload(client, "volunteers", "姓名,性别\n张三,男\n".encode(), province)
    assert r.status_code == 415 and r.json()["code"] == "form_not_xlsx"
    r = await upload(client, "volunteers", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, province)
    assert r.status_code == 415
    wrong = workbook(VOLUNTEERS, [volunteer_row(1)], header=["姓名", "性别", "身份号"])
    r = await upload(client, "volunteers", wrong, province)
    assert r.status_code == 422 and r.json()["code"] == "form_wrong_header"
    assert "身份证号码" in r.json()["detail"]
    r = await upload(client, "volunteers", workbook(VOLUNTEERS, []), province)
    assert r.status_code == 422 and r.json()["code"] == "form_empty"
    r = await client.post("/forms/volunteers/import", headers=province, content=b"x")
    assert r.status_code == 422
    forbidden = await upload(client, "volunteers", workbook(VOLUNTEERS, [volunteer_row(1)]), {})
    assert forbidden.status_code == 401


async def test_bulk_events_one_per_entity_without_personal_data(settings: ServiceSettings) -> None:
    records = await read_topic(settings.kafka_bootstrap, settings.topic(VOLUNTEER_STREAM), expect=52)
    events = [json.loads(r.value) for r in records]
    registered = [e for e in events if e["type"] == "stvs.volunteer.registered.v1"]
    assert len(registered) == 26  # one stored by the API, 25 imported; none for refused, dry-run or re-uploads
    assert len({e["data"]["volunteer_id"] for e in registered}) == 26
    raw = b"".join(r.value for r in records)
    for seq in range(100):
        assert id_number(10_000 + seq).encode() not in raw
        assert f"138{seq:08d}".encode() not in raw
    unit_records = await read_topic(settings.kafka_bootstrap, settings.topic(UNITS), expect=5)
    unit_events = [json.loads(r.value) for r in unit_records]
    kinds = [e["data"]["kind"] for e in unit_events if e["type"] == "stvs.unit.registered.v1"]
    assert kinds.count("sub_team") == 1 and kinds.count("county_team") == 2
    updated = [e["data"] for e in unit_events if e["type"] == "stvs.unit.updated.v1"]
    assert updated[-1]["contact"] == {"name": "钱联系", "email": "qian@example.com"}
