"""Gateway settings: the shared ones plus sign-in, upstream services and limits (prefix ``STVS_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from shared.settings import Network, ServiceSettings, networks, require_secret

DEV_JWT_SECRET = "dev-only-gateway-jwt-secret-change-me"  # noqa: S105 - explicit development default


class GatewaySettings(ServiceSettings):
    """What the gateway needs beyond the shared settings."""

    http_port: int = Field(8000, ge=1, le=65535, description="Port of the gateway's public HTTP API")
    jwt_secret: SecretStr = Field(
        SecretStr(DEV_JWT_SECRET), description="HS256 key of the access tokens the gateway issues (≥ 32 characters)"
    )
    access_ttl_s: int = Field(900, ge=30, le=24 * 3600, description="Lifetime of an access token")
    refresh_ttl_s: int = Field(14 * 24 * 3600, ge=300, description="Lifetime of a refresh token (a session)")
    registry_url: str = Field(
        "http://127.0.0.1:8001",
        description="Base URL of the registry service; several replicas: their base URLs separated by commas "
        "(requests are spread over them, least busy first; one that refuses the connection is skipped)",
    )
    activities_url: str = Field(
        "http://127.0.0.1:8002", description="Base URL(s) of the activities service, comma-separated (see registry_url)"
    )
    reporting_url: str = Field(
        "http://127.0.0.1:8003", description="Base URL(s) of the reporting service, comma-separated (see registry_url)"
    )
    notifier_url: str = Field(
        "http://127.0.0.1:8004", description="Base URL(s) of the notifier service, comma-separated (see registry_url)"
    )
    upstream_prefix: str = Field(
        "", pattern=r"^(/[A-Za-z0-9_\-/]*[A-Za-z0-9_\-])?$", description="Path prefix of the services' own routes"
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Largest request body (other than uploads)")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest multipart upload")
    signin_rate_per_min: int = Field(10, ge=1, description="Sign-in attempts per minute per username and IP")
    signin_address_rate_per_min: int = Field(
        30, ge=1, description="Sign-in attempts per minute per client address, whatever the usernames"
    )
    signin_total_rate_per_min: int = Field(
        600, ge=1, description="Sign-in attempts per minute in total (all gateway replicas, all addresses)"
    )
    trusted_proxies: str = Field(
        "",
        description="Reverse proxies (CIDR, comma separated) whose X-Forwarded-For names the client; empty: none, "
        "the connection's peer is the client",
    )
    verify_rate_per_min: int = Field(
        30, ge=1, description="Anonymous certificate verifications per minute per client IP"
    )
    audit_retention_days: int = Field(
        400, ge=180, le=3650, description="How long audit records are kept (at least 180 days)"
    )
    audit_queue_size: int = Field(
        10_000, ge=100, description="Audit records waiting to be stored; beyond it a record is counted lost and logged"
    )
    upstream_connect_timeout_s: float = Field(2.0, gt=0, description="Connect timeout to a service")
    upstream_read_timeout_s: float = Field(60.0, gt=0, description="Read timeout (between chunks) from a service")
    upstream_retries: int = Field(
        2, ge=0, le=5, description="Retries of a GET/HEAD when no replica of the service accepted the connection"
    )

    @field_validator("registry_url", "activities_url", "reporting_url", "notifier_url")
    @classmethod
    def _http_urls(cls, value: str) -> str:
        urls = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        if not urls:
            raise ValueError("give at least one base URL")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} must start with http:// or https://")
        if len(set(urls)) != len(urls):
            raise ValueError("a base URL is listed twice")
        return ",".join(urls)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        networks(value)
        return value

    def proxy_networks(self) -> list[Network]:
        return networks(self.trusted_proxies)

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    def service_urls(self, service: str) -> list[str]:
        """The base URLs of the replicas of ``service``."""
        value: str = getattr(self, f"{service}_url")
        return value.split(",")

    def check_production(self) -> None:
        super().check_production()
        if self.production:
            require_secret("STVS_JWT_SECRET", self.jwt_secret, DEV_JWT_SECRET)
