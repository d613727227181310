"""The service-record certificate (志愿服务记录证明) as an A4 PDF page in Chinese (reportlab)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from shared.calendar import zh_date

FONT = "STSong-Light"

_font_registered = False


def _font() -> str:
    global _font_registered
    if not _font_registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _font_registered = True
    return FONT


def render_pdf(cert: Mapping[str, Any]) -> bytes:
    """An A4 page in Chinese (CID font STSong-Light, no font file needed)."""
    font = _font()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle("志愿服务记录证明")
    width, height = A4
    pdf.setFont(font, 22)
    pdf.drawCentredString(width / 2, height - 100, "志愿服务记录证明")
    pdf.setFont(font, 12)
    lines = [
        f"兹证明 {cert['display_name'] or '—'}",
        f"平台注册编号：{cert['platform_number'] or '—'}　身份证号码：{cert.get('id_number_masked') or '—'}",
        f"截至{zh_date(cert['issued_at'])}，在科技志愿服务信息平台记录的志愿服务情况如下：",
        "",
        f"累计服务时长：{cert['hours']:.2f} 小时",
        f"参加志愿服务活动：{cert['activities']} 次",
        f"星级：{'★' * int(cert['star_level']) or '暂无'}",
        "",
        f"出具单位：{cert['issuing_unit_name']}",
        f"出具日期：{zh_date(cert['issued_at'])}",
        f"证明编号：{cert['_id']}",
        "",
        "说明：本证明以平台注册编号和打码后的身份证号码标识志愿者身份；",
        "真伪可凭证明编号通过平台查验。",
    ]
    y = height - 160
    for line in lines:
        pdf.drawString(72, y, line)
        y -= 24
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
