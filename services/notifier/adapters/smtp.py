"""E-mail through the province's SMTP server (aiosmtplib): plain, STARTTLS, or implicit TLS (port 465)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import NamedTuple

import aiosmtplib

from services.notifier.domain.notices import SendError
from services.notifier.settings import NotifierSettings, SmtpTls


class TlsOptions(NamedTuple):
    use_tls: bool
    start_tls: bool


def tls_options(mode: SmtpTls) -> TlsOptions:
    """aiosmtplib's connection options for a TLS mode: implicit TLS from the first byte (SMTPS, usually port 465),
    an upgrade with STARTTLS (usually 587), or none."""
    return TlsOptions(use_tls=mode == "implicit", start_tls=mode == "starttls")


class SmtpMailer:
    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings

    async def send(self, to: str, subject: str, body: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.smtp_sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body, charset="utf-8")
        tls = tls_options(s.smtp_tls_mode)
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                timeout=s.smtp_timeout_s,
                use_tls=tls.use_tls,
                start_tls=tls.start_tls,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise SendError(f"收件人被拒绝：{exc}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SendError(f"邮件服务器拒绝（{exc.code}）：{exc.message}", permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendError(f"邮件服务器不可达：{type(exc).__name__} {exc}") from exc
