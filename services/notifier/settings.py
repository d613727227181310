"""Settings of the notifier service (same ``STVS_`` environment prefix as every service)."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from shared.calendar import DEFAULT_MONTHLY_REPORT_DAY
from shared.settings import Network, ServiceSettings, decode_key, networks, require_secret

from .domain.deadlines import DEFAULT_REMINDER_HOUR, CampaignCalendar

SmtpTls = Literal["implicit", "starttls", "none"]

# Development default, refused in production (like the shared internal token).
DEV_WEBHOOK_SECRET_KEY = base64.urlsafe_b64encode(b"dev-only-notifier-webhook-key-32").decode()


class NotifierSettings(ServiceSettings):
    """What the notifier needs beyond the common settings: the campaign calendar, SMTP, webhook delivery."""

    campaign_year: int = Field(2026, ge=2000, le=2100, description="Campaign year whose calendar is enforced")
    monthly_report_day: int = Field(
        DEFAULT_MONTHLY_REPORT_DAY, ge=1, le=31, description="Day of the following month the monthly report is due"
    )
    reminder_offsets_days: str = Field("7,3,1", description="Days before a deadline to remind, comma separated")
    reminder_hour: int = Field(DEFAULT_REMINDER_HOUR, ge=0, le=23, description="Hour (Shanghai) reminders go out")

    smtp_host: str = Field("127.0.0.1", description="SMTP server")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_sender: str = Field("noreply@stvs.hebei.example", description="From address of the notifier's mail")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS (see smtp_tls)")
    smtp_tls: SmtpTls | None = Field(
        None,
        description="TLS to the SMTP server: implicit (SMTPS, usually port 465), starttls (usually 587) or none; "
        "unset: starttls when STVS_SMTP_STARTTLS is true, else none",
    )
    smtp_timeout_s: float = Field(10.0, gt=0)
    public_url: str = Field(
        "https://www.stvs.org.cn",
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="The platform's public address, named in the notifier's e-mails",
    )
    province_office_email: str = Field(
        "office@stvs.hebei.example",
        description="Province office (省科技志愿者总队工作办公室): told who missed a deadline",
    )

    missed_digest_settle_s: float = Field(
        60.0, ge=0, description="The province office's missed-deadline digest goes out once no unit was added this long"
    )
    resubmit_reminder_days: float = Field(
        3.0, gt=0, description="A returned report not yet submitted again is re-announced to the unit this often (days)"
    )
    scheduler_enabled: bool = Field(True, description="Run the deadline scheduler loop in this process")
    scheduler_interval_s: float = Field(60.0, gt=0, description="How often the deadline scheduler evaluates")
    delivery_enabled: bool = Field(True, description="Run the delivery worker (e-mail, webhooks) in this process")
    delivery_poll_interval_s: float = Field(1.0, gt=0, description="How often the retry queue is worked")
    delivery_concurrency: int = Field(20, ge=1, le=500, description="Sends in flight at once")
    delivery_backoff_base_s: float = Field(2.0, gt=0, description="First retry delay ceiling (full jitter)")
    delivery_backoff_cap_s: float = Field(600.0, gt=0, description="Largest retry delay")
    email_max_attempts: int = Field(12, ge=1, le=100, description="Attempts of one e-mail before it is given up")
    webhook_timeout_s: float = Field(10.0, gt=0, description="Timeout of one webhook request")
    webhook_pause_after_s: float = Field(
        86_400.0, gt=0, description="A subscriber failing for this long is paused and its contact told"
    )
    webhook_allowed_networks: str = Field(
        "",
        description="Production: private networks (CIDR, comma separated) webhooks may still be delivered to, e.g. "
        "a subscriber on the province's intranet; every other loopback, private or reserved address is refused",
    )
    subscription_cache_s: float = Field(
        0.0,
        ge=0,
        description="How long a replica may keep the subscription list (0: read, indexed, for every event, so a "
        "subscription created or removed through any replica counts at once everywhere)",
    )
    webhook_secret_key: SecretStr = Field(
        SecretStr(DEV_WEBHOOK_SECRET_KEY),
        description="AES-256-GCM key (32 bytes, URL-safe base64) encrypting webhook subscribers' secrets at rest",
    )

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        networks(value)
        return value

    @property
    def smtp_tls_mode(self) -> SmtpTls:
        if self.smtp_tls is not None:
            return self.smtp_tls
        return "starttls" if self.smtp_starttls else "none"

    def allowed_networks(self) -> list[Network]:
        return networks(self.webhook_allowed_networks)

    @field_validator("webhook_secret_key")
    @classmethod
    def _key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        decode_key(value.get_secret_value())
        return value

    def check_production(self) -> None:
        super().check_production()
        if self.production:
            require_secret("STVS_WEBHOOK_SECRET_KEY", self.webhook_secret_key, DEV_WEBHOOK_SECRET_KEY)

    @field_validator("reminder_offsets_days")
    @classmethod
    def _offsets(cls, value: str) -> str:
        try:
            offsets = [int(part) for part in value.split(",") if part.strip()]
        except ValueError as exc:
            raise ValueError("expected whole days separated by commas, e.g. 7,3,1") from exc
        if not offsets or any(o < 1 for o in offsets):
            raise ValueError("expected one or more whole days ≥ 1, e.g. 7,3,1")
        return value

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.reminder_offsets_days.split(",") if part.strip())

    def calendar(self, year: int | None = None) -> CampaignCalendar:
        return CampaignCalendar(
            year=self.campaign_year if year is None else year,
            monthly_report_day=self.monthly_report_day,
            offsets_days=self.offsets,
            reminder_hour=self.reminder_hour,
        )
