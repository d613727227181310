"""Settings of the activities service (same ``STVS_`` environment prefix as every service)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import ServiceSettings, require_secret

DEV_CHECKIN_SECRET = "dev-only-checkin-secret-change-me"  # noqa: S105 - development default, refused in production


class ActivitiesSettings(ServiceSettings):
    """What the activities service needs beyond the common settings."""

    checkin_secret: SecretStr = Field(
        SecretStr(DEV_CHECKIN_SECRET),
        description="Key of the activities' check-in codes (QR content); changing it invalidates printed codes",
    )

    def check_production(self) -> None:
        super().check_production()
        if self.production:
            require_secret("STVS_CHECKIN_SECRET", self.checkin_secret, DEV_CHECKIN_SECRET)
