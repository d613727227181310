"""Bounds an uploaded .xlsx before any reader sees it: the zip's members, their decompressed sizes and
compression ratios, and each worksheet's claimed <dimension>, row numbers, cell columns and cells per row.

The spreadsheet reader (python-calamine) allocates the sheet's whole rectangle: a 5 KB file that claims a cell at
XFD1048576 asks for hundreds of GB and aborts the process (no exception to catch), a 60,000 × 1,000 range takes
gigabytes, and a million-row file was refused only after it was read. Here the worksheets are decompressed as a
stream (1 MB at a time, never more than the bound, whatever the zip's headers claim) and scanned with byte
searches, so a hostile file is refused after reading at most its first rows past the bound. Pure: bytes in,
:class:`XlsxRefused` (Chinese message, stable kind) out; no I/O.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

MAX_MEMBERS: Final = 500
MAX_RATIO: Final = 200  # decompressed / compressed of one member; generated XML of repeated rows stays far below
RATIO_FLOOR: Final = 1024 * 1024  # members smaller than this decompressed are not judged by their ratio
MAX_ROW_BYTES: Final = 4 * 1024 * 1024  # one <row> of XML
CHUNK: Final = 1024 * 1024

RefusalKind = Literal["too_large", "too_many_rows", "too_many_columns", "not_xlsx"]

_DIMENSION = re.compile(rb'<dimension\s+ref="([A-Za-z]*)(\d*)(?::([A-Za-z]*)(\d*))?"')
# searched with a literal prefix, so the engine skips ahead at C speed; only what may exceed a bound matches:
# a row number of 6 digits or more, a column of two letters or more (AA…), both as ` r="…"` (a row's digits only,
# a cell's letters and digits; `sqref`, `ref` do not match)
_LONG_ROW_NUMBER = re.compile(rb' r="(\d{6,})"')
_WIDE_COLUMN = re.compile(rb' r="([A-Za-z]{2,})\d')
_ROW_END = b"</row>"


class XlsxRefused(Exception):
    def __init__(self, kind: RefusalKind, message: str) -> None:
        super().__init__(message)
        self.kind: RefusalKind = kind
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_rows: int  # the highest row number a sheet may use (data rows + header + a few blank ones)
    max_columns: int
    max_xml_bytes: int  # all members together, decompressed


def column_number(letters: bytes) -> int:
    """``A`` → 1, ``Z`` → 26, ``AA`` → 27, ``XFD`` → 16384."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ch - 64)
    return n


def check_xlsx(data: bytes, limits: Limits) -> None:
    """Refuse (XlsxRefused) a workbook whose reading would exceed the limits; return when it is safe to read."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise XlsxRefused("not_xlsx", "文件不是有效的 Excel（.xlsx）文件，请使用下载的模板填写") from None
    if len(members) > MAX_MEMBERS:
        raise XlsxRefused("not_xlsx", "文件结构异常（包含的部件过多），不是有效的 Excel（.xlsx）文件")
    budget = [limits.max_xml_bytes]
    for member in members:
        big = member.compress_size and member.file_size > RATIO_FLOOR
        if big and member.file_size / member.compress_size > MAX_RATIO:
            raise XlsxRefused("too_large", "文件解压后异常庞大（压缩比过高），已拒绝；请使用下载的模板填写")
        if member.file_size > budget[0]:
            raise XlsxRefused("too_large", _too_large(limits))
        name = member.filename.lower()
        try:
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                _scan_sheet(_stream(archive, member, budget, limits), limits)
            else:
                for _ in _stream(archive, member, budget, limits):
                    pass
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError):
            raise XlsxRefused("not_xlsx", "文件已损坏或不是有效的 Excel（.xlsx）文件") from None


def _too_large(limits: Limits) -> str:
    return f"文件解压后超过{limits.max_xml_bytes // (1024 * 1024)}MB，请拆分后分批上传"


def _stream(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: list[int], limits: Limits) -> Iterator[bytes]:
    """The member's bytes, 1 MB at a time, charged against the shared budget (the headers may lie)."""
    with archive.open(member) as handle:
        while chunk := handle.read(CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise XlsxRefused("too_large", _too_large(limits))
            yield chunk


def _scan_sheet(chunks: Iterator[bytes], limits: Limits) -> None:
    """Row numbers, cell columns and cells per row of one worksheet, complete rows at a time."""
    carry = b""
    rows = 0
    first = True
    for chunk in chunks:
        buffer = carry + chunk
        if first:
            _check_dimension(buffer, limits)
            first = False
        end = buffer.rfind(_ROW_END)
        if end < 0:
            if len(buffer) > MAX_ROW_BYTES:
                raise XlsxRefused("too_many_columns", "工作表中有一行内容过多，请使用下载的模板填写")
            carry = buffer
            continue
        end += len(_ROW_END)
        rows += _check_rows(buffer[:end], limits, rows)
        carry = buffer[end:]
    if carry:
        _check_rows(carry, limits, rows)


def _check_dimension(head: bytes, limits: Limits) -> None:
    found = _DIMENSION.search(head)
    if found is None:
        return
    _, first_row, last_col, last_row = found.groups()
    cols = column_number(last_col or found.group(1) or b"A")
    _check_row_number(int(last_row or first_row or b"1"), limits)
    _check_column(cols, limits)


def _check_rows(xml: bytes, limits: Limits, before: int) -> int:
    """Checks the complete rows in ``xml``; returns how many there were."""
    count = xml.count(b"<row")  # (`<rowBreaks` too: stricter by one, never looser)
    _check_row_number(before + count, limits)  # rows without numbers follow each other
    for number in _LONG_ROW_NUMBER.findall(xml):
        _check_row_number(int(number), limits)
    for letters in _WIDE_COLUMN.findall(xml):
        _check_column(column_number(letters), limits)
    unreferenced = xml.count(b"<c") - xml.count(b'<c r="') - xml.count(b"<col")  # `<cols>`, `<col>` are no cells
    if unreferenced > 0:  # cells without a column reference follow each other: count them per row
        for row in xml.split(_ROW_END):
            _check_column(row.count(b"<c ") + row.count(b"<c>") + row.count(b"<c/>"), limits)
    return count


def _check_row_number(row: int, limits: Limits) -> None:
    if row > limits.max_rows:
        raise XlsxRefused(
            "too_many_rows", f"工作表使用到第{row}行，超过上限{limits.max_rows}行，请删除多余的行或拆分为多个文件上传"
        )


def _check_column(column: int, limits: Limits) -> None:
    if column > limits.max_columns:
        raise XlsxRefused(
            "too_many_columns",
            f"工作表使用到第{column}列，超过上限{limits.max_columns}列，请删除多余的列或使用下载的模板填写",
        )
