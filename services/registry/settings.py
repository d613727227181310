"""Registry settings: the shared ones plus the keys that protect ID-card numbers (prefix ``STVS_``)."""

from __future__ import annotations

import base64

from pydantic import Field, SecretStr, field_validator

from shared.settings import ServiceSettings, decode_key, require_secret

# Development defaults, refused in production (like the shared internal token).
DEV_ID_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"dev-only-registry-id-enc-key-32b").decode()
DEV_ID_HASH_KEY = "dev-only-registry-id-hash-key-change-me"


class RegistrySettings(ServiceSettings):
    """What the registry needs beyond the shared settings."""

    id_encryption_key: SecretStr = Field(
        SecretStr(DEV_ID_ENCRYPTION_KEY),
        description="AES-256-GCM key (32 bytes, URL-safe base64) encrypting ID-card numbers at rest",
    )
    id_hash_key: SecretStr = Field(
        SecretStr(DEV_ID_HASH_KEY),
        description="HMAC-SHA256 key of the keyed hash that finds an ID-card number without decrypting",
    )
    id_lookup_daily_limit: int = Field(
        50,
        ge=0,
        description="How many answers 'this ID number is registered in another unit' an account gets per day "
        "(registrations and 附件2 uploads, dry runs included); beyond it 429",
    )
    import_lease_s: float = Field(
        60.0,
        gt=0,
        description="A 附件2 import whose process has not renewed its lease for this long is taken as dead: its "
        "pending volunteers are deleted and nothing of it is published",
    )
    import_recovery_interval_s: float = Field(
        30.0, gt=0, description="How often each replica looks for imports to take back or finish"
    )
    unit_move_resume_interval_s: float = Field(
        30.0,
        gt=0,
        description="How often each replica finishes unit moves whose propagation (subtree ancestors, volunteers' "
        "scope) was left open, e.g. by a process that stopped mid-way",
    )
    import_jobs_per_replica: int = Field(
        1, ge=1, le=8, description="Upload jobs one replica runs at once; the others wait their turn (queued)"
    )
    import_job_lease_s: float = Field(
        60.0,
        gt=0,
        description="An upload job whose replica has not written its progress for this long is taken as dead: "
        "failed cleanly (nothing of it imported) by any replica's recovery, or succeeded if its import had committed",
    )
    import_job_publish_wait_s: float = Field(
        300.0, gt=0, description="How long a job follows its events to Kafka before it says succeeded anyway"
    )
    campaign_year: int = Field(2026, ge=2000, le=9999, description="Campaign year; also in platform numbers")

    @field_validator("id_encryption_key")
    @classmethod
    def _key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        decode_key(value.get_secret_value())
        return value

    @field_validator("id_hash_key")
    @classmethod
    def _hash_key_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    def check_production(self) -> None:
        super().check_production()
        if self.production:
            require_secret("STVS_ID_ENCRYPTION_KEY", self.id_encryption_key, DEV_ID_ENCRYPTION_KEY)
            require_secret("STVS_ID_HASH_KEY", self.id_hash_key, DEV_ID_HASH_KEY)
