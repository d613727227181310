"""The local infrastructure's settings, errors and helpers, shared by the servers (:mod:`infra.local.servers`) and
the runner (:mod:`infra.local.runner`)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("infra.local.runner")  # one logger for the runner and its servers

REPO_ROOT = Path(__file__).resolve().parents[2]
_HERE = Path(__file__).resolve().parent
KAFKA_VERSION = "4.4.0"
SECANTUS_VERSION = "0.5.3-beta.196"
_LOCK_NAME = ".lock"
_RUN_FILE = "run.json"

_T = TypeVar("_T")


class InfraSettings(BaseSettings):
    """Where the local infrastructure listens and keeps its files (environment prefix ``STVS_``)."""

    model_config = SettingsConfigDict(env_prefix="STVS_", extra="ignore", env_ignore_empty=True)

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    mongo_port: int = 27017
    data_dir: Path = Path(".stvs/data")
    cache_dir: Path = Path("~/.cache/stvs")
    kafka_bootstrap: str | None = None
    mongo_url: str | None = None
    kafka_heap: str = "512m"
    mongo_cache: str = "1G"
    mail_port: int = 1025  # `make run`'s mail catcher (SMTP), unless STVS_SMTP_HOST names a real server
    ready_timeout_s: float = 90.0
    stop_timeout_s: float = 30.0

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Relative data dirs belong to the repository, whatever the current directory is.
        value = value.expanduser()
        return value if value.is_absolute() else (REPO_ROOT / value).resolve()


@dataclass(frozen=True)
class Endpoints:
    """How clients reach the infrastructure."""

    kafka_bootstrap: str
    mongo_url: str


# --- errors: each message tells an operator what is wrong and what to change --------------------------------


class InfraError(RuntimeError):
    """The local infrastructure could not be installed or started."""


class MissingToolError(InfraError):
    """A program the runner needs is not on PATH (or too old)."""

    def __init__(self, missing: dict[str, str]) -> None:
        self.tools = list(missing)
        details = "\n".join(f"  - {tool}: {why}" for tool, why in missing.items())
        super().__init__(f"Required tool(s) missing: {', '.join(self.tools)}\n{details}")


class PortInUseError(InfraError):
    """A port the runner would listen on is taken."""

    def __init__(self, port: int, setting: str, what: str) -> None:
        self.port = port
        self.setting = setting
        super().__init__(
            f"Port {port} on 127.0.0.1 (for {what}) is already in use. Stop the program using it "
            f"or choose another port with {setting}=<port>."
        )


class AlreadyRunningError(InfraError):
    """Another runner owns the data directory; a second broker on the same data would corrupt it."""

    def __init__(self, data_dir: Path, owner: str) -> None:
        self.data_dir = data_dir
        super().__init__(
            f"Another infrastructure runner ({owner}) is already using {data_dir}. Use the infrastructure "
            "it started, stop it first, or set STVS_DATA_DIR (and other ports) for a second one."
        )


class InstallError(InfraError):
    """Downloading Kafka or building SecantusDB failed."""


class StartError(InfraError):
    """A server did not come up (it exited, or was not ready in time)."""


# --- helpers ----------------------------------------------------------------------------------------------


def _run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Runs a coroutine from sync code, also when the calling thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="infra-probe")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR as the servers themselves use it: a port in TIME_WAIT after a restart is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _hash_files(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def _cache_lock(cache_dir: Path) -> Iterator[None]:
    """Serialises installs: `make run` and `make test` may both find the cache empty."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / _LOCK_NAME).open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another install into %s to finish", cache_dir)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _install_atomically(final: Path, what: str, build: Callable[[Path], None]) -> None:
    """Builds into a temporary sibling directory and renames it, so a half download is never a cache hit."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        try:
            tmp.rename(final)
        except OSError:
            if not final.is_dir():  # not a concurrent winner: a real failure
                raise
        log.info("%s installed in %s", what, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_tool(
    cmd: list[str], what: str, log_path: Path, *, cwd: Path | None = None, env: Any = None, timeout_s: float = 1800
) -> None:
    with log_path.open("wb") as out:
        try:
            code = subprocess.run(
                cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    if code != 0:
        raise InstallError(f"{what} failed (exit {code}): {' '.join(cmd)}\n{_tail(log_path)}")


# --- the two servers --------------------------------------------------------------------------------------


class _Server:
    """One child server: what it needs, how to install, launch and probe it."""

    name = ""
    log_name = ""

    def __init__(self, settings: InfraSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir / self.name

    @property
    def endpoint(self) -> str:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

    def installed(self) -> bool:
        raise NotImplementedError

    def missing_tools(self) -> dict[str, str]:
        raise NotImplementedError

    def ports(self) -> list[tuple[int, str, str]]:
        """(port, setting, what) the server will listen on."""
        raise NotImplementedError

    def install(self) -> None:
        raise NotImplementedError

    def prepare(self, log_file: IO[bytes]) -> None:
        """Work before launch (e.g. formatting storage)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    async def probe(self, endpoint: str) -> None:
        """Returns when a real client request succeeds; raises otherwise."""
        raise NotImplementedError


@contextlib.contextmanager
def heartbeat(what: str, log_path: Path | None = None, every_s: float = 30.0) -> Iterator[None]:
    """Log a line with the elapsed time (and the build's last line) while a long step runs: never looks hung."""
    stop = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not stop.wait(every_s):
            last = _tail(log_path, 1).strip()[:120] if log_path else ""
            log.info("%s: %d s so far%s", what, time.monotonic() - started, f" ({last})" if last else "")

    thread = threading.Thread(target=beat, name="infra-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- the runner -------------------------------------------------------------------------------------------
