"""Deployment check tools, built once from source with Go: ``python -m infra.tools {install,status}``.

- Helm 3 (``helm lint`` / ``helm template`` of ``deploy/helm/stvs``)
- promtool (``promtool check rules`` of ``deploy/monitoring``)

Each goes to ``~/.cache/stvs/tools/<name>-<version>/<name>`` (``STVS_CACHE_DIR`` moves the cache), built with
``go install <package>@<version>`` through the Go module proxy: no other download. ``tests/deploy`` uses them and
fails (never skips) with ``make install`` as the remedy when one is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.local.runner import heartbeat

log = logging.getLogger("stvs.tools")


@dataclass(frozen=True)
class Tool:
    name: str
    package: str
    version: str
    minutes: str  # what a first build takes on 2 cores, for the log
    ldflags: tuple[str, ...] = ()  # what the project's release build stamps in (version, defaults)

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def binary(self) -> Path:
        return cache_dir() / f"{self.name}-{self.version}" / self.name

    def installed(self) -> bool:
        return os.access(self.binary, os.X_OK)


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "helm",
            "helm.sh/helm/v3/cmd/helm",
            "v3.22.1",
            "4-6",
            # As Helm's Makefile: its version, and Kubernetes 1.37 (its client-go v0.37) as the default target.
            (
                "-X helm.sh/helm/v3/internal/version.version=v3.22.1",
                "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
                "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37",
                "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
                "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
            ),
        ),
        Tool(
            "promtool",
            "github.com/prometheus/prometheus/cmd/promtool",
            "v0.316.0",
            "10-20",
            ("-X github.com/prometheus/common/version.Version=0.316.0",),
        ),
    )
}


class ToolError(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("STVS_CACHE_DIR", "~/.cache/stvs")).expanduser() / "tools"


def path(name: str) -> Path:
    """Where the tool ``name`` is (or will be) installed."""
    return TOOLS[name].binary


def missing(name: str) -> str | None:
    """None when the tool is installed, else how to install it."""
    tool = TOOLS[name]
    if tool.installed():
        return None
    return (
        f"{name} {tool.version} is not installed at {tool.binary}: run `make install` "
        f"(or `uv run python -m infra.tools install`; builds it once with `go install {tool.package}@{tool.version}`, "
        f"about {tool.minutes} min on 2 cores; needs Go on PATH)"
    )


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".install.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def install(name: str) -> Path:
    """Build one tool into the cache unless it is there; returns its path."""
    tool = TOOLS[name]
    if tool.installed():
        return tool.binary
    go = shutil.which("go")
    if go is None:
        raise ToolError(f"{name}: Go is needed to build {tool.package}@{tool.version}; install Go (≥ 1.24)")
    with _lock():
        if tool.installed():
            return tool.binary
        target = tool.binary.parent
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=target.parent) as tmp:
            env = {**os.environ, "GOBIN": tmp, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
            log.info("building %s %s with go install (once; about %s min on 2 cores)", name, tool.version, tool.minutes)
            started = time.monotonic()
            with heartbeat(f"building {name} {tool.version}"):
                done = subprocess.run(
                    [go, "install", f"-ldflags={' '.join(('-s', '-w', *tool.ldflags))}", tool.spec],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=3600,
                    check=False,
                )
            if done.returncode != 0:
                raise ToolError(f"go install {tool.package}@{tool.version} failed:\n{done.stderr[-4000:]}")
            built = Path(tmp) / name
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            built.replace(tool.binary)  # same file system: the binary appears whole or not at all
            log.info("%s %s built in %.0f s: %s", name, tool.version, time.monotonic() - started, tool.binary)
    return tool.binary


def status() -> dict[str, dict[str, str | bool]]:
    return {t.name: {"version": t.version, "path": str(t.binary), "installed": t.installed()} for t in TOOLS.values()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.tools", description="Helm and promtool for stvs deploy.")
    parser.add_argument("command", choices=["install", "status"])
    parser.add_argument("names", nargs="*", help=f"tools to install, of {', '.join(TOOLS)} (default: all)")
    args = parser.parse_args(argv)
    if unknown := [n for n in args.names if n not in TOOLS]:
        parser.error(f"unknown tool(s): {', '.join(unknown)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if args.command == "status":
        print(json.dumps(status(), indent=2))
        return 0
    try:
        for name in args.names or list(TOOLS):
            print(f"{name}: {install(name)}", flush=True)
    except (ToolError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
