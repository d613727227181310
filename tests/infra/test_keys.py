"""`make keys`: fresh secrets every service accepts in production mode, written once and kept."""

from __future__ import annotations

import importlib
import stat
from pathlib import Path

import pytest

from infra.keys import SECRETS, main, read_env

SETTINGS = {
    "registry": "RegistrySettings",
    "activities": "ActivitiesSettings",
    "reporting": "ReportingSettings",
    "notifier": "NotifierSettings",
    "gateway": "GatewaySettings",
}


def test_every_service_accepts_the_keys_in_production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    assert main(["--env-file", str(env_file)]) == 0
    values = read_env(env_file)
    assert set(values) == set(SECRETS) and all(values.values())
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600, "secrets readable by their owner only"
    monkeypatch.setenv("STVS_PRODUCTION", "true")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for service, cls in SETTINGS.items():
        settings = getattr(importlib.import_module(f"services.{service}.settings"), cls)()
        settings.check_production()  # raises on a development or missing secret


def test_keys_already_written_are_kept_unless_forced(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# mine\nSTVS_ID_ENCRYPTION_KEY=keep-me\nOTHER=1\n")
    main(["--env-file", str(env_file)])
    kept = read_env(env_file)
    assert kept["STVS_ID_ENCRYPTION_KEY"] == "keep-me" and kept["OTHER"] == "1"
    assert len(kept) == len(SECRETS) + 1
    main(["--env-file", str(env_file), "--force"])
    assert read_env(env_file)["STVS_ID_ENCRYPTION_KEY"] != "keep-me"


def test_the_example_names_every_secret() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    assert all(f"{name}=" in example for name in SECRETS)
