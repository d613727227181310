"""``make fuzz``: schemathesis against the gateway's merged OpenAPI document, on a platform started for the run.

    uv run python -m tests.gateway.fuzz [--max-examples 20] [--max-time 300] [--workers 2] [--phases ...]

Kafka and MongoDB: ``STVS_KAFKA_BOOTSTRAP`` + ``STVS_MONGO_URL`` when set, else the local runner on the test ports
(as ``make test``). The five services start as subprocesses in a fresh namespace (as the end-to-end test does), a
province admin is created and signed in, a small hierarchy is seeded (so that generated ids sometimes hit real
documents), and schemathesis runs twice with the admin's bearer token: per operation (examples, coverage, fuzzing)
and stateful (sequences of calls following the document's links), each bounded in examples and time. Checks: no 5xx,
responses conform to their documented schema. Then the gateway's limits are probed (body size, upload size, sign-in
and verification rates) and must still hold. Exit status 0 only when every part passed; the services' logs and
schemathesis' reports are kept in the printed directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from infra.local.runner import REPO_ROOT, Endpoints
from shared.messaging.topics import ensure_topics
from shared.settings import ServiceSettings
from tests.e2e.test_platform import SERVICES, free_ports, stop, wait_healthy
from tests.registry.helpers import CONTACT, volunteer_body

ADMIN = ("fuzz-admin", "fuzz-admin-pass-1")
# Ending the fuzzer's own session would turn the rest of the run into 401s.
EXCLUDED_PATHS = ("/api/v1/auth/signout", "/api/v1/auth/password")
CHECKS = "not_a_server_error,response_schema_conformance"
MAX_BODY = 64 * 1024
MAX_UPLOAD = 2 * 1024 * 1024
SIGNIN_RATE = 10
VERIFY_RATE = 30


@contextlib.contextmanager
def infrastructure() -> Iterator[Endpoints]:
    given = os.environ.get("STVS_KAFKA_BOOTSTRAP"), os.environ.get("STVS_MONGO_URL")
    if given[0] and given[1]:
        yield Endpoints(kafka_bootstrap=given[0], mongo_url=given[1])
        return
    from tests.conftest import _local_runner

    with _local_runner() as endpoints:
        yield endpoints


@contextlib.asynccontextmanager
async def platform(infra: Endpoints, logs: Path) -> AsyncIterator[str]:
    """The five services as subprocesses; yields the gateway's base URL."""
    namespace = "fz" + uuid.uuid4().hex[:10]
    settings = ServiceSettings(kafka_bootstrap=infra.kafka_bootstrap, mongo_url=infra.mongo_url, namespace=namespace)
    await ensure_topics(settings, partitions=3)
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STVS_", "OTEL_"))}
    env.update(
        STVS_KAFKA_BOOTSTRAP=infra.kafka_bootstrap,
        STVS_MONGO_URL=infra.mongo_url,
        STVS_NAMESPACE=namespace,
        STVS_INTERNAL_TOKEN=f"fuzz-internal-token-{namespace}-{os.getpid():08d}",
        STVS_HTTP_HOST="127.0.0.1",
        STVS_REGISTRY_URL=urls["registry"],
        STVS_ACTIVITIES_URL=urls["activities"],
        STVS_REPORTING_URL=urls["reporting"],
        STVS_NOTIFIER_URL=urls["notifier"],
        STVS_SMTP_PORT=str(free_ports(1)[0]),  # nothing listens: no e-mail leaves the machine
        STVS_ACCESS_TTL_S="7200",  # one token for the whole run
        STVS_MAX_BODY_BYTES=str(MAX_BODY),
        STVS_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        STVS_SIGNIN_RATE_PER_MIN=str(SIGNIN_RATE),
        STVS_VERIFY_RATE_PER_MIN=str(VERIFY_RATE),
        PYTHONUNBUFFERED="1",
    )
    processes: dict[str, asyncio.subprocess.Process] = {}
    try:
        for name in SERVICES:
            with (logs / f"{name}.log").open("wb") as log:
                processes[name] = await asyncio.create_subprocess_exec(
                    sys.executable,
                    *("-m", f"services.{name}"),
                    cwd=REPO_ROOT,
                    env={**env, "STVS_HTTP_PORT": str(ports[name])},
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                )
            await wait_healthy(name, urls[name], processes[name], logs, timeout_s=180)
        made = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "services.gateway.create_admin", "--username", ADMIN[0], "--password", ADMIN[1]),
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await made.communicate()
        if made.returncode != 0:
            raise RuntimeError(output.decode(errors="replace"))
        yield urls["gateway"]
    finally:
        await stop(processes)


async def sign_in(api: str) -> tuple[str, str]:
    """(access token, account id) of the fuzzing admin."""
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        r = await client.post("/auth/signin", json={"username": ADMIN[0], "password": ADMIN[1]})
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return str(body["access_token"]), str(body["account"]["id"])


async def seed(api: str, auth: dict[str, str]) -> None:
    """A province corps, one volunteer in it, and the OpenAPI document fetched once every service answered."""
    async with httpx.AsyncClient(base_url=api, timeout=30, headers=auth) as client:
        corps = await client.post(
            "/units",
            json={
                "kind": "province_corps",
                "leaders": [{"name": "张总队", "role": "总队长"}, {"name": "王副总", "role": "副总队长"}],
                "phone": "0311-85012345",
                "contact": CONTACT,
            },
        )
        corps.raise_for_status()
        r = await client.post("/volunteers", json=volunteer_body(3, unit_id=corps.json()["id"]))
        r.raise_for_status()


def schemathesis(
    gateway: str, token: str, account_id: str, phases: str, args: argparse.Namespace, reports: Path, name: str
) -> int:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        *("run", f"{gateway}/openapi.json"),
        *("--url", gateway),
        *("--checks", CHECKS),
        *("--phases", phases),
        *("--max-examples", str(args.max_examples)),
        *("--max-time", str(args.max_time)),
        *("--workers", str(args.workers)),
        *("--header", f"Authorization: Bearer {token}"),
        *("--request-timeout", "30"),
        *("--generation-database", "none"),
        *("--report", "junit,ndjson"),
        *("--report-dir", str(reports / name)),
        "--no-color",
        "--continue-on-failure",
        "--suppress-health-check",
        "all",
        "--exclude-path-regex",
        "^(" + "|".join(EXCLUDED_PATHS) + ")$",
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    print(f"\n==== schemathesis ({name}: {phases})", flush=True)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.gateway.fuzz_hooks", "STVS_FUZZ_PROTECTED_ACCOUNT": account_id}
    return subprocess.run(command, cwd=REPO_ROOT, env=env, check=False).returncode


async def probe_limits(api: str, auth: dict[str, str]) -> list[str]:
    """The limits still hold after the fuzzing: 413 for bodies and uploads over the limit, 429 for sign-in and
    verification floods; answers are problem documents."""
    failures: list[str] = []

    def expect(what: str, r: httpx.Response, status: int) -> None:
        ok = r.status_code == status and r.headers.get("content-type") == "application/problem+json"
        print(f"  {'ok ' if ok else 'BAD'} {what}: {r.status_code}")
        if not ok:
            failures.append(f"{what}: expected {status}, got {r.status_code} {r.text[:200]}")

    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        big = b"{" + b" " * MAX_BODY + b"}"
        r = await client.post("/units", content=big, headers={**auth, "Content-Type": "application/json"})
        expect("JSON body over STVS_MAX_BODY_BYTES", r, 413)
        upload = b"u" * (MAX_UPLOAD + 1)
        files = {"file": ("x.xlsx", upload, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}
        r = await client.post("/forms/volunteers/import", files=files, headers=auth)
        expect("upload over STVS_MAX_UPLOAD_BYTES", r, 413)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(MAX_BODY // 4096 + 2):
                yield b" " * 4096

        r = await client.post("/units", content=chunks(), headers={**auth, "Content-Type": "application/json"})
        expect("streamed body (no Content-Length) over the limit", r, 413)
        for _ in range(SIGNIN_RATE):
            await client.post("/auth/signin", json={"username": "flood", "password": "wrong-password"})
        r = await client.post("/auth/signin", json={"username": "flood", "password": "wrong-password"})
        expect(f"sign-in attempt {SIGNIN_RATE + 1} within a minute", r, 429)
        for _ in range(VERIFY_RATE):
            await client.get("/public/certificates/ZM20260101-0000000000-00000000")
        r = await client.get("/public/certificates/ZM20260101-0000000000-00000000")
        expect(f"certificate verification {VERIFY_RATE + 1} within a minute", r, 429)
        me = await client.get("/auth/me", headers=auth)
        print(
            f"  {'ok ' if me.status_code == 200 else 'BAD'} the fuzzing admin's session still works: {me.status_code}"
        )
    return failures


async def run(args: argparse.Namespace, out: Path) -> int:
    print(f"logs and reports: {out}", flush=True)
    with infrastructure() as infra:
        async with platform(infra, out) as gateway:
            api = gateway + "/api/v1"
            token, account_id = await sign_in(api)
            auth = {"Authorization": f"Bearer {token}"}
            await seed(api, auth)
            codes = {}
            loop = asyncio.get_running_loop()
            for name, phases in (("operations", args.phases), ("stateful", "stateful")):
                if name == "stateful" and args.no_stateful:
                    continue
                codes[name] = await loop.run_in_executor(
                    None, schemathesis, gateway, token, account_id, phases, args, out, name
                )
            print("\n==== limits after fuzzing", flush=True)
            failures = await probe_limits(api, auth)
            errors = server_errors(out)
    print("\n==== summary")
    for name, code in codes.items():
        print(f"  schemathesis {name}: {'passed' if code == 0 else f'FAILED (exit {code})'}")
    print(f"  limits: {'hold' if not failures else 'BROKEN: ' + '; '.join(failures)}")
    print(f"  tracebacks in the services' logs: {len(errors)}")
    for line in errors[:20]:
        print("   ", line)
    return 0 if all(c == 0 for c in codes.values()) and not failures else 1


def server_errors(logs: Path) -> list[str]:
    """Unhandled exceptions the services logged (the 5xx schemathesis saw, with their tracebacks)."""
    found = []
    for name in SERVICES:
        text = (logs / f"{name}.log").read_text(errors="replace")
        found += [f"{name}: {line[:300]}" for line in text.splitlines() if '"level": "ERROR"' in line]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=20, help="test cases per operation (default 20)")
    parser.add_argument("--max-time", type=int, default=300, help="seconds per schemathesis run (default 300)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--phases", default="examples,coverage,fuzzing", help="phases of the per-operation run")
    parser.add_argument("--no-stateful", action="store_true", help="skip the stateful run")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=None, help="directory for logs and reports (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="stvs-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(run(args, out)))


if __name__ == "__main__":
    main()
