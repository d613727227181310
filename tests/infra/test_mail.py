"""`make run`'s mail catcher keeps each e-mail as a file and says one line with its subject."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from infra.local.fleet import free_ports
from infra.local.mail import MailCatcher


async def test_an_email_sent_in_development_is_kept_and_announced(tmp_path: Path) -> None:
    said: list[tuple[str, str]] = []
    catcher = MailCatcher(free_ports(1)[0], tmp_path / "mail", lambda name, text: said.append((name, text)))
    catcher.start()
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "noreply@example.org", "unit@example.org", "截止提醒：月报"
        message.set_content("请于6月5日前报送5月月报。")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=catcher.port)
    finally:
        catcher.stop()
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    kept = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(kept, EmailMessage) and kept.get_content().strip() == "请于6月5日前报送5月月报。"
    assert said == [("mail", f"{files[0].name}: 截止提醒：月报")]
