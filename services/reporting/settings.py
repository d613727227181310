"""Settings of the reporting service (same ``STVS_`` environment prefix as every service)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, SecretStr

from shared.calendar import DEFAULT_MONTHLY_REPORT_DAY, SHANGHAI
from shared.settings import ServiceSettings, require_secret

from .domain.periods import DEFAULT_CAMPAIGN_START_MONTH

DEV_CERTIFICATE_SECRET = "dev-only-certificate-secret-change-me"  # noqa: S105 - development default, refused in production


class ReportingSettings(ServiceSettings):
    """What the reporting service needs beyond the common settings."""

    campaign_year: int = Field(
        default_factory=lambda: datetime.now(SHANGHAI).year, ge=2000, le=2100, description="Default campaign year"
    )
    monthly_report_day: int = Field(
        DEFAULT_MONTHLY_REPORT_DAY, ge=1, le=31, description="Day of the next month a monthly report is due"
    )
    campaign_start_month: int = Field(DEFAULT_CAMPAIGN_START_MONTH, ge=1, le=12, description="First campaign month")
    certificate_secret: SecretStr = Field(
        SecretStr(DEV_CERTIFICATE_SECRET),
        description="HMAC key of service-record certificate numbers; changing it invalidates issued numbers",
    )
    projections_consumer: str = Field(
        "projections", pattern=r"^[a-z0-9_.-]{1,64}$", description="Consumer name of the projections"
    )
    projections_batch_size: int = Field(
        5000, ge=1, le=20_000, description="Most events the projections consumer applies as one batch"
    )
    registry_url: str = Field(
        "http://127.0.0.1:8001",
        pattern=r"^https?://",
        description="Base URL of the registry (masked ID number on service-record certificates)",
    )
    registry_timeout_s: float = Field(5.0, gt=0, le=60, description="Timeout of a call to the registry")

    def check_production(self) -> None:
        super().check_production()
        if self.production:
            require_secret("STVS_CERTIFICATE_SECRET", self.certificate_secret, DEV_CERTIFICATE_SECRET)
