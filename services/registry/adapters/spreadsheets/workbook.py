"""Writing (templates and exports share one layout, XlsxWriter) and reading uploads (python-calamine, behind the
xlsx guard) of the collective-registration spreadsheets. Works on bytes in memory; no other I/O."""

from __future__ import annotations

import gc
import io
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, Final

import xlsxwriter
from python_calamine import CalamineWorkbook, PasswordError

from services.registry.adapters.spreadsheets.layout import (
    BLANK_ROWS_ALLOWED,
    INSTRUCTIONS_SHEET,
    MAX_COLUMNS,
    MAX_ROWS,
    MAX_UPLOAD_BYTES,
    MAX_XML_BYTES,
    Cell,
    Column,
    FormError,
    FormSpec,
    _text,
)
from services.registry.adapters.spreadsheets.xlsx_guard import Limits, XlsxRefused, check_xlsx
from services.registry.domain.errors import ValidationFailedError
from services.registry.domain.imports import ParsedForm, R, RowError
from shared import clock

# ----------------------------------------------------------------------------------------------------
# Writing: templates and exports share one layout
# ----------------------------------------------------------------------------------------------------

READ_TICK: Final = 1_000  # rows between two reports of reading progress
_DROPDOWN_LAST_ROW: Final = MAX_ROWS  # 0-based: data validation covers Excel rows 2 … MAX_ROWS + 1


def build_template(form: FormSpec[R]) -> bytes:
    """A blank form: Chinese headers (bold, first row frozen), drop-down lists on coded columns, one valid
    example row and an instructions sheet (说明)."""
    return _write_workbook(form, [form.example], template=True)


def export_form(form: FormSpec[R], rows: Iterable[R]) -> bytes:
    """The rows in the form's layout; `parse_upload` reads them back unchanged."""
    return _write_workbook(form, rows, template=False)


def _write_workbook(form: FormSpec[R], rows: Iterable[R], *, template: bool) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    )
    header = workbook.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True})
    required = workbook.add_format(
        {"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True, "font_color": "#C00000"}
    )
    text = workbook.add_format({"num_format": "@"})
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    count = workbook.add_format({"num_format": "0"})
    sheet = workbook.add_worksheet(form.sheet_name)
    sheet.freeze_panes(1, 0)
    for index, column in enumerate(form.columns):
        column_format = {"date": day, "count": count}.get(column.type, text)
        sheet.set_column(index, index, column.width, column_format)
        sheet.write_string(0, index, column.header, required if column.required else header)
        if column.choices:
            sheet.data_validation(
                1,
                index,
                _DROPDOWN_LAST_ROW,
                index,
                {
                    "validate": "list",
                    "source": list(column.choices),
                    "error_title": "输入值无效",
                    "error_message": f"请从下拉列表中选择{column.header}",
                },
            )
        if column.note:
            sheet.write_comment(0, index, column.note)
    row_index = 0
    for row_index, row in enumerate(rows, start=1):
        cells = form.write_row(row)
        for index, column in enumerate(form.columns):
            value = cells.get(column.key)
            if value is None or value == "":
                continue
            if isinstance(value, str):
                sheet.write_string(row_index, index, value, text)
            elif isinstance(value, date):
                sheet.write_datetime(row_index, index, value, day)
            elif isinstance(value, int | float):
                sheet.write_number(row_index, index, value, count)
            else:
                sheet.write_string(row_index, index, str(value), text)
    if row_index:
        sheet.autofilter(0, 0, row_index, len(form.columns) - 1)
    _write_instructions(workbook, form, template=template)
    workbook.close()
    return buffer.getvalue()


def _write_instructions(workbook: Any, form: FormSpec[R], *, template: bool) -> None:
    sheet = workbook.add_worksheet(INSTRUCTIONS_SHEET)
    title = workbook.add_format({"bold": True, "font_size": 14})
    bold = workbook.add_format({"bold": True, "border": 1, "bg_color": "#D9E1F2"})
    wrap = workbook.add_format({"text_wrap": True, "valign": "top", "border": 1})
    sheet.set_column(0, 0, 20)
    sheet.set_column(1, 1, 10)
    sheet.set_column(2, 2, 50)
    sheet.set_column(3, 3, 50)
    sheet.write_string(0, 0, f"{form.code} {form.title} 填写说明", title)
    lines = [
        f"1. 在“{form.sheet_name}”工作表中填写，第1行为表头，请勿修改、删除或调换；从第2行起每行一条记录。",
        "2. 红色表头为必填项；带下拉列表的列请从列表中选择。",
        f"3. 单个文件不超过{MAX_ROWS}行、20MB；请勿加密或设置打开密码。",
        "4. 上传后逐行校验，所有错误会一次列出（工作表、行号、列名、原因）；有任何错误时整个文件都不导入。",
    ]
    if template:
        lines.append("5. 第2行为虚构的填写示例，提交前请删除或覆盖。")
    lines.extend(f"· {note}" for note in form.notes)
    for offset, line in enumerate(lines, start=2):
        sheet.write_string(offset, 0, line)
    start = len(lines) + 3
    for index, caption in enumerate(("列名", "是否必填", "填写要求", "可选值")):
        sheet.write_string(start, index, caption, bold)
    for offset, column in enumerate(form.columns, start=start + 1):
        sheet.write_string(offset, 0, column.header, wrap)
        sheet.write_string(offset, 1, "必填" if column.required else "选填", wrap)
        sheet.write_string(offset, 2, column.note, wrap)
        sheet.write_string(offset, 3, "、".join(column.choices), wrap)


# ----------------------------------------------------------------------------------------------------
# Reading uploads
# ----------------------------------------------------------------------------------------------------

_OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC: Final = b"PK\x03\x04"
_ENCRYPTION_STREAM: Final = "EncryptionInfo".encode("utf-16-le")
_HEADER_SEARCH_ROWS: Final = 10


def _reader_failed(exc: BaseException) -> bool:
    """Whether the reader failed on the file: any error, and also a panic in its Rust code (pyo3's PanicException
    derives from BaseException), so a file the guard let through still cannot take the worker down."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _header_key(value: Cell) -> str:
    text = unicodedata.normalize("NFKC", _text(value) or "")
    text = "".join(text.split()).replace("*", "")
    return text.removesuffix("(必填)").removesuffix("(选填)")


def _open_sheet(
    data: bytes, form: FormSpec[R], max_bytes: int, max_rows: int = MAX_ROWS
) -> tuple[str, Sequence[Sequence[Cell]]]:
    if len(data) > max_bytes:
        raise FormError("too_large", f"文件超过{max_bytes // (1024 * 1024)}MB，请拆分后分批上传")
    if not data:
        raise FormError("empty", "上传的文件是空的")
    if data.startswith(_OLE2_MAGIC):
        if _ENCRYPTION_STREAM in data:
            raise FormError("protected", "文件设置了打开密码（已加密），请取消密码后重新上传")
        raise FormError("not_xlsx", "这是旧版 Excel（.xls）或其他 Office 文件，请另存为 .xlsx 格式后上传")
    if not data.startswith(_ZIP_MAGIC):
        raise FormError("not_xlsx", "文件不是 Excel（.xlsx）格式，请使用下载的模板填写")
    limits = Limits(max_rows + _HEADER_SEARCH_ROWS + BLANK_ROWS_ALLOWED, MAX_COLUMNS, MAX_XML_BYTES)
    try:
        check_xlsx(data, limits)  # before the reader: it allocates whatever rectangle the sheet claims
    except XlsxRefused as refused:
        raise FormError(refused.kind, refused.message) from None
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except PasswordError:
        raise FormError("protected", "文件设置了密码保护，请取消密码后重新上传") from None
    except BaseException as exc:
        if not _reader_failed(exc):
            raise
        raise FormError("not_xlsx", "文件不是有效的 Excel（.xlsx）文件，请使用下载的模板填写") from None
    names = list(workbook.sheet_names)
    name = form.sheet_name if form.sheet_name in names else next((n for n in names if n != INSTRUCTIONS_SHEET), None)
    if name is None:
        raise FormError("empty", "文件中没有工作表")
    try:
        rows: Sequence[Sequence[Cell]] = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except PasswordError:
        raise FormError("protected", "工作表设置了密码保护，请取消密码后重新上传") from None
    except BaseException as exc:
        if not _reader_failed(exc):
            raise
        raise FormError("not_xlsx", f"无法读取工作表“{name}”，请使用下载的模板填写") from None
    if not any(_filled(row) for row in rows):
        raise FormError("empty", f"工作表“{name}”中没有内容")
    return name, rows


def _filled(row: Sequence[Cell]) -> bool:
    return any(not (v is None or (isinstance(v, str) and not v.strip())) for v in row)


def _read_header(form: FormSpec[R], sheet: str, rows: Sequence[Sequence[Cell]]) -> tuple[int, list[Column | None]]:
    """The header row (row 1 normally; a title row above it is tolerated) and the column at each position."""
    wanted = {_header_key(c.header): c for c in form.columns}
    best, best_hits = 0, 0
    for index, row in enumerate(rows[:_HEADER_SEARCH_ROWS]):
        hits = sum(1 for value in row if _header_key(value) in wanted)
        if hits > best_hits:
            best, best_hits = index, hits
    positions: list[Column | None] = []
    seen: set[str] = set()
    unexpected: list[str] = []
    duplicated: list[str] = []
    for value in rows[best]:
        key = _header_key(value)
        column = wanted.get(key)
        if column is None:
            if key:
                unexpected.append(_text(value) or key)
        elif column.key in seen:
            duplicated.append(column.header)
            column = None
        else:
            seen.add(column.key)
        positions.append(column)
    missing = [c.header for c in form.columns if c.key not in seen]
    if missing or unexpected or duplicated:
        parts = []
        if missing:
            parts.append(f"缺少列：{'、'.join(missing)}")
        if unexpected:
            parts.append(f"无法识别的列：{'、'.join(unexpected)}")
        if duplicated:
            parts.append(f"重复的列：{'、'.join(duplicated)}")
        raise FormError(
            "wrong_header",
            f"“{sheet}”第{best + 1}行的表头与{form.code}《{form.title}》不符（{'；'.join(parts)}），请使用下载的模板",
            missing=missing,
            unexpected=unexpected,
        )
    return best, positions


def parse_upload(
    form: FormSpec[R],
    data: bytes,
    *,
    max_rows: int = MAX_ROWS,
    max_bytes: int = MAX_UPLOAD_BYTES,
    today: date | None = None,
    read: Callable[[int], None] | None = None,
) -> ParsedForm[R]:
    """Read an uploaded form and check every row; return the valid rows and every error found.

    Raises FormError when the file as a whole is refused (not xlsx, encrypted, empty, wrong header, too many
    rows or bytes). Blank rows are skipped, text is trimmed, numbers typed into text columns are read back as
    text, and duplicates inside the file are errors on every row involved. ``read`` hears how many data rows
    have been read and checked so far (every thousand, and at the end).
    """
    today = today or clock.today()
    with _gc_paused():
        return _parse(form, data, max_rows=max_rows, max_bytes=max_bytes, today=today, read=read)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Bulk parsing allocates ~1M objects and creates no reference cycles: the cyclic collector's repeated
    scans of them would cost a fifth of the time. Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse(
    form: FormSpec[R],
    data: bytes,
    *,
    max_rows: int,
    max_bytes: int,
    today: date,
    read: Callable[[int], None] | None = None,
) -> ParsedForm[R]:
    sheet, rows = _open_sheet(data, form, max_bytes, max_rows)
    header_index, positions = _read_header(form, sheet, rows)
    data_rows = [(index + 1, row) for index, row in enumerate(rows) if index > header_index and _filled(row)]
    if not data_rows:
        raise FormError("empty", f"工作表“{sheet}”中只有表头，没有数据行")
    if len(data_rows) > max_rows:
        raise FormError("too_many_rows", f"数据行数为{len(data_rows)}行，超过上限{max_rows}行，请拆分为多个文件上传")
    columns = [(i, c.key) for i, c in enumerate(positions) if c is not None]
    errors: list[RowError] = []
    good: list[tuple[int, R]] = []
    keys: defaultdict[str, list[int]] = defaultdict(list)
    for seen, (number, row) in enumerate(data_rows, start=1):
        if read is not None and seen % READ_TICK == 0:
            read(seen)
        cells = {key: row[i] for i, key in columns}  # calamine rows are as wide as the sheet
        unique = form.unique_value(cells)
        if unique:
            keys[unique].append(number)
        try:
            good.append((number, form.read_row(cells, today)))
        except ValidationFailedError as failed:
            errors.extend(RowError(sheet, number, form.header_of(e.field), e.message) for e in failed.errors)
    if read is not None:
        read(len(data_rows))
    problems = _duplicates(form, keys)
    if form.check_rows is not None:
        problems.extend(form.check_rows(good))
    if problems:
        errors.extend(RowError(sheet, number, form.header_of(key), message) for number, key, message in problems)
        failed_rows = {number for number, _, _ in problems}
        good = [(number, row) for number, row in good if number not in failed_rows]
    order = {c.header: i for i, c in enumerate(form.columns)}
    errors.sort(key=lambda e: (e.row, order.get(e.column or "", -1)))
    return ParsedForm(
        form=form.kind,
        sheet=sheet,
        rows=[row for _, row in good],
        row_numbers=[number for number, _ in good],
        errors=errors,
        total_rows=len(data_rows),
        headers={c.key: c.header for c in form.columns},
    )


def _duplicates(form: FormSpec[R], rows_by_key: Mapping[str, list[int]]) -> list[tuple[int, str, str]]:
    problems: list[tuple[int, str, str]] = []
    for numbers in rows_by_key.values():
        if len(numbers) > 1:
            for number in numbers:
                others = "、".join(str(n) for n in numbers if n != number)
                problems.append((number, form.unique_key, form.duplicate_message.format(rows=others)))
    return problems
