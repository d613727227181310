"""`make admin`: the first province admin, asked for on the terminal (the password twice, never on the command line)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.gateway import create_admin
from services.gateway.adapters.mongo import AccountStore
from services.gateway.adapters.passwords import verify_password
from services.gateway.settings import GatewaySettings
from shared.storage import mongo_client


def answers(monkeypatch: pytest.MonkeyPatch, name: str, *passwords: str) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: name)
    typed = iter(passwords)
    monkeypatch.setattr(create_admin.getpass, "getpass", lambda prompt: next(typed))


def test_two_different_passwords_create_nothing(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    answers(monkeypatch, "office", "Admin-pass-2026", "Admin-pass-2062")
    assert create_admin.main([]) == 2
    assert "differ" in capsys.readouterr().err


async def test_the_admin_asked_for_can_sign_in(infra: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = "t" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("STVS_NAMESPACE", namespace)
    answers(monkeypatch, "office", "Admin-pass-2026", "Admin-pass-2026")
    # main() runs its own event loop: call it from a worker thread, outside the test's loop
    assert await asyncio.to_thread(create_admin.main, []) == 0
    settings = GatewaySettings()
    client = mongo_client(settings.mongo_url, app_name="test")
    try:
        account = await AccountStore(client[settings.database("gateway")]).by_username("office")
        assert account is not None and account["role"] == "province_admin"
        assert await verify_password(account.get("password_hash"), "Admin-pass-2026")
    finally:
        await client.close()
