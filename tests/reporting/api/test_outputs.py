"""Exports, certificates and charts of the reporting service against the real infrastructure."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import openpyxl
import pytest

from shared.identity import Identity
from shared.settings import ServiceSettings
from tests.fixtures import eventually
from tests.reporting.helpers import (
    Harness,
    at,
    completed,
    headers,
    publish,
    running,
    unit_event,
    volunteer_registered,
    when,
)


@pytest.fixture(scope="module")
async def harness(settings: ServiceSettings) -> AsyncIterator[Harness]:
    async with running(settings) as started:
        await publish(
            settings,
            [
                unit_event("P", "province_corps", [], name="河北省科技志愿者总队"),
                unit_event("C1", "city_detachment", ["P"], name="石家庄市科技志愿者支队", city="shijiazhuang"),
                unit_event("C2", "city_detachment", ["P"], name="唐山市科技志愿者支队", city="tangshan"),
                unit_event("K1", "county_team", ["P", "C1"], name="正定县科技志愿者队", city="shijiazhuang"),
                unit_event("U1", "university_detachment", ["P"], name="河北大学科技志愿者支队"),
                volunteer_registered("v1", ["K1"], name="李志愿"),
                volunteer_registered("v2", ["C1"]),
                completed("a1", "K1", at(2026, 5, 10), [("v1", 120.5)], served=30),
                completed("a2", "C1", at(2026, 5, 11), [("v2", 2)], served=10),
            ],
        )
        await eventually(
            lambda: when(started.stats("P"), lambda b: (b["rollup"]["activities"], b["rollup"]["volunteers"]) == (2, 2))
        )
        yield started


async def get(harness: Harness, url: str, identity: Identity | None = None, **params: Any) -> Any:
    hdrs = headers(harness.settings, identity) if identity else headers(harness.settings)
    return await harness.client.get(url, params=params, headers=hdrs)


def svg_texts(content: bytes) -> list[str]:
    """The text elements of an SVG this service drew (well-formed XML is part of the check)."""
    root = ET.fromstring(content)  # noqa: S314 - our own output, parsed to check it
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


def header_row(sheet: Any) -> list[Any]:
    return [c.value for c in next(sheet.iter_rows(min_row=1, max_row=1))]


async def test_compliance_export_has_a_sheet_per_level_and_chinese_headers(harness: Harness) -> None:
    response = await get(harness, "/exports/compliance.xlsx", year=2026, at="2026-08-01T00:00:00+08:00")
    assert response.status_code == 200, response.text
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["总队", "市级", "高校", "县级"]
    city = book["市级"]
    assert header_row(city)[:3] == ["单位编号", "单位名称", "队伍类型"]
    assert "状态" in header_row(city) and "差额" in header_row(city)
    rows = [[c.value for c in r] for r in city.iter_rows(min_row=2)]
    headcount = next(r for r in rows if r[0] == "C1" and r[7] == "首批组建人数")
    assert (headcount[8], headcount[9]) == ("未完成", 299)
    assert {r[0] for r in rows} == {"C1", "C2"}
    assert {r[0]: r[3] for r in rows} == {"C1": "石家庄市", "C2": "唐山市"}, (
        "the city by its name, as the office reads it"
    )


async def test_monthly_export_rolls_up_the_subtree(harness: Harness) -> None:
    response = await get(harness, "/exports/monthly/C1/2026-05.xlsx")
    assert response.status_code == 200, response.text
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["汇总", "市级", "县级", "活动明细"]
    done = [[c.value for c in r] for r in book["活动明细"].iter_rows()]
    assert done[0][:2] == ["开展单位", "活动名称"]
    assert [(r[0], r[3], r[6]) for r in done[1:]] == [
        ("正定县科技志愿者队", "进社区进学校", 120.5),
        ("石家庄市科技志愿者支队", "进社区进学校", 2),
    ]
    summary = {r[0].value: r[1].value for r in book["汇总"].iter_rows(min_row=2)}
    assert summary["本月活动次数（含下级）"] == 2
    assert summary["本月服务时长（小时，含下级）"] == 122.5
    assert summary["报送状态"] == "未报送"
    county = book["县级"]
    assert header_row(county)[6] == "本月活动次数"
    assert [c.value for c in next(county.iter_rows(min_row=2))][:2] == ["K1", "正定县科技志愿者队"]


async def test_charts_are_svg_with_chinese_labels(harness: Harness) -> None:
    response = await get(harness, "/charts/headcount.svg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    texts = svg_texts(response.content)
    assert "石家庄市科技志愿者支队" in texts
    assert "唐山市科技志愿者支队" in texts
    assert any("1/300人（尚差299人）" in t for t in texts)

    heat = await get(harness, "/charts/quota-heatmap.svg", unit_id="C1", year=2026)
    assert heat.status_code == 200, heat.text
    texts = svg_texts(heat.content)
    assert "第2季度" in texts and "第1季度" not in texts  # the campaign starts in April
    assert "正定县科技志愿者队" in texts


async def test_unit_admin_sees_only_its_subtree(harness: Harness) -> None:
    admin = Identity(subject="k1", role="unit_admin", unit_id="K1")
    assert (await get(harness, "/compliance", admin, unit_id="C1")).status_code == 404  # above it: not revealed
    own = await get(harness, "/compliance", admin, unit_id="K1", year=2026)
    assert own.status_code == 200
    assert [u["unit_id"] for u in own.json()["units"]] == ["K1"]


async def test_a_subtree_reads_the_same_figures_as_the_whole_province(harness: Harness) -> None:
    params: dict[str, Any] = {"year": 2026, "at": "2026-08-01T00:00:00+08:00"}
    province = (await get(harness, "/compliance", None, unit_id="P", **params)).json()
    city = (await get(harness, "/compliance", None, unit_id="C1", **params)).json()
    rows = {r["unit_id"]: r for r in province["units"]}
    assert len(city["units"]) > 1 and len(rows) > len(city["units"])
    assert all(row == rows[row["unit_id"]] for row in city["units"])
    province_month = (await get(harness, "/monthly-reports/P/2026-05")).json()
    city_month = (await get(harness, "/monthly-reports/C1/2026-05")).json()
    month_rows = {r["unit_id"]: r for r in province_month["units"]}
    assert all(row == month_rows[row["unit_id"]] for row in city_month["units"])
    assert province_month["rollup"]["activities"] == 2


def test_the_fast_json_of_large_reports_is_what_fastapi_would_send() -> None:
    from datetime import UTC, datetime

    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    from services.reporting.api.responses import json_response
    from services.reporting.domain.compliance import RuleStatus
    from shared.calendar import SHANGHAI

    body = {
        "as_of": datetime(2026, 8, 1, tzinfo=SHANGHAI),
        "units": [
            {
                "unit_id": "K1",
                "name": "正定县科技志愿者队",
                "status": RuleStatus.NOT_YET.value,
                "hours": 3.25,
                "gap": 1,
                "due_at": datetime(2026, 4, 20, 15, 59, 59, tzinfo=UTC),
                "quarter": None,
                "themes": {"women_youth": 1},
                "ok": True,
            }
        ],
    }
    assert json_response(body).body == JSONResponse(jsonable_encoder(body)).body
