"""A third party verifies a service-record certificate by its number (no sign-in; rate-limited per address): it
learns whether it is valid and what it certifies, with the volunteer's name masked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.gateway.domain.certificates import mask_name

from .ports import Limiter
from .signin import throttle


class CertificateSource(Protocol):
    async def verify_certificate(self, number: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class CertificateView:
    valid: bool
    number: str
    platform_number: str | None = None
    name_masked: str | None = None
    hours: float | None = None
    issuing_unit_name: str | None = None
    issued_at: datetime | None = None


class Certificates:
    def __init__(self, source: CertificateSource, limiter: Limiter) -> None:
        self.source = source
        self.limiter = limiter

    async def verify(self, number: str, address: str) -> CertificateView:
        await throttle(self.limiter, address, "verify", "查验")
        found = await self.source.verify_certificate(number)
        if found is None or found.get("valid") is not True:
            return CertificateView(valid=False, number=number)
        return CertificateView(
            valid=True,
            number=number,
            platform_number=found.get("platform_number"),
            name_masked=mask_name(found.get("display_name")),
            hours=found.get("hours"),
            issuing_unit_name=found.get("issuing_unit_name"),
            issued_at=found.get("issued_at"),
        )
