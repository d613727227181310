"""Hostile .xlsx uploads through the registry app: each crafted here as a tiny zip of hand-written XML. A sheet that
claims a cell at XFD1048576, a 60,000 × 1,000 range, a million rows, a decompression bomb, a row of thousands of
unnumbered cells: each is refused with a Chinese problem document before the spreadsheet reader allocates its
rectangle, and the registry keeps serving (the reader runs in this test's process: an abort would end the run)."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from services.registry.adapters.spreadsheets.forms import VOLUNTEERS
from services.registry.adapters.spreadsheets.xlsx_guard import Limits, XlsxRefused, check_xlsx, column_number
from shared.settings import ServiceSettings
from tests.registry.api.test_forms_api import upload, volunteer_row, workbook
from tests.registry.helpers import headers

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/'
    'main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
    '<sheet name="志愿者" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)
HEADER_ROW = '<row r="1"><c r="A1" t="inlineStr"><is><t>姓名</t></is></c></row>'


def sheet_xml(rows: str, dimension: str = "A1") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        f'2006/main"><dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>'
    ).encode()


def xlsx(sheet: bytes, *, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def far_cell() -> bytes:
    """5 KB: a header and one cell at XFD1048576 (the reader would allocate 1,048,576 × 16,384 cells)."""
    far = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    return xlsx(sheet_xml(HEADER_ROW + far))


def wide_range() -> bytes:
    """A 60,000 × 1,000 range from two cells (A1 and ALL60000)."""
    corner = '<row r="60000"><c r="ALL60000" t="inlineStr"><is><t>x</t></is></c></row>'
    return xlsx(sheet_xml(HEADER_ROW + corner))


def claimed_dimension() -> bytes:
    """Only the <dimension> claims the whole sheet; the cells are few."""
    return xlsx(sheet_xml(HEADER_ROW, dimension="A1:XFD1048576"))


def million_rows() -> bytes:
    """A million numbered rows of one cell each (a few MB compressed)."""
    rows = "".join(f'<row r="{n}"><c r="A{n}"><v>{n}</v></c></row>' for n in range(2, 1_000_001))
    return xlsx(sheet_xml(HEADER_ROW + rows))


def unnumbered_wide_row() -> bytes:
    """Rows and cells without references: 5,000 cells in one row follow each other."""
    return xlsx(sheet_xml("<row>" + "<c><v>1</v></c>" * 5_000 + "</row>"))


def bomb() -> bytes:
    """A shared-strings part of 64 MB of spaces in a few KB: a compression ratio of about 1,000."""
    return xlsx(sheet_xml(HEADER_ROW), extra={"xl/sharedStrings.xml": b" " * (64 * 1024 * 1024)})


HOSTILE = {
    "far_cell": (far_cell, 413, "form_too_many_rows"),
    "wide_range": (wide_range, 422, "form_too_many_columns"),
    "claimed_dimension": (claimed_dimension, 413, "form_too_many_rows"),
    "million_rows": (million_rows, 413, "form_too_many_rows"),
    "unnumbered_wide_row": (unnumbered_wide_row, 422, "form_too_many_columns"),
    "bomb": (bomb, 413, "form_too_large"),
}


@pytest.fixture(scope="module")
def province(settings: ServiceSettings) -> dict[str, str]:
    return headers(settings, "province_admin", subject="province")


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_file_is_refused_with_a_chinese_problem_and_the_service_lives_on(
    client: httpx.AsyncClient, province: dict[str, str], name: str
) -> None:
    build, status, code = HOSTILE[name]
    data = build()
    assert len(data) < 20 * 1024 * 1024
    for dry_run in (True, False):
        r = await upload(client, "volunteers", data, province, dry_run=dry_run)
        assert r.status_code == status, r.text
        body = r.json()
        assert body["code"] == code
        assert r.headers["content-type"].startswith("application/problem+json")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"])  # said in Chinese
    # still serving, and a sane file is still read
    sane = await upload(client, "volunteers", workbook(VOLUNTEERS, [volunteer_row(1)]), province, dry_run=True)
    assert sane.status_code == 200 and sane.json()["total_rows"] == 1


def test_the_decompressed_bound_counts_what_every_part_decompresses_to() -> None:
    """Parts of an ordinary compression ratio together over the bound: refused before the reader runs."""
    parts = {f"xl/media/part{i}.xml": bytes(range(256)) * 4096 * 4 for i in range(3)}  # 4 MB each, ratio ~100
    limits = Limits(max_rows=100, max_columns=64, max_xml_bytes=8 * 1024 * 1024)
    with pytest.raises(XlsxRefused) as refused:
        check_xlsx(xlsx(sheet_xml(HEADER_ROW), extra=parts), limits)
    assert refused.value.kind == "too_large"
    check_xlsx(xlsx(sheet_xml(HEADER_ROW)), limits)  # the same workbook without them passes


def test_column_letters() -> None:
    assert [column_number(x) for x in (b"A", b"Z", b"AA", b"ALL", b"XFD")] == [1, 26, 27, 1000, 16384]
