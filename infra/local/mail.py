"""`make run`'s mail catcher: an SMTP server on loopback that keeps every e-mail as an ``.eml`` file.

In development the notifier's reminders and digests land here instead of being retried for ever against a port 25
where nothing listens; the console shows one line per message (its file and subject, not its recipients).
"""

from __future__ import annotations

import email
import email.header
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self, folder: Path, say: Callable[[str, str], None]) -> None:
        self.folder = folder
        self.say = say
        self._n = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        path = self.folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._n):04d}.eml"
        path.write_bytes(data)
        subject = email.message_from_bytes(data).get("Subject", "")
        text = str(email.header.make_header(email.header.decode_header(subject)))
        self.say("mail", f"{path.name}: {text}")
        return "250 Message accepted"


class MailCatcher:
    def __init__(self, port: int, folder: Path, say: Callable[[str, str], None]) -> None:
        self.port = port
        self.folder = folder
        self._controller = Controller(_Keep(folder, say), hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
