"""Browser tests of the web console: the platform's five processes (a :class:`Fleet` on the session's Kafka and
MongoDB) with the gateway serving ``web/dist``, driven by Debian's Chromium through Playwright.

Playwright cannot download its own browsers here, so the system's Chromium is used; when it (or the console's
build) is missing the tests fail with the command that installs it — they never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infra.local.fleet import Fleet
from infra.local.runner import REPO_ROOT, Endpoints

CHROMIUM = Path(os.environ.get("STVS_CHROMIUM", "/usr/bin/chromium"))
DIST = REPO_ROOT / "web" / "dist"
SCREENSHOTS = REPO_ROOT / ".stvs" / "screenshots"
AXE = REPO_ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
ADMIN = ("province", "province-pass-1")
INSTALL_CHROMIUM = "apt-get update && apt-get install -y chromium fonts-noto-cjk"


def _executable() -> str:
    return str(CHROMIUM) if CHROMIUM.exists() else str(shutil.which("chromium"))


def _require_tools() -> None:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the console's browser tests need it. Install it with "
            f"`{INSTALL_CHROMIUM}` (or set STVS_CHROMIUM to its path)",
            pytrace=False,
        )
    if not (DIST / "index.html").is_file() or not AXE.is_file():
        pytest.fail(
            "the web console is not built (web/dist/index.html or web/node_modules missing): run `make install` "
            "(or `cd web && npm ci && npm run build`)",
            pytrace=False,
        )


@pytest.fixture(scope="module")
async def console_fleet(infra: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    _require_tools()
    logs = tmp_path_factory.mktemp("console-logs")
    async with Fleet(infra, logs=logs) as fleet:
        await fleet.create_admin(*ADMIN)
        try:
            yield fleet
        except BaseException:
            print(fleet.tail())
            raise


@pytest.fixture(scope="module")
async def browser(console_fleet: Fleet) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    executable = _executable()
    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            await launched.close()
