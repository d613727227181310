"""The SMTP connection's TLS mode as a setting: implicit TLS (SMTPS, port 465), STARTTLS, or none."""

from __future__ import annotations

from typing import Any

import aiosmtplib
import pytest

from services.notifier.adapters.smtp import SmtpMailer, TlsOptions, tls_options
from services.notifier.settings import NotifierSettings


def test_tls_modes() -> None:
    assert tls_options("implicit") == TlsOptions(use_tls=True, start_tls=False)
    assert tls_options("starttls") == TlsOptions(use_tls=False, start_tls=True)
    assert tls_options("none") == TlsOptions(use_tls=False, start_tls=False)


def test_the_mode_comes_from_stvs_smtp_tls_or_the_older_starttls_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NotifierSettings().smtp_tls_mode == "none"
    assert NotifierSettings(smtp_starttls=True).smtp_tls_mode == "starttls"
    monkeypatch.setenv("STVS_SMTP_TLS", "implicit")
    monkeypatch.setenv("STVS_SMTP_STARTTLS", "true")
    assert NotifierSettings().smtp_tls_mode == "implicit", "the explicit mode wins"
    monkeypatch.setenv("STVS_SMTP_TLS", "ssl")
    with pytest.raises(ValueError, match="smtp_tls"):
        NotifierSettings()


async def test_implicit_tls_connects_with_tls_from_the_first_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    async def send(message: Any, **options: Any) -> None:
        calls.append(options)

    monkeypatch.setattr(aiosmtplib, "send", send)
    await SmtpMailer(NotifierSettings(smtp_tls="implicit", smtp_port=465)).send("a@example.org", "主题", "正文")
    assert calls[0]["port"] == 465 and calls[0]["use_tls"] is True and calls[0]["start_tls"] is False
