"""Service-record certificates (志愿服务记录证明): a signed number, a stored record, and the PDF.

The number is ``ZM<yyyymmdd>-<random>-<HMAC>``: the HMAC (keyed by ``STVS_CERTIFICATE_SECRET``) makes a typed or
altered number fail verification before any lookup; the stored record (``certificates``, _id = number) is what
verification shows, so a certificate states the figures as of the day it was issued.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from shared.calendar import to_shanghai, zh_date

FONT = "STSong-Light"
NUMBER = re.compile(r"^ZM(\d{8})-([0-9a-f]{10})-([0-9a-f]{16})$")

_font_registered = False


def _font() -> str:
    global _font_registered
    if not _font_registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _font_registered = True
    return FONT


def _mac(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()[:16]


def new_number(secret: str, issued_at: datetime) -> str:
    body = f"ZM{to_shanghai(issued_at).strftime('%Y%m%d')}-{secrets.token_hex(5)}"
    return f"{body}-{_mac(secret, body)}"


def number_is_authentic(secret: str, number: str) -> bool:
    found = NUMBER.match(number)
    if not found:
        return False
    body = number.rsplit("-", 1)[0]
    return hmac.compare_digest(_mac(secret, body), found.group(3))


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
