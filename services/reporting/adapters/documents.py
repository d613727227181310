"""The :class:`..usecases.ports.Documents` port: workbooks (xlsxwriter), the certificate's PDF (reportlab), charts
(hand-written SVG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import pdf, svg, xlsx


class DocumentRenderer:
    def compliance_xlsx(self, table: Mapping[str, Any]) -> bytes:
        return xlsx.compliance_xlsx(table)

    def monthly_xlsx(self, report: Mapping[str, Any]) -> bytes:
        return xlsx.monthly_xlsx(report)

    def certificate_pdf(self, certificate: Mapping[str, Any]) -> bytes:
        return pdf.render_pdf(certificate)

    def headcount_svg(self, rows: Sequence[Mapping[str, Any]]) -> str:
        return svg.headcount(rows)

    def quota_heatmap_svg(self, rows: Sequence[Mapping[str, Any]], quarters: Sequence[int], year: int) -> str:
        return svg.quota_heatmap(rows, quarters, year)
