"""Runs the project's own Kafka broker and MongoDB-protocol server on a machine without Docker.

Kafka 4.4.0 (single node, KRaft) runs from the jars Maven copies from Maven Central; SecantusDB 0.5.3-beta.196
(``secantusd-rs``, the MongoDB wire protocol over WiredTiger) runs from the binary cargo builds from crates.io. Both
are cached under ``~/.cache/stvs``
(``STVS_CACHE_DIR``), so only the first start downloads; data lives under ``.stvs/data`` (``STVS_DATA_DIR``).
``STVS_KAFKA_BOOTSTRAP`` / ``STVS_MONGO_URL`` point at existing servers instead: then that part is only
checked for readiness. Readiness is probed (a real client request), never assumed after a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from infra.local.base import (
    _LOCK_NAME,
    _RUN_FILE,
    KAFKA_VERSION,
    REPO_ROOT,
    SECANTUS_VERSION,
    AlreadyRunningError,
    Endpoints,
    InfraError,
    InfraSettings,
    MissingToolError,
    PortInUseError,
    StartError,
    _run_async,
    _Server,
    _tail,
    _tcp_open,
    heartbeat,
    log,
    port_free,
)
from infra.local.servers import KafkaServer, SecantusServer

__all__ = [
    "KAFKA_VERSION",
    "REPO_ROOT",
    "SECANTUS_VERSION",
    "AlreadyRunningError",
    "Endpoints",
    "InfraError",
    "InfraRunner",
    "InfraSettings",
    "KafkaServer",
    "MissingToolError",
    "PortInUseError",
    "SecantusServer",
    "StartError",
    "heartbeat",
    "port_free",
    "status",
]


class InfraRunner:
    """Installs, starts, probes and stops the local Kafka and SecantusDB.

    One runner owns a data directory at a time (an flock on ``<data_dir>/.lock`` held while it runs).
    Children run in their own process group and log to ``<data_dir>/logs/``. ``fresh=True`` wipes the data
    directory (after taking the lock) for throw-away infrastructure such as the test session's.
    """

    def __init__(self, settings: InfraSettings | None = None, *, fresh: bool = False) -> None:
        self.settings = settings or InfraSettings()
        self.fresh = fresh
        self.kafka = KafkaServer(self.settings)
        self.mongo = SecantusServer(self.settings)
        self._lock_file: IO[str] | None = None
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self.endpoints: Endpoints | None = None

    # parts this runner starts itself (the others are given by STVS_KAFKA_BOOTSTRAP / STVS_MONGO_URL)
    def _local(self) -> list[_Server]:
        parts: list[_Server] = []
        if self.settings.kafka_bootstrap is None:
            parts.append(self.kafka)
        if self.settings.mongo_url is None:
            parts.append(self.mongo)
        return parts

    @property
    def log_dir(self) -> Path:
        return self.settings.data_dir / "logs"

    def check_tools(self) -> None:
        missing: dict[str, str] = {}
        for part in self._local():
            missing.update(part.missing_tools())
        if missing:
            raise MissingToolError(missing)

    def install(self) -> None:
        """Downloads/builds what the local parts need; a no-op when cached."""
        self.check_tools()
        for part in self._local():
            part.install()

    def start(self) -> Endpoints:
        if self.endpoints is not None:
            return self.endpoints
        local = self._local()
        try:
            if local:
                self._acquire_lock()
                self._reap_orphans()
                if self.fresh:
                    self._wipe()
                self.check_tools()
                self._check_ports(local)
                for part in local:
                    part.install()
                for part in local:
                    self._launch(part)
                self._write_run_file()
            _run_async(self._wait_ready())
        except BaseException:
            self.stop()
            raise
        self.endpoints = Endpoints(
            kafka_bootstrap=self.settings.kafka_bootstrap or self.kafka.endpoint,
            mongo_url=self.settings.mongo_url or self.mongo.endpoint,
        )
        return self.endpoints

    def stop(self) -> None:
        """SIGTERMs the children, waits (SIGKILL after stop_timeout_s), releases the lock. Idempotent."""
        for proc in self._children.values():
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.stop_timeout_s
        for name, proc in self._children.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killing it", name, self.settings.stop_timeout_s)
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        self._children.clear()
        self.endpoints = None
        if self._lock_file is not None:
            (self.settings.data_dir / _RUN_FILE).unlink(missing_ok=True)
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def dead_children(self) -> dict[str, int]:
        """Children that exited on their own: name -> exit code."""
        return {name: code for name, proc in self._children.items() if (code := proc.poll()) is not None}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals --

    def _acquire_lock(self) -> None:
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        f = (data_dir / _LOCK_NAME).open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown process"
            f.close()
            raise AlreadyRunningError(data_dir, owner) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        self._lock_file = f

    def _reap_orphans(self) -> None:
        """Stops children a killed runner left behind (we hold the lock, so their runner is gone)."""
        run_file = self.settings.data_dir / _RUN_FILE
        try:
            children: dict[str, int] = json.loads(run_file.read_text())["children"]
        except (OSError, ValueError, KeyError):
            return
        for name, pid in children.items():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(self.settings.data_dir).encode() in cmdline:  # a child of ours, not a reused pid
                log.warning("stopping %s (pid %d) left running by a previous runner", name, pid)
                _signal_group(pid, signal.SIGTERM)
                deadline = time.monotonic() + self.settings.stop_timeout_s
                while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                    time.sleep(0.2)
                _signal_group(pid, signal.SIGKILL)
        run_file.unlink(missing_ok=True)

    def _wipe(self) -> None:
        for entry in self.settings.data_dir.iterdir():
            if entry.name != _LOCK_NAME:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()

    def _check_ports(self, local: list[_Server]) -> None:
        seen: dict[int, str] = {}
        for part in local:
            for port, setting, what in part.ports():
                if port in seen:
                    raise InfraError(f"{setting} and {seen[port]} are both {port}; give each its own port")
                seen[port] = setting
                if not port_free(port):
                    raise PortInUseError(port, setting, what)

    def _launch(self, part: _Server) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        part.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path(part.name)
        with log_path.open("ab") as log_file:
            log_file.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {part.name} =====\n".encode())
            log_file.flush()
            part.prepare(log_file)
            # Own process group: a Ctrl-C in the terminal reaches the runner, which stops children in order.
            self._children[part.name] = subprocess.Popen(
                part.command(),
                cwd=part.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _write_run_file(self) -> None:
        info = {"runner_pid": os.getpid(), "children": {name: p.pid for name, p in self._children.items()}}
        (self.settings.data_dir / _RUN_FILE).write_text(json.dumps(info))

    async def _wait_ready(self) -> None:
        s = self.settings
        checks = [
            self._wait_one(self.kafka, s.kafka_bootstrap or self.kafka.endpoint),
            self._wait_one(self.mongo, s.mongo_url or self.mongo.endpoint),
        ]
        await asyncio.gather(*checks)

    async def _wait_one(self, part: _Server, endpoint: str) -> None:
        timeout = self.settings.ready_timeout_s
        deadline = time.monotonic() + timeout
        proc = self._children.get(part.name)
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if proc is not None and (code := proc.poll()) is not None:
                raise StartError(
                    f"{part.name} exited with code {code} while starting. "
                    f"Last lines of {self.log_path(part.name)}:\n{_tail(self.log_path(part.name))}"
                )
            # Cheap TCP check first: the client libraries log noisily on refused connections.
            if proc is None or await asyncio.to_thread(_tcp_open, "127.0.0.1", part.port):
                try:
                    await asyncio.wait_for(part.probe(endpoint), timeout=15)
                except Exception as exc:
                    last_error = exc
                else:
                    return
            await asyncio.sleep(0.25)
        where = (
            f"Last lines of {self.log_path(part.name)}:\n{_tail(self.log_path(part.name))}"
            if proc is not None
            else "It was given by STVS_KAFKA_BOOTSTRAP / STVS_MONGO_URL; is it running?"
        )
        raise StartError(f"{part.name} at {endpoint} was not ready within {timeout:.0f} s ({last_error!r}). {where}")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def status(settings: InfraSettings | None = None) -> dict[str, Any]:
    """What is installed, whether a runner owns the data dir, and which ports answer."""
    s = settings or InfraSettings()
    kafka, mongo = KafkaServer(s), SecantusServer(s)
    owner: str | None = None
    lock_path = s.data_dir / _LOCK_NAME
    if lock_path.exists():
        with lock_path.open("a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
            except BlockingIOError:
                f.seek(0)
                owner = f.read().strip() or "unknown"
    return {
        "data_dir": str(s.data_dir),
        "cache_dir": str(s.cache_dir),
        "runner": owner or "not running",
        "kafka": {
            "endpoint": s.kafka_bootstrap or kafka.endpoint,
            "installed": kafka.installed(),
            "answering": "external" if s.kafka_bootstrap else _tcp_open("127.0.0.1", s.kafka_port),
        },
        "mongo": {
            "endpoint": s.mongo_url or mongo.endpoint,
            "installed": mongo.installed(),
            "answering": "external" if s.mongo_url else _tcp_open("127.0.0.1", s.mongo_port),
        },
    }
