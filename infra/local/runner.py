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
import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

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


class KafkaServer(_Server):
    """Apache Kafka, single node, KRaft (broker and controller in one JVM)."""

    name = "kafka"
    log_name = "kafka.log"

    @property
    def pom(self) -> Path:
        return _HERE / "kafka" / "pom.xml"

    @property
    def libs(self) -> Path:
        return self.settings.cache_dir / f"kafka-{KAFKA_VERSION}-{_hash_files(self.pom)}" / "libs"

    @property
    def port(self) -> int:
        return self.settings.kafka_port

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port}"

    def installed(self) -> bool:
        return (self.libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()

    def missing_tools(self) -> dict[str, str]:
        missing: dict[str, str] = {}
        java = shutil.which("java")
        if java is None:
            missing["java"] = "runs the local Kafka broker; install a Java 17+ runtime (or set STVS_KAFKA_BOOTSTRAP)"
        elif (major := _java_major(java)) is not None and major < 17:
            missing["java"] = f"Kafka {KAFKA_VERSION} needs Java 17 or newer, found Java {major}"
        if not self.installed() and shutil.which("mvn") is None:
            missing["mvn"] = (
                f"downloads Kafka {KAFKA_VERSION} from Maven Central once into {self.settings.cache_dir}; "
                "install Maven (or set STVS_KAFKA_BOOTSTRAP)"
            )
        return missing

    def ports(self) -> list[tuple[int, str, str]]:
        return [
            (self.settings.kafka_port, "STVS_KAFKA_PORT", "the Kafka broker"),
            (self.settings.kafka_controller_port, "STVS_KAFKA_CONTROLLER_PORT", "the Kafka controller"),
        ]

    def install(self) -> None:
        if self.installed():
            return
        dist = self.libs.parent

        def build(tmp: Path) -> None:
            log.info("downloading Kafka %s from Maven Central into %s (once, about a minute)", KAFKA_VERSION, dist)
            shutil.copy(self.pom, tmp / "pom.xml")
            cmd = ["mvn", "-q", "-B", "-f", str(tmp / "pom.xml"), "dependency:copy-dependencies"]
            cmd += [f"-DoutputDirectory={tmp / 'libs'}", "-DincludeScope=runtime"]
            _run_tool(cmd, "Kafka download (mvn)", tmp / "mvn.log")
            if not (tmp / "libs" / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
                raise InstallError(f"mvn finished but kafka_2.13-{KAFKA_VERSION}.jar is missing in {tmp / 'libs'}")
            for extra in ("pom.xml", "mvn.log", "target"):
                path = tmp / extra
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)

        with _cache_lock(self.settings.cache_dir):
            if not self.installed():
                _install_atomically(dist, f"Kafka {KAFKA_VERSION}", build)

    @property
    def properties(self) -> Path:
        return self.data_dir / "server.properties"

    def prepare(self, log_file: IO[bytes]) -> None:
        s = self.settings
        log_dir = self.data_dir / "data"
        log_dir.mkdir(parents=True, exist_ok=True)
        # Rendered at every start so a port change applies to existing data.
        self.properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={log_dir}",
                    "num.partitions=3",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=3",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "message.max.bytes=2097152",
                    "",
                ]
            )
        )
        if (log_dir / "meta.properties").exists():
            return  # formatted before: formatting again would refuse or lose data
        cluster_id = "-"
        while cluster_id.startswith("-"):  # the tool's argument parser would take a leading "-" for an option
            cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        cmd = ["java", "-cp", f"{self.libs}/*", "kafka.tools.StorageTool", "format"]
        cmd += ["-t", cluster_id, "-c", str(self.properties)]
        log_file.write(f"$ {' '.join(cmd)}\n".encode())
        log_file.flush()
        code = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, timeout=120).returncode
        if code != 0:
            raise StartError(f"formatting Kafka storage in {log_dir} failed (exit {code})")

    def command(self) -> list[str]:
        heap = self.settings.kafka_heap
        return [
            "java",
            f"-Xmx{heap}",
            "-Xms256m",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_HERE / 'kafka' / 'log4j2.yaml'}",
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(self.properties),
        ]

    async def probe(self, endpoint: str) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=endpoint, request_timeout_ms=5000)
        try:
            await admin.start()
            # A broker answers metadata before it has registered with the controller; only then it serves.
            cluster = await admin.describe_cluster()
            if not cluster.get("brokers"):
                raise StartError("Kafka answers but has no registered broker yet")
            await admin.list_topics()
        finally:
            await admin.close()


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    for token in out.split('"')[1:2]:  # openjdk version "17.0.15" / "1.8.0_392"
        parts = token.split(".")
        with contextlib.suppress(ValueError):
            return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])
    return None


class SecantusServer(_Server):
    """SecantusDB (``secantusd-rs``): the MongoDB wire protocol over WiredTiger, single node advertising a one-member
    replica set (what transactions and change streams need). Built once from crates.io with cargo."""

    name = "secantus"
    log_name = "secantus.log"

    @property
    def binary(self) -> Path:
        return self.settings.cache_dir / f"secantus-{SECANTUS_VERSION}" / "bin" / "secantusd-rs"

    @property
    def port(self) -> int:
        return self.settings.mongo_port

    @property
    def endpoint(self) -> str:
        return f"mongodb://127.0.0.1:{self.settings.mongo_port}/"

    def installed(self) -> bool:
        return os.access(self.binary, os.X_OK)

    def missing_tools(self) -> dict[str, str]:
        if self.installed() or shutil.which("cargo") is not None:
            return {}
        return {
            "cargo": f"builds SecantusDB {SECANTUS_VERSION} (the local MongoDB-protocol server) once into "
            f"{self.settings.cache_dir}; install Rust with cargo (or set STVS_MONGO_URL to use an existing MongoDB)"
        }

    def ports(self) -> list[tuple[int, str, str]]:
        return [(self.settings.mongo_port, "STVS_MONGO_PORT", "SecantusDB (MongoDB protocol)")]

    def install(self) -> None:
        if self.installed():
            return
        dist = self.binary.parent.parent

        def build(tmp: Path) -> None:
            log.info("building SecantusDB %s into %s with cargo (once; 10-17 min on 2 cores)", SECANTUS_VERSION, dist)
            cmd = ["cargo", "install", "secantus-mdb", "--version", SECANTUS_VERSION, "--locked"]
            cmd += ["--ignore-rust-version", "--root", str(tmp), "--bin", "secantusd-rs"]
            # Its own target dir inside the temporary root: a half build is never reused, and nothing is left over.
            env = {**os.environ, "CARGO_TARGET_DIR": str(tmp / "target")}
            log_path = tmp / "cargo-install.log"
            with heartbeat(f"building SecantusDB {SECANTUS_VERSION}", log_path):
                _run_tool(cmd, "SecantusDB build (cargo install)", log_path, env=env, timeout_s=3600)
            for extra in ("target", ".crates.toml", ".crates2.json", "cargo-install.log"):
                path = tmp / extra
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)

        with _cache_lock(self.settings.cache_dir):
            if not self.installed():
                _install_atomically(dist, f"SecantusDB {SECANTUS_VERSION}", build)

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.settings.mongo_port),
            "--storage-path",
            str(self.data_dir),
            "--cache-size",
            self.settings.mongo_cache,
            "--log-level",
            "WARNING",
        ]

    async def probe(self, endpoint: str) -> None:
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(endpoint, serverSelectionTimeoutMS=2000)
        try:
            hello = await client.admin.command("hello")
            if not hello.get("setName"):
                raise StartError("the MongoDB-protocol server answers but advertises no replica set")
        finally:
            await client.close()


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
