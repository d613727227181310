"""Gateway overhead (issue 8): the same read through the gateway and directly on the registry, over real HTTP.

The registry and the gateway run as real uvicorn servers (``python -m services.registry`` / ``python -m
services.gateway`` subprocesses on free loopback ports, a fresh namespace). The registry is seeded with the demo data
(``services.registry.demo.seed``); a province admin account is created in the gateway and signs in once. Then
1,000 sequential ``GET /units?limit=10`` directly on the registry (with an identity signed by the internal token,
as the gateway sends it) and 1,000 sequential ``GET /api/v1/units?limit=10`` through the gateway (Bearer token),
interleaved one by one (so other work on the machine weighs on both alike), after a warm-up of each. Figures:
``direct_p50_ms``, ``direct_p99_ms``, ``proxied_p50_ms``, ``proxied_p99_ms`` and
``overhead_p50_ms`` (proxied p50 − direct p50), and ``gateway_cpu_ms_per_request`` (the gateway process's CPU time per
proxied request: what the gateway costs whatever else the machine does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from benchmarks.harness import BenchContext, drop_namespace
from services.gateway.create_admin import create_admin
from services.gateway.settings import GatewaySettings
from services.registry.demo import seed
from shared.identity import Identity, SignedIdentity, acting_as
from shared.messaging.topics import ensure_topics

REQUESTS = 1_000
WARMUP = 50
READY_TIMEOUT_S = 120.0
ADMIN = ("benchadmin", "bench-pass-1")
REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _server(module: str, env: dict[str, str], url: str, ready: str) -> AsyncIterator[int]:
    """``python -m <module>`` until ``url + ready`` answers 200; terminated (then killed) on the way out."""
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{module}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, env=env, cwd=REPO, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"{module} exited with {proc.returncode}; log: {_tail(log.name)}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(ready)).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{module} not ready after {READY_TIMEOUT_S:g}s; log: {_tail(log.name)}")
                await asyncio.sleep(0.2)
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 25)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
        with contextlib.suppress(OSError):
            os.unlink(log.name)


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tail(path: str, chars: int = 2000) -> str:
    return Path(path).read_text(errors="replace")[-chars:]


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = [s * 1000 for s in seconds]
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return q[49], q[98]


async def _get(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = await client.get(path, headers=headers)
    elapsed = time.perf_counter() - t0
    if r.status_code != 200 or len(r.json()["items"]) != 10:
        raise RuntimeError(f"GET {client.base_url}{path}: {r.status_code} {r.text[:300]}")
    return elapsed


async def _timed(
    direct: tuple[httpx.AsyncClient, str, dict[str, str]], proxied: tuple[httpx.AsyncClient, str, dict[str, str]]
) -> tuple[list[float], list[float]]:
    """The two runs interleaved (direct, proxied, direct, …), so a machine busy with other work weighs on both
    alike and the difference stays the gateway's."""
    for _ in range(WARMUP):
        await _get(*direct)
        await _get(*proxied)
    direct_s: list[float] = []
    proxied_s: list[float] = []
    for _ in range(REQUESTS):
        direct_s.append(await _get(*direct))
        proxied_s.append(await _get(*proxied))
    return direct_s, proxied_s


async def bench(ctx: BenchContext) -> None:
    httpx_log = logging.getLogger("httpx")
    level = httpx_log.level
    httpx_log.setLevel(logging.WARNING)  # a log line per request would be timed with it
    try:
        await _bench(ctx)
    finally:
        httpx_log.setLevel(level)


async def _bench(ctx: BenchContext) -> None:
    namespace = "b" + uuid.uuid4().hex[:8]
    registry_port, gateway_port = _free_port(), _free_port()
    registry_url = f"http://127.0.0.1:{registry_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    closed = f"http://127.0.0.1:{_free_port()}"  # the other services are not running (not on this path)
    settings = GatewaySettings(
        kafka_bootstrap=ctx.kafka_bootstrap,
        mongo_url=ctx.mongo_url,
        namespace=namespace,
        registry_url=registry_url,
        activities_url=closed,
        reporting_url=closed,
        notifier_url=closed,
    )
    await ensure_topics(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STVS_", "OTEL_"))}
    env.update(
        STVS_KAFKA_BOOTSTRAP=ctx.kafka_bootstrap,
        STVS_MONGO_URL=ctx.mongo_url,
        STVS_NAMESPACE=namespace,
        STVS_HTTP_HOST="127.0.0.1",
        STVS_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    registry_env = {**env, "STVS_HTTP_PORT": str(registry_port)}
    gateway_env = {
        **env,
        "STVS_HTTP_PORT": str(gateway_port),
        "STVS_REGISTRY_URL": registry_url,
        "STVS_ACTIVITIES_URL": closed,
        "STVS_REPORTING_URL": closed,
        "STVS_NOTIFIER_URL": closed,
    }
    secret = settings.internal_token.get_secret_value()
    province = Identity(subject="bench:province-office", role="province_admin", display_name="省科协（基准）")
    try:
        await create_admin(settings, *ADMIN, "省级管理员")
        async with (
            _server("services.registry", registry_env, registry_url, "/readyz"),
            _server("services.gateway", gateway_env, gateway_url, "/healthz") as gateway_pid,
            httpx.AsyncClient(base_url=registry_url, timeout=30, auth=SignedIdentity(secret, "registry")) as direct,
            httpx.AsyncClient(base_url=gateway_url, timeout=30) as proxied,
        ):
            seeded = await seed(direct, lambda: acting_as(province))
            if len(seeded.units) < 10:
                raise RuntimeError(f"the demo seed made only {len(seeded.units)} units")
            r = await proxied.post("/api/v1/auth/signin", json={"username": ADMIN[0], "password": ADMIN[1]})
            if r.status_code != 200:
                raise RuntimeError(f"sign-in: {r.status_code} {r.text}")
            bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
            identity = acting_as(province)  # signed for each request, as the gateway does
            cpu_before = _cpu_s(gateway_pid)
            direct_s, proxied_s = await _timed(
                (direct, "/units?limit=10", identity), (proxied, "/api/v1/units?limit=10", bearer)
            )
            gateway_cpu_ms = (_cpu_s(gateway_pid) - cpu_before) * 1000 / (REQUESTS + WARMUP)
    finally:
        await drop_namespace(settings.mongo_url, namespace)

    direct_p50, direct_p99 = _percentiles(direct_s)
    proxied_p50, proxied_p99 = _percentiles(proxied_s)
    ctx.report("proxied_p50_ms", proxied_p50)
    ctx.report("proxied_p99_ms", proxied_p99)
    ctx.report("direct_p50_ms", direct_p50)
    ctx.report("direct_p99_ms", direct_p99)
    ctx.report("overhead_p50_ms", proxied_p50 - direct_p50)
    ctx.report("gateway_cpu_ms_per_request", gateway_cpu_ms)
