"""Excel exports (xlsxwriter): Chinese headers, one sheet per level of the hierarchy (市级、学会、高校、企业、县级…)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import xlsxwriter

from services.reporting.domain.hierarchy import by_level
from services.reporting.domain.vocabulary import LINE_ZH, THEME_SHORT_ZH
from shared.calendar import zh_datetime

COMPLIANCE_HEADERS = (
    "单位编号",
    "单位名称",
    "队伍类型",
    "所属城市",
    "注册志愿者（本级）",
    "注册志愿者（含下级）",
    "首批人数要求",
    "考核项目",
    "状态",
    "差额",
    "说明",
    "截止时间",
)
MONTHLY_HEADERS = (
    "单位编号",
    "单位名称",
    "队伍类型",
    "注册志愿者",
    "首批人数要求",
    "本月新增志愿者",
    "本月活动次数",
    "本月服务时长（小时）",
    "本月服务人数",
)

ACTIVITY_HEADERS = (
    "开展单位",
    "活动名称",
    "开始时间",
    "工作方向",
    "活动主题",
    "参与志愿者人次",
    "服务时长（小时）",
    "服务人数",
)


def _workbook() -> tuple[io.BytesIO, Any, Any]:
    buffer = io.BytesIO()
    # user text (unit names, activity titles) is written as text: with the defaults a title beginning with `=`
    # would become a live formula (and `http…` a link, `1e5` a number) in the province office's Excel
    book = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "remove_timezone": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
    return buffer, book, header


def _sheet(book: Any, header: Any, name: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    sheet = book.add_worksheet(name)
    sheet.write_row(0, 0, headers, header)
    for i, row in enumerate(rows, start=1):
        for j, value in enumerate(row):
            if isinstance(value, str):
                sheet.write_string(i, j, value)  # a string cell whatever it begins with, never a formula
            elif value is not None:
                sheet.write(i, j, value)
    sheet.freeze_panes(1, 0)
    sheet.set_column(0, len(headers) - 1, 16)


def _due(value: Any) -> str:
    if isinstance(value, datetime):
        return zh_datetime(value)
    if isinstance(value, str) and value:
        return zh_datetime(datetime.fromisoformat(value))
    return ""


def compliance_xlsx(body: Mapping[str, Any]) -> bytes:
    buffer, book, header = _workbook()
    for level, units in by_level(body["units"]).items():
        rows = [
            (
                u["unit_id"],
                u["name"],
                u["kind_zh"],
                u.get("city_zh"),
                u["volunteers"],
                u["subtree_volunteers"],
                u.get("minimum"),
                r["label_zh"],
                r["status_zh"],
                r["gap"],
                r["detail_zh"],
                _due(r.get("due_at")),
            )
            for u in units
            for r in u["rules"]
        ]
        _sheet(book, header, level, COMPLIANCE_HEADERS, rows)
    if not body["units"]:
        _sheet(book, header, "无数据", COMPLIANCE_HEADERS, [])
    book.close()
    return buffer.getvalue()


def monthly_xlsx(report: Mapping[str, Any]) -> bytes:
    buffer, book, header = _workbook()
    team, rollup = report["team_building"], report["rollup"]
    summary = [
        ("单位", report["name"]),
        ("月份", report["month"]),
        ("报送截止时间", _due(report.get("due_at"))),
        ("下级队伍数（含本级）", team["units"]),
        ("已审核通过队伍数", team["units_active"]),
        ("注册志愿者（含下级）", team["subtree_volunteers"]),
        ("本月新增志愿者（含下级）", team["subtree_new_volunteers"]),
        ("本月活动次数（含下级）", rollup["activities"]),
        ("本月服务时长（小时，含下级）", rollup["hours"]),
        ("本月服务人数（含下级）", rollup["people_served"]),
        ("报送状态", _submission_zh(report.get("submission"))),
    ]
    _sheet(book, header, "汇总", ("项目", "数值"), summary)
    for level, units in by_level(report["units"]).items():
        rows = [
            (
                u["unit_id"],
                u["name"],
                u["kind_zh"],
                u["volunteers"],
                u.get("minimum"),
                u["new_volunteers"],
                u["activities"],
                u["hours"],
                u["people_served"],
            )
            for u in units
        ]
        _sheet(book, header, level, MONTHLY_HEADERS, rows)
    activities = [
        (
            a["unit_name"],
            a["title"],
            _due(a["starts_at"]),
            LINE_ZH.get(a["line_of_work"], a["line_of_work"]),
            "、".join(THEME_SHORT_ZH.get(t, t) for t in a["themes"]),
            a["participants"],
            a["hours"],
            a["people_served"],
        )
        for a in report["activities_carried_out"]
    ]
    _sheet(book, header, "活动明细", ACTIVITY_HEADERS, activities)
    book.close()
    return buffer.getvalue()


def _submission_zh(submission: Mapping[str, Any] | None) -> str:
    if not submission:
        return "未报送"
    return f"已报送（{_due(submission['submitted_at'])}{'，逾期' if submission.get('late') else ''}）"
