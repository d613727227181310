"""Settings every service reads from the environment (prefix ``STVS_``).

Service-specific settings subclass :class:`ServiceSettings` in ``services/<name>/settings.py``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from datetime import datetime

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.clock import Clock, anchored

DEV_SECRET = "dev-only-insecure-secret-change-me-now"  # noqa: S105 - explicit development default, refused in production


MIN_SECRET_CHARS = 32
MIN_DISTINCT_CHARS = 16


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(text: str) -> list[Network]:
    """A comma-separated list of addresses or CIDRs (a ValueError names a bad one)."""
    return [ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip()]


def require_secret(name: str, secret: SecretStr, development_value: str) -> None:
    """Refuse, in production, a secret that is the development default, short, or made of few characters (a word
    repeated, a keyboard run): ``make keys`` writes ones that pass."""
    value = secret.get_secret_value()
    if value == development_value:
        raise ValueError(f"{name} must be set in production mode (`make keys` writes fresh secrets)")
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"{name} is too short for production: {len(value)} characters, at least {MIN_SECRET_CHARS}")
    if len(set(value)) < MIN_DISTINCT_CHARS:
        raise ValueError(f"{name} is guessable: only {len(set(value))} distinct characters (`make keys` writes one)")


def decode_key(value: str) -> bytes:
    """A 32-byte key from its URL-safe base64 text (padding optional)."""
    text = value.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be URL-safe base64") from exc
    if len(raw) != 32:
        raise ValueError(f"must decode to 32 bytes, got {len(raw)}")
    return raw


class ServiceSettings(BaseSettings):
    """What every service process needs: infrastructure, identity, HTTP, telemetry, delivery tuning."""

    model_config = SettingsConfigDict(env_prefix="STVS_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated")
    mongo_url: str = Field(
        "mongodb://127.0.0.1:27017/",
        description="MongoDB connection URL (a replica set: transactions and change streams)",
    )
    namespace: str = Field(
        "",
        pattern=r"^[a-z0-9_]{0,32}$",
        description="Prefix of topic and database names; lets several environments (or test runs) share a cluster",
    )
    production: bool = Field(False, description="Production mode: refuses development secrets and private webhook URLs")
    http_host: str = Field("127.0.0.1", description="Interface the service's HTTP API listens on")
    http_port: int = Field(8000, ge=1, le=65535, description="Port of the service's HTTP API")
    http_reuse_port: bool = Field(
        False, description="Let several replicas listen on the same port (SO_REUSEPORT): the kernel spreads connections"
    )
    ops_allow: str = Field(
        "127.0.0.0/8,::1/128",
        description="Addresses (CIDR, comma separated) that may read /readyz and /metrics; anything through a proxy "
        "(X-Forwarded-For) is refused",
    )
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="Log level")
    internal_token: SecretStr = Field(
        SecretStr(DEV_SECRET),
        description="Shared secret the gateway presents to internal services (signs the forwarded identity)",
    )
    consumer_max_attempts: int = Field(
        4, ge=1, le=20, description="Attempts of a failing event handler before the event goes to the DLQ"
    )
    consumer_backoff_ms: int = Field(200, ge=0, le=60_000, description="First retry delay; doubles each attempt")
    consumer_batch_size: int = Field(200, ge=1, le=5_000, description="Most events one consumer poll hands over")
    dlq_retention_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="How long dead letters are kept; processed event ids are remembered a week longer",
    )
    outbox_sweep_interval_s: float = Field(
        60.0, gt=0, description="How often the outbox sweeper looks for events a crash left unpublished"
    )
    outbox_sweep_grace_s: float = Field(
        10.0, ge=0, description="Age an unpublished event must reach before the sweeper takes it"
    )
    topic_partitions: int = Field(
        6, ge=1, le=1_000, description="Partitions of each event topic that is created (its DLQ has one)"
    )
    topic_replication: int = Field(
        1, ge=1, le=7, description="Replication factor of the topics created (3 on a production cluster)"
    )

    clock_start: datetime | None = Field(
        None,
        description="Tests and demos only (refused in production): the programme's time when the process starts "
        "(or at clock_anchor), e.g. 2026-05-02T10:00:00+08:00; unset, the programme runs on the wall clock",
    )
    clock_anchor: datetime | None = Field(
        None, description="The real instant at which the set clock reads clock_start (so every process agrees)"
    )
    clock_rate: float = Field(1.0, gt=0, le=1_000_000, description="How fast a set clock runs (1 = real speed)")

    @field_validator("clock_start", "clock_anchor", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("clock_start", "clock_anchor")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-05-02T10:00:00+08:00")
        return value

    def clock(self) -> Clock:
        """The programme's clock these settings ask for (the wall clock unless set)."""
        return anchored(self.clock_start, self.clock_anchor, self.clock_rate)

    @field_validator("ops_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        networks(value)
        return value

    def operator_networks(self) -> list[Network]:
        return networks(self.ops_allow)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port…], got {server!r}")
        return value

    @field_validator("mongo_url")
    @classmethod
    def _mongo_scheme(cls, value: str) -> str:
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    def check_production(self) -> None:
        """Refuse to run in production with a development secret."""
        if self.production:
            require_secret("STVS_INTERNAL_TOKEN", self.internal_token, DEV_SECRET)
        if self.production and (self.clock_start is not None or self.clock_rate != 1.0):
            raise ValueError("STVS_CLOCK_START and STVS_CLOCK_RATE are for tests and demos, refused in production mode")

    def topic(self, stream: str) -> str:
        """Kafka topic name of an event stream in this namespace."""
        return f"{self.namespace}.{stream}" if self.namespace else stream

    def database(self, service: str) -> str:
        """MongoDB database name of a service in this namespace."""
        return f"{self.namespace}_stvs_{service}" if self.namespace else f"stvs_{service}"
