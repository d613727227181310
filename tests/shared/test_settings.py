"""Settings come from STVS_* variables and refuse bad values with a message naming the setting."""

from __future__ import annotations

import base64
import importlib

import pytest
from pydantic import ValidationError

from shared.settings import ServiceSettings


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STVS_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("STVS_NAMESPACE", "staging")
    s = ServiceSettings()
    assert s.kafka_bootstrap == "k1:9092,k2:9092"
    assert s.topic("stvs.registry.units") == "staging.stvs.registry.units"
    assert s.database("registry") == "staging_stvs_registry"


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("STVS_KAFKA_BOOTSTRAP", "no-port-here", "kafka_bootstrap"),
        ("STVS_MONGO_URL", "postgres://x", "mongo_url"),
        ("STVS_HTTP_PORT", "70000", "http_port"),
        ("STVS_NAMESPACE", "Has Spaces", "namespace"),
        ("STVS_CONSUMER_MAX_ATTEMPTS", "0", "consumer_max_attempts"),
        ("STVS_LOG_LEVEL", "LOUD", "log_level"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as err:
        ServiceSettings()
    assert field in str(err.value)


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STVS_PRODUCTION", "true")
    with pytest.raises(ValueError, match="STVS_INTERNAL_TOKEN"):
        ServiceSettings().check_production()
    monkeypatch.setenv("STVS_INTERNAL_TOKEN", "Zq7-uR2x_Lm9VbT4kW8nJ3cY5pH1sG6d")  # as `make keys` would write
    ServiceSettings().check_production()


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("a-real-secret-from-the-vault", "too short"),
        ("passwordpasswordpasswordpassword", "guessable"),
        ("abcdefghijabcdefghijabcdefghijabcdefghij", "guessable"),
    ],
)
def test_production_refuses_short_and_guessable_secrets(monkeypatch: pytest.MonkeyPatch, token: str, why: str) -> None:
    monkeypatch.setenv("STVS_PRODUCTION", "true")
    monkeypatch.setenv("STVS_INTERNAL_TOKEN", token)
    with pytest.raises(ValueError, match=f"STVS_INTERNAL_TOKEN is {why}"):
        ServiceSettings().check_production()


STRONG = "Zq7-uR2x_Lm9VbT4kW8nJ3cY5pH1sG6d"
STRONG_KEY = "q5Yt0pS3-8vX1rW6zB9nD2fH4jK7mL0aC5eG8iU3oQ4"  # 32 random-looking bytes, URL-safe base64
WEAK_KEY = base64.urlsafe_b64encode(b"a" * 32).decode()  # 32 bytes, but hardly any distinct characters


def _every_service_settings() -> list[tuple[str, str, str]]:
    """(settings module, field, environment name) of every secret a service reads."""
    return [
        ("shared.settings:ServiceSettings", "internal_token", "STVS_INTERNAL_TOKEN"),
        ("services.gateway.settings:GatewaySettings", "jwt_secret", "STVS_JWT_SECRET"),
        ("services.activities.settings:ActivitiesSettings", "checkin_secret", "STVS_CHECKIN_SECRET"),
        ("services.reporting.settings:ReportingSettings", "certificate_secret", "STVS_CERTIFICATE_SECRET"),
        ("services.registry.settings:RegistrySettings", "id_hash_key", "STVS_ID_HASH_KEY"),
        ("services.registry.settings:RegistrySettings", "id_encryption_key", "STVS_ID_ENCRYPTION_KEY"),
        ("services.notifier.settings:NotifierSettings", "webhook_secret_key", "STVS_WEBHOOK_SECRET_KEY"),
    ]


@pytest.mark.parametrize(("where", "field", "env"), _every_service_settings())
def test_production_refuses_a_guessable_value_of_every_secret(
    monkeypatch: pytest.MonkeyPatch, where: str, field: str, env: str
) -> None:
    """Not only the exact development values: every secret (the identity-signing internal token, the webhook
    key…) is refused in production when short or made of few characters."""
    module, _, name = where.partition(":")
    cls = getattr(importlib.import_module(module), name)
    monkeypatch.setenv("STVS_PRODUCTION", "true")
    for other in cls.model_fields:
        if other.endswith(("_secret", "_token", "_hash_key")):
            monkeypatch.setenv(f"STVS_{other.upper()}", STRONG)
        elif other.endswith(("_encryption_key", "_secret_key")):
            monkeypatch.setenv(f"STVS_{other.upper()}", STRONG_KEY)
    cls().check_production()  # strong values everywhere pass
    weak = WEAK_KEY if field.endswith(("_encryption_key", "_secret_key")) else "passwordpasswordpasswordpassword"
    monkeypatch.setenv(env, weak)
    with pytest.raises(ValueError, match=f"{env} is guessable"):
        cls().check_production()
