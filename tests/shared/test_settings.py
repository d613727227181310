"""Settings come from STVS_* variables and refuse bad values with a message naming the setting."""

from __future__ import annotations

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
