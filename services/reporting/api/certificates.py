"""Service-record certificates (志愿服务记录证明): issuing one as a PDF, verifying one by its number."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from shared.access import access
from shared.identity import IdentityDep

from .deps import CertificatesDep
from .responses import PdfResponse
from .schemas import CertificateCheck

router = APIRouter(tags=["统计与报送"])


@router.get(
    "/certificates/volunteers/{volunteer_id}.pdf",
    openapi_extra=access(
        "unit_admin",
        "volunteer:self",
        units=["query:unit_id"],
        volunteers=["path:volunteer_id"],
        own_units=True,
        personal=True,
    ),
    summary="出具志愿服务记录证明（PDF）",
    response_class=PdfResponse,
)
async def issue_certificate(
    certificates: CertificatesDep, identity: IdentityDep, volunteer_id: str, unit_id: str | None = None
) -> Response:
    issued = await certificates.issue(identity, volunteer_id, unit_id)
    return PdfResponse(
        issued.pdf,
        headers={
            "Content-Disposition": f"attachment; filename=certificate-{issued.number}.pdf",
            "X-Certificate-Number": issued.number,
        },
    )


@router.get(
    "/certificates/{number}",
    openapi_extra=access("unit_admin"),
    summary="查验志愿服务记录证明（凭证明编号，无需登录）",
    response_model=CertificateCheck,
)
async def verify_certificate(certificates: CertificatesDep, number: str) -> Any:
    return await certificates.verify(number)
