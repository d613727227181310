"""web/openapi.json, from which the console's typed client is generated, is the gateway's merged document now."""

from __future__ import annotations

import subprocess
import sys

from infra.local.runner import REPO_ROOT


def test_the_consoles_openapi_document_is_current() -> None:
    run = subprocess.run(
        [sys.executable, str(REPO_ROOT / "web" / "scripts" / "dump_openapi.py"), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
