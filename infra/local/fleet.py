"""Launches the platform's five service processes against given infrastructure, in one namespace.

Used by the resilience tests (kill, restart, replicas) and the load benchmark (peak memory per process)::

    async with Fleet(endpoints, namespace="chaos1", logs=tmp / "logs") as fleet:
        await fleet.create_admin("province", "province-pass-1")
        ...  # drive fleet.api with httpx
        await fleet.kill("reporting")
        await fleet.start_service("reporting")
        extra = await fleet.start_replica("reporting")  # same consumer group, another HTTP port
        await fleet.stop_service(extra)

Every process is ``python -m services.<name>`` in its own session (a signal reaches that one process only), with
its output in ``<logs>/<instance>.log`` (appended across restarts). Instances are named after their service; extra
replicas are ``<service>-2``, ``<service>-3``… Readiness is probed on ``/healthz``, never assumed after a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import httpx

from infra.local.runner import REPO_ROOT, Endpoints
from shared.clock import SHANGHAI, anchored
from shared.messaging.topics import ensure_topics
from shared.settings import ServiceSettings

# Start order: the gateway last, so its upstreams answer when it does.
SERVICES: tuple[str, ...] = ("registry", "activities", "reporting", "notifier", "gateway")
HEALTH_TIMEOUT_S = 90.0
# The programme time a fleet starts at (a mid-June weekday of the second quarter): never the day it runs.
FLEET_CLOCK_START = datetime(2026, 6, 10, 10, 0, tzinfo=SHANGHAI)
STOP_TIMEOUT_S = 20.0
_RSS_SAMPLE_S = 1.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class FleetError(RuntimeError):
    """A service process did not start, or a name is unknown."""


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports free right now (bound and released by the OS)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the launching process dies (a killed test leaves no orphans)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _vm_hwm_kb(pid: int) -> int | None:
    """Peak resident set size (VmHWM) of a live process, in kB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


@dataclass
class _Instance:
    name: str
    service: str
    port: int
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    peak_kb: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def sample_rss(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            kb = _vm_hwm_kb(self.proc.pid)
            if kb is not None:
                self.peak_kb = max(self.peak_kb, kb)


class Fleet:
    """The platform's processes in one namespace on given Kafka/MongoDB endpoints.

    ``env`` overrides (or adds) environment variables of every process; ``services`` limits which services
    ``start()`` launches (in the given order); ``replicas`` processes of each (``registry``, ``registry-2``…): the
    gateway is given every replica's URL, and the gateway's replicas share one port. Ports are chosen free at
    construction; a restarted instance keeps its port, so the gateway's upstream URLs stay valid.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        namespace: str | None = None,
        logs: Path,
        env: Mapping[str, str] | None = None,
        services: Sequence[str] = SERVICES,
        partitions: int = 3,
        replicas: int = 1,
        health_timeout_s: float = HEALTH_TIMEOUT_S,
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        unknown = [s for s in services if s not in SERVICES]
        if unknown:
            raise FleetError(f"unknown service(s) {unknown}; known: {', '.join(SERVICES)}")
        self.endpoints = endpoints
        self.namespace = namespace if namespace is not None else "f" + secrets.token_hex(5)
        self.logs = logs
        self.services = tuple(services)
        self.partitions = partitions
        self.health_timeout_s = health_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.replicas = replicas
        ports = iter(free_ports(len(SERVICES) * replicas))
        self._instances: dict[str, _Instance] = {}
        for service in SERVICES:
            first = next(ports)
            for k in range(replicas):
                name = service if k == 0 else f"{service}-{k + 1}"
                # the gateway's replicas share one address (SO_REUSEPORT), as behind one load balancer
                shared = service == "gateway" and replicas > 1
                port = first if k == 0 or service == "gateway" else next(ports)
                env = {"STVS_HTTP_REUSE_PORT": "true"} if shared else {}
                self._instances[name] = _Instance(name=name, service=service, port=port, extra_env=env)
        self.settings = ServiceSettings(
            kafka_bootstrap=endpoints.kafka_bootstrap, mongo_url=endpoints.mongo_url, namespace=self.namespace
        )
        self.clock = anchored(FLEET_CLOCK_START)  # every process reads this programme time, whatever the date
        self.env = self._base_env(env or {})
        self._sampler: asyncio.Task[None] | None = None

    # -- environment
    def _base_env(self, overrides: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STVS_", "OTEL_"))}
        env.update(
            STVS_KAFKA_BOOTSTRAP=self.endpoints.kafka_bootstrap,
            STVS_MONGO_URL=self.endpoints.mongo_url,
            STVS_NAMESPACE=self.namespace,
            STVS_INTERNAL_TOKEN=f"fleet-internal-token-{self.namespace}-{secrets.token_hex(16)}",
            STVS_HTTP_HOST="127.0.0.1",
            STVS_CAMPAIGN_YEAR=str(FLEET_CLOCK_START.year),
            STVS_CLOCK_START=FLEET_CLOCK_START.isoformat(),
            STVS_CLOCK_ANCHOR=(self.clock.anchor or datetime.now(UTC)).isoformat(),
            # nothing listens there: e-mails stay queued, nothing leaves the machine
            STVS_SMTP_PORT=str(free_ports(1)[0]),
            STVS_CONSUMER_BACKOFF_MS="20",
            STVS_OUTBOX_SWEEP_INTERVAL_S="5",
            STVS_OUTBOX_SWEEP_GRACE_S="10",  # shorter races the relay under load: needless re-publishing
            STVS_SIGNIN_RATE_PER_MIN="1000",
            STVS_SIGNIN_ADDRESS_RATE_PER_MIN="100000",  # every account signs in from 127.0.0.1 here
            STVS_SIGNIN_TOTAL_RATE_PER_MIN="100000",
            PYTHONUNBUFFERED="1",
        )
        for service in SERVICES:
            if service != "gateway":
                urls = [i.url for i in self._instances.values() if i.service == service]
                env[f"STVS_{service.upper()}_URL"] = ",".join(urls)
        env.update(overrides)
        return env

    # -- addresses
    def url(self, name: str) -> str:
        """Base URL of an instance (``reporting``, ``reporting-2``, ``gateway``…)."""
        return self._get(name).url

    @property
    def api(self) -> str:
        return self.url("gateway") + "/api/v1"

    @property
    def instances(self) -> list[str]:
        return list(self._instances)

    def pid(self, name: str) -> int | None:
        inst = self._get(name)
        return inst.proc.pid if inst.running and inst.proc is not None else None

    def running(self, name: str) -> bool:
        return self._get(name).running

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def tail(self, name: str | None = None, lines: int = 40) -> str:
        """Last log lines of one instance or all (for failure messages)."""
        out = []
        for inst in [self._get(name)] if name else list(self._instances.values()):
            try:
                text = self.log_path(inst.name).read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                text = ["(no log)"]
            code = inst.proc.returncode if inst.proc is not None else None
            out.append(f"--- {inst.name} (pid {inst.proc.pid if inst.proc else '-'}, exit {code}) ---")
            out.extend(text)
        return "\n".join(out)

    def _get(self, name: str) -> _Instance:
        try:
            return self._instances[name]
        except KeyError:
            raise FleetError(f"no instance {name!r}; known: {', '.join(self._instances)}") from None

    # -- lifecycle
    async def start(self) -> None:
        """Topics first, then each service, one at a time, each healthy before the next starts."""
        self.logs.mkdir(parents=True, exist_ok=True)
        await ensure_topics(self.settings, partitions=self.partitions)
        if self._sampler is None:
            self._sampler = asyncio.create_task(self._sample_forever(), name="fleet-rss")
        try:
            for service in self.services:
                for inst in [i for i in self._instances.values() if i.service == service]:
                    await self.start_service(inst.name)
        except BaseException:
            await self.stop()
            raise

    async def start_service(self, name: str) -> None:
        """(Re)starts an instance that is not running and waits until it answers ``/healthz``."""
        inst = self._get(name)
        if inst.running:
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        env = {**self.env, **inst.extra_env, "STVS_HTTP_PORT": str(inst.port)}
        with self.log_path(name).open("ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} fleet starts {name} =====\n".encode())
            log.flush()
            inst.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                f"services.{inst.service}",
                cwd=REPO_ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        inst.starts += 1
        await self.wait_healthy(name)

    async def start_replica(self, service: str, env: Mapping[str, str] | None = None) -> str:
        """Starts one more process of ``service`` (same namespace, so same consumer groups) on a new port."""
        if service not in SERVICES:
            raise FleetError(f"unknown service {service!r}")
        n = 2
        while f"{service}-{n}" in self._instances:
            n += 1
        name = f"{service}-{n}"
        self._instances[name] = _Instance(name=name, service=service, port=free_ports(1)[0], extra_env=dict(env or {}))
        await self.start_service(name)
        return name

    async def wait_healthy(self, name: str, timeout_s: float | None = None) -> None:
        inst = self._get(name)
        deadline = time.monotonic() + (timeout_s or self.health_timeout_s)
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not inst.running:
                    code = inst.proc.returncode if inst.proc is not None else None
                    raise FleetError(f"{name} exited with {code} before it was healthy:\n{self.tail(name, 60)}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(inst.url + "/healthz")).status_code == 200:
                        inst.sample_rss()
                        return
                await asyncio.sleep(0.2)
        raise FleetError(f"{name} not healthy at {inst.url}/healthz within {timeout_s or self.health_timeout_s} s")

    async def stop_service(self, name: str, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Sends ``sig`` and waits for the exit (SIGKILL after ``stop_timeout_s``); returns the exit code."""
        inst = self._get(name)
        proc = inst.proc
        if proc is None or proc.returncode is not None:
            return proc.returncode if proc is not None else None
        inst.sample_rss()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), timeout=self.stop_timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        return proc.returncode

    async def kill(self, name: str) -> int | None:
        """SIGKILL: no shutdown code runs."""
        return await self.stop_service(name, signal.SIGKILL)

    async def restart(self, name: str, sig: signal.Signals = signal.SIGTERM) -> None:
        await self.stop_service(name, sig)
        await self.start_service(name)

    async def stop(self) -> None:
        """Stops every instance (SIGTERM all at once, SIGKILL after the grace period). Idempotent."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        # the gateways first, then the rest together
        gateways = [n for n, i in self._instances.items() if i.service == "gateway"]
        await asyncio.gather(*(self.stop_service(n) for n in gateways))
        await asyncio.gather(*(self.stop_service(n) for n in self._instances if n not in gateways))

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- tools
    async def create_admin(self, username: str, password: str) -> None:
        """The first province admin, as ``python -m services.gateway.create_admin`` does it."""
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "services.gateway.create_admin", "--username", username, "--password", password),
            cwd=REPO_ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=self.health_timeout_s)
        if proc.returncode != 0:
            raise FleetError(f"create_admin failed ({proc.returncode}): {output.decode(errors='replace')}")

    def peak_rss_mb(self) -> dict[str, float]:
        """Peak resident memory (VmHWM) of each instance, in MB: the max over all its runs so far."""
        for inst in self._instances.values():
            inst.sample_rss()
        return {name: round(inst.peak_kb / 1024, 1) for name, inst in self._instances.items() if inst.peak_kb}

    async def _sample_forever(self) -> None:
        while True:
            for inst in self._instances.values():
                inst.sample_rss()
            await asyncio.sleep(_RSS_SAMPLE_S)
