"""The ``make run`` supervisor: infrastructure, topics, then every service, in one terminal.

``STVS_REPLICAS`` (``make run REPLICAS=2``) runs that many processes of every service: the internal services'
replicas on ports 10 apart (registry 8001, 8011, …), which the gateway spreads its requests over; the gateway's
replicas share port 8000 (SO_REUSEPORT), so clients keep one address. Each process's output is shown line by line,
prefixed with its name (``registry``, ``registry-2``…). Ctrl-C / SIGTERM stops the services
(SIGTERM, up to 20 s each), then the infrastructure. A service that dies is reported; the others keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time

import httpx

from infra.local.mail import MailCatcher
from infra.local.runner import REPO_ROOT, Endpoints, InfraError, InfraRunner, InfraSettings, port_free

# Start order: the gateway last, so its dependencies answer when it does.
SERVICES: dict[str, int] = {
    "registry": 8001,
    "activities": 8002,
    "reporting": 8003,
    "notifier": 8004,
    "gateway": 8000,
}
REPLICA_PORT_STEP = 10
MAX_REPLICAS = 8
HEALTH_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
_COLOURS = ["36", "32", "35", "33", "34", "31"]


class _Output:
    """Writes child output lines to the terminal with a (coloured, on a TTY) name prefix."""

    def __init__(self) -> None:
        self.colour = sys.stdout.isatty()
        self.width = max(len(n) for n in [*SERVICES, "topics", "run"]) + 2
        self._codes: dict[str, str] = {}

    def line(self, name: str, text: str) -> None:
        code = self._codes.setdefault(name, _COLOURS[len(self._codes) % len(_COLOURS)])
        prefix = f"{name:<{self.width}} |"
        if self.colour:
            prefix = f"\033[{code}m{prefix}\033[0m"
        sys.stdout.write(f"{prefix} {text.rstrip()}\n")
        sys.stdout.flush()

    def say(self, text: str) -> None:
        self.line("run", text)


def instances(replicas: int) -> dict[str, tuple[str, int]]:
    """Every process to start, by name: (service, port). The gateway's replicas share its port."""
    found: dict[str, tuple[str, int]] = {}
    for service, port in SERVICES.items():
        for k in range(replicas):
            name = service if k == 0 else f"{service}-{k + 1}"
            found[name] = (service, port if service == "gateway" else port + k * REPLICA_PORT_STEP)
    return found


def _service_env(endpoints: Endpoints, port: int, replicas: int, mail_port: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if mail_port is not None:  # the notifier's e-mail goes to the local mail catcher
        env.update(STVS_SMTP_HOST="127.0.0.1", STVS_SMTP_PORT=str(mail_port))
    env.update(
        {
            "STVS_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
            "STVS_MONGO_URL": endpoints.mongo_url,
            "STVS_HTTP_HOST": "127.0.0.1",
            "STVS_HTTP_PORT": str(port),
            "STVS_HTTP_REUSE_PORT": "true" if replicas > 1 else "false",
            "PYTHONUNBUFFERED": "1",  # lines appear as they are written, not at exit
        }
    )
    for name, service_port in SERVICES.items():
        if name != "gateway":
            urls = [f"http://127.0.0.1:{service_port + k * REPLICA_PORT_STEP}" for k in range(replicas)]
            env[f"STVS_{name.upper()}_URL"] = ",".join(urls)
    return env


def replicas_from_env() -> int:
    raw = os.environ.get("STVS_REPLICAS", "1").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_REPLICAS:
        raise InfraError(f"STVS_REPLICAS (REPLICAS=…) must be a whole number from 1 to {MAX_REPLICAS}, got {raw!r}")
    return int(raw)


async def _pump(name: str, proc: asyncio.subprocess.Process, out: _Output) -> None:
    assert proc.stdout is not None
    while True:
        try:
            raw = await proc.stdout.readline()
        except ValueError:  # a line longer than the buffer: show what there is
            raw = await proc.stdout.read(1 << 16)
        if not raw:
            return
        out.line(name, raw.decode("utf-8", "replace"))


async def _spawn(
    name: str, module: str, env: dict[str, str], out: _Output
) -> tuple[asyncio.subprocess.Process, asyncio.Task[None]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        limit=1 << 20,
        start_new_session=True,  # the supervisor decides when and how children stop
    )
    return proc, asyncio.create_task(_pump(name, proc, out))


async def _terminate(name: str, proc: asyncio.subprocess.Process, out: _Output) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        out.say(f"{name} did not stop within {STOP_TIMEOUT_S:.0f} s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


async def _wait_healthy(name: str, port: int, proc: asyncio.subprocess.Process, client: httpx.AsyncClient) -> bool:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline and proc.returncode is None:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                return True
        await asyncio.sleep(0.5)
    return False


def _topics_module_exists() -> bool:
    base = REPO_ROOT / "shared" / "messaging"
    return (base / "topics.py").is_file() or (base / "topics" / "__main__.py").is_file()


class Supervisor:
    """Starts and stops everything `make run` shows."""

    def __init__(self, replicas: int = 1) -> None:
        self.replicas = replicas
        self.out = _Output()
        self.mail: MailCatcher | None = None
        self.runner = InfraRunner()
        self.stopping = asyncio.Event()
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.signals = 0
        self.watchers: list[asyncio.Task[None]] = []  # referenced so they are not garbage-collected

    def _on_signal(self) -> None:
        self.signals += 1
        if self.signals == 1:
            self.out.say("stopping (Ctrl-C again to kill the services at once)...")
            self.stopping.set()
        else:
            for proc in self.procs.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        services = {
            name: (service, port)
            for name, (service, port) in instances(self.replicas).items()
            if (REPO_ROOT / "services" / service / "__main__.py").is_file()
        }
        for port, name in {port: name for name, (_, port) in reversed(services.items())}.items():
            if not port_free(port):
                raise InfraError(f"Port {port} for the {name} service is already in use (is `make run` running?)")
        self.out.say("starting Kafka and SecantusDB...")
        try:
            endpoints = await asyncio.to_thread(self.runner.start)
            self.out.say(f"Kafka {endpoints.kafka_bootstrap}, MongoDB {endpoints.mongo_url}")
            self.out.say(f"infrastructure logs: {self.runner.log_dir}")
            if not self.stopping.is_set() and not await self._topics(endpoints):
                return 1
            if not os.environ.get("STVS_SMTP_HOST"):
                settings = InfraSettings()
                if not port_free(settings.mail_port):
                    raise InfraError(
                        f"Port {settings.mail_port} for the mail catcher is already in use: set STVS_MAIL_PORT, "
                        "or STVS_SMTP_HOST/STVS_SMTP_PORT to send to a real mail server"
                    )
                self.mail = MailCatcher(settings.mail_port, settings.data_dir.parent / "mail", self.out.line)
                self.mail.start()
            if not self.stopping.is_set():
                await self._services(services, endpoints)
            watch = asyncio.create_task(self._watch_infra())
            await self.stopping.wait()
            watch.cancel()
            return 0
        finally:
            await asyncio.gather(*(_terminate(n, p, self.out) for n, p in self.procs.items()))
            if self.mail is not None:
                self.mail.stop()
            self.out.say("stopping Kafka and SecantusDB...")
            await asyncio.to_thread(self.runner.stop)
            self.out.say("stopped")

    async def _topics(self, endpoints: Endpoints) -> bool:
        if not _topics_module_exists():
            self.out.say("WARNING: shared/messaging/topics.py does not exist yet; no topics created")
            return True
        env = {**os.environ, "STVS_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap, "PYTHONUNBUFFERED": "1"}
        proc, pump = await _spawn("topics", "shared.messaging.topics", env, self.out)
        self.procs["topics"] = proc
        code = await proc.wait()
        await pump
        del self.procs["topics"]
        if code != 0:
            self.out.say(f"!! creating topics failed (exit {code}); stopping")
        return code == 0

    async def _services(self, services: dict[str, tuple[str, int]], endpoints: Endpoints) -> None:
        if not services:
            self.out.say("WARNING: no services/<name>/__main__.py yet; only the infrastructure runs")
            return
        for name, (service, port) in services.items():
            env = _service_env(endpoints, port, self.replicas, self.mail.port if self.mail else None)
            proc, pump = await _spawn(name, f"services.{service}", env, self.out)
            self.procs[name] = proc
            self.watchers.append(asyncio.create_task(self._watch(name, proc, pump)))
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=2.0) as client:

            async def ready(name: str, proc: asyncio.subprocess.Process) -> bool:
                ok = await _wait_healthy(name, services[name][1], proc, client)
                if ok:
                    took = time.monotonic() - started
                    self.out.say(f"{name} ready on http://127.0.0.1:{services[name][1]} ({took:.1f} s)")
                elif proc.returncode is None:
                    self.out.say(f"!! {name} did not answer /healthz within {HEALTH_TIMEOUT_S:.0f} s")
                return ok

            await asyncio.gather(*(ready(n, p) for n, p in self.procs.items()))
            if "gateway" in services:
                gateway = f"http://127.0.0.1:{services['gateway'][1]}"
                with contextlib.suppress(httpx.HTTPError):
                    ready_code = (await client.get(f"{gateway}/readyz")).status_code
                    self.out.say(f"readiness: {gateway}/readyz -> {ready_code}")
                if self.replicas > 1:
                    self.out.say(f"{self.replicas} replicas of every service")
                self.out.say(f"API:      {gateway}/api/v1   API docs: {gateway}/docs")
                if self.mail is not None:
                    self.out.say(f"e-mail:   caught on 127.0.0.1:{self.mail.port}, saved in {self.mail.folder}")
                self.out.say("Ctrl-C to stop")

    async def _watch_infra(self) -> None:
        reported: set[str] = set()
        while True:
            for name, code in self.runner.dead_children().items():
                if name not in reported:
                    reported.add(name)
                    self.out.say(f"!! {name} EXITED with code {code}; see {self.runner.log_path(name)}")
            await asyncio.sleep(2)

    async def _watch(self, name: str, proc: asyncio.subprocess.Process, pump: asyncio.Task[None]) -> None:
        code = await proc.wait()
        await pump
        if not self.stopping.is_set():
            self.out.say(f"!! {name} EXITED with code {code}; the other services keep running")


def run() -> int:
    try:
        supervisor = Supervisor(replicas_from_env())
    except InfraError as exc:
        _Output().say(f"error: {exc}")
        return 2
    try:
        return asyncio.run(supervisor.run())
    except InfraError as exc:
        supervisor.out.say(f"error: {exc}")
        return 2
