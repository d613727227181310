"""`make install` on a stock Debian Python: uv arrives although the Python is externally managed (PEP 668)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "bootstrap" / "uv.sh"
DEBIAN_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


def _externally_managed() -> str | None:
    """The system's Python that carries the PEP 668 marker (Debian and Ubuntu ship one), if any."""
    for python in DEBIAN_PYTHONS:
        if not os.access(python, os.X_OK):
            continue
        stdlib = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if (Path(stdlib) / "EXTERNALLY-MANAGED").exists():
            return python
    return None


def test_uv_installs_on_an_externally_managed_python(tmp_path: Path) -> None:
    python = _externally_managed()
    if python is None:
        pytest.skip("this machine has no externally managed (PEP 668) system Python")
    home = tmp_path / "home"
    home.mkdir()
    # a fresh user on that Python: no uv anywhere on PATH, nothing in ~/.local
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for name in ("PIP_FIND_LINKS", "PIP_CERT", "PIP_DEFAULT_TIMEOUT", "SSL_CERT_FILE", "PIP_INDEX_URL"):
        if name in os.environ:
            env[name] = os.environ[name]
    assert shutil.which("uv", path=env["PATH"]) is None

    refused = subprocess.run(
        [python, "-m", "pip", "install", "--user", "--dry-run", "uv"], capture_output=True, text=True, env=env
    )
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr + refused.stdout

    done = subprocess.run([str(SCRIPT), python], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    uv = home / ".local" / "bin" / "uv"
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, env=env, check=True).stdout
    assert version.startswith("uv 0.13.10"), version

    again = subprocess.run([str(SCRIPT), python], capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 0 and again.stdout == ""  # already there: nothing installed twice
