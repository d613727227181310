"""Routes for people who are not signed in: a third party verifying a certificate (rate-limited per address)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam

from .deps import UseCasesDep, client_ip
from .schemas import CertificateCheck

PREFIX = "/api/v1"
router = APIRouter(prefix=f"{PREFIX}/public", tags=["公开查验"])


@router.get(
    "/certificates/{number}",
    summary="查验志愿服务记录证明（凭证明编号，无需登录；按 IP 限制频率）",
    response_model=CertificateCheck,
    responses={429: {"description": "查验过于频繁"}, 503: {"description": "统计报表服务暂时不可用"}},
)
async def verify_certificate(
    request: Request, number: Annotated[str, PathParam(min_length=1, max_length=64)], uc: UseCasesDep
) -> CertificateCheck:
    return CertificateCheck(**asdict(await uc.certificates.verify(number, client_ip(request))))
