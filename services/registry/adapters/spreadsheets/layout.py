"""The collective-registration spreadsheets' shapes: what an upload turns into (typed rows, row errors, whole-file
refusals), the column layouts and the cell readers the forms share."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final, Generic, Literal

from services.registry.domain.imports import (
    FormKind,
    R,
)

MAX_ROWS: Final = 100_000
MAX_UPLOAD_BYTES: Final = 20 * 1024 * 1024
MAX_COLUMNS: Final = 64  # the widest form has 14 columns
MAX_XML_BYTES: Final = 400 * 1024 * 1024  # decompressed; a full 20 MB upload of the widest form is about 150 MB
BLANK_ROWS_ALLOWED: Final = 1_000  # blank rows between the data rows, on top of the data rows and a title
INSTRUCTIONS_SHEET: Final = "说明"

Cell = str | float | int | bool | date | datetime | time | timedelta | None
"""A cell value as python-calamine returns it ('' for an empty cell)."""

# ----------------------------------------------------------------------------------------------------
# Results and refusals
# ----------------------------------------------------------------------------------------------------


FormErrorKind = Literal[
    "not_xlsx", "empty", "protected", "wrong_header", "too_many_rows", "too_many_columns", "too_large"
]


class FormError(Exception):
    """The whole file is refused (not a row): `kind` for machines, `message` in Chinese for people."""

    def __init__(
        self,
        kind: FormErrorKind,
        message: str,
        *,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.kind: FormErrorKind = kind
        self.message = message
        self.missing = tuple(missing)
        self.unexpected = tuple(unexpected)


# ----------------------------------------------------------------------------------------------------
# Column layouts
# ----------------------------------------------------------------------------------------------------

ColumnType = Literal["text", "date", "count"]


@dataclass(frozen=True, slots=True)
class Column:
    """One spreadsheet column: field key, Chinese header, whether it must be filled, the coded values offered
    as a drop-down list (empty: free input), its width and the instruction shown on the 说明 sheet."""

    key: str
    header: str
    required: bool = False
    choices: tuple[str, ...] = ()
    note: str = ""
    width: int = 16
    type: ColumnType = "text"


Cells = Mapping[str, Cell]


@dataclass(frozen=True)
class FormSpec(Generic[R]):
    """Everything about one form: layout, the example row, how a row is read and written, and which column
    must be unique within a file."""

    kind: FormKind
    code: str  # 附件1
    title: str
    sheet_name: str
    columns: tuple[Column, ...]
    example: R
    read_row: Callable[[Cells, date | None], R]  # raises ValidationFailedError with column keys as fields
    write_row: Callable[[R], dict[str, Cell]]
    unique_key: str  # the column whose value must not repeat within a file
    unique_value: Callable[[Cells], str | None]  # read from the cells: rows with other errors count too
    duplicate_message: str  # "{rows}" is replaced by the other rows' numbers
    check_rows: Callable[[Sequence[tuple[int, R]]], list[tuple[int, str, str]]] | None = None
    notes: tuple[str, ...] = ()
    _by_key: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {c.key: c for c in self.columns})

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(c.header for c in self.columns)

    def header_of(self, key: str) -> str | None:
        column = self._by_key.get(key)
        return column.header if column else None


LIST_SEPARATORS: Final = re.compile(r"[、,，;；\n]+")


def _split(value: Cell) -> list[str]:
    text = _text(value)
    return [item.strip() for item in LIST_SEPARATORS.split(text) if item.strip()] if text else []


def _join(items: Iterable[str]) -> str | None:
    return "、".join(items) or None


def _text(value: Cell) -> str | None:
    """A cell as text. Numbers typed into text columns come back from Excel as floats: 13800138000.0 is
    '13800138000'."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _date_cell(value: Cell) -> date | str | None:
    """A date column: date cells as dates, Excel serial numbers (a date typed into a number cell) as dates."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, float | int) and not isinstance(value, bool) and 1 <= value < 2_958_466:
        return _EXCEL_EPOCH + timedelta(days=int(value))
    return _text(value)


def _count_cell(value: Cell) -> int | str | None:
    """A count column: whole numbers as int, anything else as text (refused by the validator)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _text(value)


_EXCEL_EPOCH: Final = date(1899, 12, 30)
