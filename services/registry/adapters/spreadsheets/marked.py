"""The copy of a failed upload a person corrects: the sheet's cells as they were read, every problem marked in its
cell (a red fill and a comment saying what is wrong; a problem of a whole row on its first cell) and a sheet
问题清单 listing them all. The data sheet stays first and keeps its name and header, so the corrected copy is
uploaded as it is (the list is ignored). Values are copied, not the original's formatting or other sheets."""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Final

import xlsxwriter

from services.registry.adapters.spreadsheets.layout import Cell, FormSpec
from services.registry.adapters.spreadsheets.workbook import _open_sheet, _read_header
from services.registry.domain.imports import R, RowError

PROBLEMS_SHEET: Final = "问题清单"
MAX_COMMENT: Final = 1_000  # characters of one cell's comment


def mark_problems(form: FormSpec[R], data: bytes, problems: Sequence[RowError]) -> bytes:
    """The upload with its problems marked (see the module); ``data`` was read once already, so it opens."""
    sheet_name, rows = _open_sheet(data, form, len(data))
    header_index, positions = _read_header(form, sheet_name, rows)
    column_of = {c.header: i for i, c in enumerate(positions) if c is not None}
    marks: defaultdict[tuple[int, int], list[str]] = defaultdict(list)
    for p in problems:
        marks[(p.row - 1, column_of.get(p.column or "", 0))].append(p.message)
    width = max(len(positions), max((c for _, c in marks), default=0) + 1)
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        book = xlsxwriter.Workbook(
            path, {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
        )
        _write_data(book, sheet_name, rows, marks, width, header_index, form)
        _write_list(book, problems)
        book.close()
        with open(path, "rb") as written:
            return written.read()
    finally:
        os.unlink(path)


def _write_data(
    book: Any,
    name: str,
    rows: Sequence[Sequence[Cell]],
    marks: dict[tuple[int, int], list[str]],
    width: int,
    header_index: int,
    form: FormSpec[R],
) -> None:
    sheet = book.add_worksheet(name)
    formats = {
        "text": book.add_format({"num_format": "@"}),
        "day": book.add_format({"num_format": "yyyy-mm-dd"}),
        "bad": book.add_format({"num_format": "@", "bg_color": "#FFC7CE", "font_color": "#9C0006", "border": 1}),
        "header": book.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1}),
    }
    for index, column in enumerate(form.columns):
        sheet.set_column(index, index, column.width)
    sheet.freeze_panes(header_index + 1, 0)
    for r, row in enumerate(rows):
        for c in range(width):
            value = row[c] if c < len(row) else None
            messages = marks.get((r, c))
            style = formats["bad"] if messages else formats["header"] if r == header_index else None
            _write_cell(sheet, r, c, value, style, formats)
            if messages:
                sheet.write_comment(r, c, "；".join(messages)[:MAX_COMMENT], {"x_scale": 2, "y_scale": 1.5})


def _write_cell(sheet: Any, r: int, c: int, value: Cell, style: Any, formats: dict[str, Any]) -> None:
    if value is None or value == "":
        if style is not None:
            sheet.write_blank(r, c, None, style)
    elif isinstance(value, bool):
        sheet.write_boolean(r, c, value, style)
    elif isinstance(value, int | float):
        sheet.write_number(r, c, value, style)
    elif isinstance(value, datetime | date):
        sheet.write_datetime(r, c, value, style or formats["day"])
    elif isinstance(value, time | timedelta):
        sheet.write_string(r, c, str(value), style or formats["text"])
    else:
        sheet.write_string(r, c, str(value), style or formats["text"])


def _write_list(book: Any, problems: Sequence[RowError]) -> None:
    sheet = book.add_worksheet(PROBLEMS_SHEET)
    bold = book.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1})
    for c, (title, width) in enumerate((("工作表", 24), ("行号", 8), ("列", 16), ("问题", 80))):
        sheet.set_column(c, c, width)
        sheet.write_string(0, c, title, bold)
    for r, p in enumerate(problems, start=1):
        sheet.write_string(r, 0, p.sheet)
        sheet.write_number(r, 1, p.row)
        sheet.write_string(r, 2, p.column or "整行")
        sheet.write_string(r, 3, p.message)
