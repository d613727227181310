"""Open-loop load of mixed gateway traffic on the whole platform at increasing rates (issue 9, "Load").

The five services run as real processes (``infra.local.fleet.Fleet``: registry, activities, reporting, notifier,
gateway) on the run's Kafka and SecantusDB, in a fresh namespace. Seeded through the gateway only: the demo hierarchy
(``services.registry.demo.seed``: the province corps, 13 city detachments and 雄安新区, a society, a university, an
enterprise, a county team, a sub-team, 37 volunteers); a ``unit_admin`` account for each of 3 city detachments
(石家庄, 保定, 唐山); 700 volunteers per city from the 附件2 spreadsheet import (2,100;
``STVS_BENCH_LOAD_VOLUNTEERS_PER_CITY``); per city two activities open for sign-up and one under way (started) with
60 confirmed sign-ups waiting to check in.

Then an OPEN-LOOP load: request *i* of a step is started at ``t0 + i/rate`` whether or not the earlier ones have
answered, and its latency counts from that scheduled instant (no coordinated omission: a stalled platform shows as
latency, not as a lower offered rate). Each request is drawn from this mix (weights in %), by the city admins:

=================================  ======  =============================================================
request                            weight  what
=================================  ======  =============================================================
``GET /units/{city}/subtree``      8       the unit tree of the city (registry)
``GET /units?limit=20``            8       unit list (registry)
``GET /volunteers/{id}``           9       one volunteer (registry)
``GET /volunteers?unit_id={city}`` 5       the city's volunteers, first page of 20 (registry)
``GET /activities?limit=20``       10      activity listing (activities)
``GET /activities/{id}``           10      one activity (activities)
``GET /stats/units/{city}``        10      the city's statistics (reporting)
``GET /stats/volunteers/{id}``     10      one volunteer's service record (reporting)
``POST /volunteers``               10      a new volunteer registered into the city (registry)
``POST /activities/{id}/signups``  12      an imported volunteer signed up, open or ongoing activity
``POST …/checkin``, ``…/checkout`` 8       attendance of a confirmed volunteer on the ongoing activity
=================================  ======  =============================================================

i.e. 70 % reads and 30 % writes. After the ramp the city's volunteer listing is also timed on its own
(``volunteer_search_ms``, median of 5 sequential calls).

After a warm-up of 10 s at the first rate that is not counted (``STVS_BENCH_LOAD_WARMUP_S``; its writes are checked
like the others), steps of 20 s (``STVS_BENCH_LOAD_STEP_S``) at 5, 10, 20, 40, 80, 160, 320 req/s
(``STVS_BENCH_LOAD_RATES``; ``STVS_BENCH_LOAD_REPLICAS`` processes of every service, 1), stopping after the
first step whose p99 passes 250 ms or that has an error (any non-2xx or transport failure), or when the time budget
(560 s from the start, seeding included) is spent. Between steps the stragglers are awaited (at most 35 s).

Per step (figures prefixed ``r<rate>_``): ``achieved_per_s`` (answers in the step / its duration), ``p50_ms``,
``p99_ms``, ``p999_ms``, ``errors``, ``event_lag_p50_ms`` / ``event_lag_max_ms`` (sampled registrations, at most
two a second: from the gateway's 201 until reporting's projection serves ``/stats/volunteers/{id}``, polled every
50 ms on the reporting service directly) and ``consumer_lag_max`` (largest total lag of the namespace's consumer
groups, end offsets minus committed, read from Kafka every 2 s) and ``cpu_ms_per_request_<process>`` (each process's
CPU time in the step over the requests answered — gateway, each service, Kafka, SecantusDB, this client — and their
``total``: what one request of the mix costs the machine, a figure that holds on a busy machine where the latencies
do not). At the end: ``max_sustained_per_s`` (the last step
with p99 ≤ 250 ms and no error, 0 if none) and its ratios to the ceiling's ``mongo_insert_docs_per_s`` and
``kafka_produce_events_per_s``; the peak memory (VmHWM) of each process ``rss_<name>_mb`` (and of Kafka and SecantusDB
when their pids are readable by port: on shared infrastructure they include other work); ``accepted_writes``,
``duplicated`` and ``lost``.

Nothing may be lost: after the load every accepted (2xx) write is checked where it should land — each city's
volunteer count in reporting equals the seeded ones plus the accepted registrations; the local copies of the
volunteers in activities, notifier and gateway hold every registered volunteer; each activity's roster (activities)
and the notifier's copy of it hold every accepted sign-up; every accepted check-in and check-out is on the
attendance list; and once the ongoing activities complete, reporting's participations equal the accepted check-ins.
``lost`` and ``duplicated`` must be 0, else the benchmark fails (after printing its figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import random
import shutil
import signal
import statistics
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import xlsxwriter
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.harness import BenchContext, drop_namespace
from infra.local.fleet import Fleet
from infra.local.runner import Endpoints
from services.registry.adapters.spreadsheets.forms import VOLUNTEERS
from services.registry.demo import seed
from services.registry.domain.fields import id_check_char
from shared.contracts.events import VOLUNTEERS as VOLUNTEER_STREAM
from shared.identity import Identity, SignedIdentity, acting_as
from shared.storage import mongo_client

RATES = [float(r) for r in os.environ.get("STVS_BENCH_LOAD_RATES", "5,10,20,40,80,160,320").split(",")]
STEP_S = float(os.environ.get("STVS_BENCH_LOAD_STEP_S", "20"))
# Before the first step, traffic at its rate that is not counted: the first requests of each kind open the gateway's
# connections to the services and load code paths (their writes are checked like every other).
WARMUP_S = float(os.environ.get("STVS_BENCH_LOAD_WARMUP_S", "10"))
IMPORT_PER_CITY = int(os.environ.get("STVS_BENCH_LOAD_VOLUNTEERS_PER_CITY", "700"))
REPLICAS = int(
    os.environ.get("STVS_BENCH_LOAD_REPLICAS", "1")
)  # processes of every service (the gateway's share a port)
P99_LIMIT_MS = 250.0
REQUEST_TIMEOUT_S = 30.0
DRAIN_S = 35.0  # stragglers of a step: at most the request timeout, then the next step
SETTLE_S = 150.0  # after the load, for every accepted write to reach its projections
BUDGET_S = 560.0  # from the start of the benchmark to the end of the last step (the harness stops it at 900 s)
LAG_POLL_S = 0.05
LAG_SAMPLE_EVERY_S = 0.5  # at most two registrations probed per second
LAG_PROBE_TIMEOUT_S = 60.0
KAFKA_LAG_EVERY_S = 2.0
CITIES = ("shijiazhuang", "baoding", "tangshan")
ONGOING_SIGNUPS = 60  # per city, confirmed before the load: the first check-ins
OPEN_ACTIVITIES = 2  # per city
SHANGHAI = ZoneInfo("Asia/Shanghai")
PROVINCE = ("benchprovince", "bench-province-pass-1")
ADMIN_PASSWORD = "bench-city-pass-1"

# (kind, weight %): documented in the module docstring
MIX: list[tuple[str, int]] = [
    ("units_subtree", 8),
    ("units_list", 8),
    ("volunteer_get", 9),
    ("volunteers_list", 5),
    ("activities_list", 10),
    ("activity_get", 10),
    ("unit_stats", 10),
    ("volunteer_stats", 10),
    ("register", 10),
    ("signup", 12),
    ("attendance", 8),
]
WRITES = {"register", "signup", "checkin", "checkout"}

log = logging.getLogger("benchmarks.load")


# ---------------------------------------------------------------- data


def _import_id(seq: int) -> str:
    """Volunteers of the 附件2 import: born 1960-…, distinct per seq (< 180,000)."""
    first17 = f"130102{date(1960, 1, 1) + timedelta(days=seq // 500):%Y%m%d}{(seq % 500) * 2 + 1:03d}"
    return first17 + id_check_char(first17)


def _new_id(seq: int) -> str:
    """Volunteers registered under load: born 2000-…, never the import's or the demo's numbers."""
    first17 = f"130104{date(2000, 1, 1) + timedelta(days=seq // 500):%Y%m%d}{(seq % 500) * 2 + 1:03d}"
    return first17 + id_check_char(first17)


def _person(seq: int) -> dict[str, str]:
    return {
        "name": f"志愿{chr(0x4E00 + seq % 20000)}{chr(0x4E00 + (seq // 20000) % 20000)}",
        "gender": "男",
        "mobile": f"138{seq % 10**8:08d}",
        "email": f"v{seq}@example.com",
        "employer": "河北省农林科学院",
        "title": "农艺师",
        "title_level": "中级",
        "education": "大学本科",
        "professional_field": "果树栽培",
        "political_status": "群众",
    }


def _workbook(rows: list[dict[str, str]]) -> bytes:
    """A 附件2 workbook (the collective registration form) holding ``rows`` as text cells."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet(VOLUNTEERS.sheet_name)
    for i, column in enumerate(VOLUNTEERS.columns):
        sheet.write_string(0, i, column.header)
    for r, row in enumerate(rows, start=1):
        for i, column in enumerate(VOLUNTEERS.columns):
            if (value := row.get(column.key)) is not None:
                sheet.write_string(r, i, value)
    book.close()
    return buffer.getvalue()


def _activity(
    city: str, title: str, *, now: datetime, starts_in: timedelta, lasts: timedelta, capacity: int
) -> dict[str, Any]:
    """An activity relative to the fleet's programme clock (`now`), which is not the wall clock."""
    now = now.replace(microsecond=0)
    starts = now + starts_in
    return {
        "title": title,
        "description": "科技志愿服务负载测试活动",
        "unit_id": city,
        "line_of_work": "community_school",
        "themes": ["poverty_health"],
        "target_groups": ["社区居民"],
        "place": "社区科普活动中心",
        "county": "长安区",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + lasts).isoformat(),
        "capacity": capacity,
        "signup_opens_at": (now - timedelta(hours=3)).isoformat(),
        "signup_closes_at": (now + timedelta(hours=3)).isoformat(),
    }


# ---------------------------------------------------------------- state of the seeded platform


@dataclass
class City:
    code: str
    id: str
    name: str
    auth: dict[str, str] = field(default_factory=dict)
    volunteers: list[str] = field(default_factory=list)  # imported, known everywhere before the load
    open_activities: list[str] = field(default_factory=list)
    ongoing: str = ""
    # sign-up candidates per activity: imported volunteers not yet signed up there
    candidates: dict[str, deque[str]] = field(default_factory=dict)
    to_check_in: deque[str] = field(default_factory=deque)  # confirmed on the ongoing activity
    to_check_out: deque[str] = field(default_factory=deque)
    # accepted writes (2xx), checked against the projections at the end
    registered: list[str] = field(default_factory=list)
    signed: dict[str, int] = field(default_factory=dict)  # activity -> sign-ups accepted (seeding included)
    checked_in: set[str] = field(default_factory=set)
    checked_out: set[str] = field(default_factory=set)
    base_volunteers: int = 0  # reporting's count for the city before the load


@dataclass
class Step:
    rate: float
    latencies_ms: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    answered: int = 0
    event_lags_ms: list[float] = field(default_factory=list)
    lag_probes_failed: int = 0
    consumer_lag_max: int = 0
    duration_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds each process spent during the step

    def percentile(self, q: float, kind: str | None = None) -> float:
        values = self.latencies_ms if kind is None else self.by_kind.get(kind, [])
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def record(self, kind: str, started: float) -> None:
        ms = (time.monotonic() - started) * 1000
        self.latencies_ms.append(ms)
        self.by_kind.setdefault(kind, []).append(ms)

    def cpu_ms_per_request(self) -> dict[str, float]:
        """Each process's CPU time in the step over the requests answered: what a request costs, whatever the
        machine's other load (the latencies are not)."""
        answered = max(1, self.answered)
        per = {name: seconds * 1000 / answered for name, seconds in self.cpu_s.items()}
        return {**per, "total": sum(per.values())} if per else {}

    def cpu_per_request(self) -> str:
        return ", ".join(f"{name} {ms:.1f}" for name, ms in sorted(self.cpu_ms_per_request().items()))

    def kinds(self) -> str:
        return ", ".join(
            f"{k} {len(v)}× p50 {self.percentile(0.5, k):.0f}/p99 {self.percentile(0.99, k):.0f}"
            for k, v in sorted(self.by_kind.items())
        )


# ---------------------------------------------------------------- small helpers


def _ok(r: httpx.Response, *statuses: int) -> Any:
    if r.status_code not in (statuses or (200,)):
        raise RuntimeError(f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:500]}")
    return r.json()


async def _eventually(what: str, probe: Callable[[], Awaitable[Any]], timeout_s: float, every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(every_s)
    raise RuntimeError(f"timed out after {timeout_s:g}s waiting for {what} (last: {str(last)[:300]})")


async def _signin(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    body = _ok(await client.post("/auth/signin", json={"username": username, "password": password}))
    return {"Authorization": f"Bearer {body['access_token']}"}


def _pids_listening(port: int) -> set[int]:
    """Pids of the processes holding a listening TCP socket on ``port`` (readable ones only)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    pids: set[int] = set()
    if not inodes:
        return pids
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        pids.add(int(proc.name))
                        break
    return pids


def _vm_hwm_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def _cpu_by_process(fleet: Fleet, endpoints: Endpoints) -> dict[str, float]:
    """CPU seconds so far of every process of the run: the services, Kafka, SecantusDB and this client."""
    pids: dict[str, list[int]] = {"client": [os.getpid()]}
    for name in fleet.instances:
        pid = fleet.pid(name)
        if pid is not None:
            pids.setdefault(name.split("-")[0], []).append(pid)
    for name, url in (("kafka", endpoints.kafka_bootstrap), ("secantus", endpoints.mongo_url)):
        port = _port_of(url)
        if port is not None:
            pids[name] = sorted(_pids_listening(port))
    return {name: sum(_cpu_seconds(pid) or 0.0 for pid in group) for name, group in pids.items()}


def _port_of(url: str) -> int | None:
    """Port of ``host:port`` or ``mongodb://host:port/…``, when on this machine."""
    hostport = url.split("://", 1)[-1].split("/", 1)[0].split(",", 1)[0].rsplit("@", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]") or not port.isdigit():
        return None
    return int(port)


def _infra_rss(endpoints: Endpoints) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, url in (("kafka", endpoints.kafka_bootstrap), ("secantus", endpoints.mongo_url)):
        port = _port_of(url)
        if port is None:
            continue
        peaks = [mb for pid in _pids_listening(port) if (mb := _vm_hwm_mb(pid)) is not None]
        if peaks:
            out[name] = max(peaks)
    return out


class Kafka:
    """Offsets of the namespace: a topic's size, and the lag of its consumer groups."""

    def __init__(self, bootstrap: str, namespace: str) -> None:
        self.prefix = namespace + "."
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)

    async def __aenter__(self) -> Kafka:
        await self.admin.start()
        await self.probe.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.probe.stop()
        await self.admin.close()

    async def on_topic(self, topic: str, expected: int) -> bool:
        """At least ``expected`` records on ``topic`` (end offsets; nothing is compacted or deleted here)."""
        await self.probe._client.force_metadata_update()
        partitions = self.probe.partitions_for_topic(topic) or set()
        ends = await self.probe.end_offsets([TopicPartition(topic, p) for p in partitions]) if partitions else {}
        return bool(sum(ends.values()) >= expected)

    async def lag(self) -> int:
        """End offsets minus committed offsets, summed over the namespace's consumer groups."""
        groups = [str(g[0]) for g in await self.admin.list_consumer_groups() if str(g[0]).startswith(self.prefix)]
        total = 0
        for group in groups:
            committed = await self.admin.list_consumer_group_offsets(group)
            if committed:
                ends = await self.probe.end_offsets(list(committed))
                total += sum(max(ends.get(tp, 0) - max(meta.offset, 0), 0) for tp, meta in committed.items())
        return total

    async def caught_up(self) -> bool:
        return await self.lag() == 0


# ---------------------------------------------------------------- the benchmark


async def bench(ctx: BenchContext) -> None:
    quiet = [logging.getLogger(n) for n in ("httpx", "httpcore")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.WARNING)  # a log line per request would be timed with it
    began = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="bench-load-"))
    namespace = "b" + uuid.uuid4().hex[:8]
    endpoints = Endpoints(kafka_bootstrap=ctx.kafka_bootstrap, mongo_url=ctx.mongo_url)
    fleet = Fleet(
        endpoints,
        namespace=namespace,
        logs=logs,
        env={"STVS_ACCESS_TTL_S": "7200", "STVS_LOG_LEVEL": "WARNING"},
        replicas=REPLICAS,
    )
    failed = True
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:  # SIGTERM (e.g. `timeout`) ends the run like Ctrl-C: the processes are stopped
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        async with fleet:
            try:
                await Load(ctx, fleet, endpoints, began).run()
                failed = False
            except BaseException:
                print(fleet.tail(lines=30), flush=True)
                raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
        await drop_namespace(ctx.mongo_url, namespace)
        if failed:
            print(f"load: service logs kept in {logs}", flush=True)
        else:
            shutil.rmtree(logs, ignore_errors=True)


class Load:
    def __init__(self, ctx: BenchContext, fleet: Fleet, endpoints: Endpoints, began: float) -> None:
        self.ctx = ctx
        self.fleet = fleet
        self.endpoints = endpoints
        self.rng = random.Random(20260409)
        self.cities: list[City] = []
        self.province: dict[str, str] = {}
        self.next_seq = 0
        self.year = fleet.clock.now().astimezone(SHANGHAI).year
        self.secret = fleet.env["STVS_INTERNAL_TOKEN"]
        self.in_flight: set[asyncio.Task[None]] = set()
        self.probes: set[asyncio.Task[None]] = set()
        self.last_probe = 0.0
        self.began = began
        self.kinds = [k for k, _ in MIX]
        self.weights = [w for _, w in MIX]

    # ---- seeding
    async def run(self) -> None:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=5.0)
        async with (
            httpx.AsyncClient(base_url=self.fleet.api, timeout=120.0) as setup,
            httpx.AsyncClient(base_url=self.fleet.api, timeout=timeout, limits=limits) as client,
            httpx.AsyncClient(
                base_url=self.fleet.url("reporting"), timeout=5.0, auth=SignedIdentity(self.secret, "reporting")
            ) as reporting,
        ):
            started = time.monotonic()
            await self.seed(setup)
            print(f"load: seeded in {time.monotonic() - started:.0f} s", flush=True)
            steps = await self.ramp(client, reporting)
            await self.volunteer_search(setup)
            await self.verify(setup, steps)

    async def seed(self, client: httpx.AsyncClient) -> None:
        began = time.monotonic()

        def mark(what: str) -> None:
            print(f"load: seeding: {what} at {time.monotonic() - began:.0f} s", flush=True)

        await self.fleet.create_admin(*PROVINCE)
        self.province = await _signin(client, *PROVINCE)
        province = self.province
        seeded = await seed(client, lambda: province)
        if len(seeded.units) < 20:
            raise RuntimeError(f"the demo seed made only {len(seeded.units)} units")
        mark(f"demo hierarchy ({len(seeded.units)} units, {seeded.created_volunteers} volunteers)")
        listed = _ok(await client.get("/units", params={"kind": "city_detachment", "limit": 50}, headers=province))
        by_code = {u["city"]: u for u in listed["items"]}
        for code in CITIES:
            unit = by_code[code]
            city = City(code=code, id=unit["id"], name=unit["name"])
            body = {
                "username": f"bench_{code}",
                "password": ADMIN_PASSWORD,
                "role": "unit_admin",
                "unit_id": city.id,
                "display_name": f"{unit['name']}管理员",
            }
            _ok(await client.post("/accounts", json=body, headers=province), 201)
            city.auth = await _signin(client, f"bench_{code}", ADMIN_PASSWORD)
            self.cities.append(city)

        for city in self.cities:  # the gateway learns the units from the registry's events

            async def sees(c: City = city) -> bool:
                return (await client.get(f"/units/{c.id}", headers=c.auth)).status_code == 200

            await _eventually(f"the gateway to know {city.name}", sees, 60)

        mark("city admins")
        # 附件2: the collective registration of IMPORT_PER_CITY volunteers per city, by the city's admin
        for n, city in enumerate(self.cities):
            first = n * IMPORT_PER_CITY
            rows = [
                {**_person(s), "id_number": _import_id(s), "unit_name": city.name}
                for s in range(first, first + IMPORT_PER_CITY)
            ]
            files = {"file": ("附件2.xlsx", _workbook(rows), "application/vnd.ms-excel")}
            result = _ok(await client.post("/forms/volunteers/import", files=files, headers=city.auth))
            if result.get("created") != IMPORT_PER_CITY or result.get("errors"):
                raise RuntimeError(f"importing {city.name}: {str(result)[:1000]}")
            city.volunteers = await self.volunteer_ids(client, city)
            mark(f"附件2 import of {IMPORT_PER_CITY} volunteers into {city.name}")

        # activities: OPEN_ACTIVITIES open for sign-up (next week) and one under way, per city
        for city in self.cities:
            for i in range(OPEN_ACTIVITIES):
                draft = _activity(
                    city.id,
                    f"{city.name}科普讲座{i + 1}",
                    now=self.fleet.clock.now(),
                    starts_in=timedelta(days=7 + i),
                    lasts=timedelta(hours=3),
                    capacity=5000,
                )
                city.open_activities.append(await self.publish(client, city, draft))
            draft = _activity(
                city.id,
                f"{city.name}社区义诊",
                now=self.fleet.clock.now(),
                starts_in=-timedelta(hours=1),
                lasts=timedelta(hours=4),
                capacity=5000,
            )
            city.ongoing = await self.publish(client, city, draft)
            for aid in [*city.open_activities, city.ongoing]:
                pool = list(city.volunteers)
                self.rng.shuffle(pool)
                city.candidates[aid] = deque(pool)
                city.signed[aid] = 0

        mark("activities")
        # every consumer has handled every registration (its copy of the volunteers is complete) before anybody
        # signs up: all the registrations are on the topic, and no consumer group of the namespace lags
        total = sum(len(c.volunteers) for c in self.cities) + seeded.created_volunteers
        topic = self.fleet.settings.topic(VOLUNTEER_STREAM)
        async with Kafka(self.endpoints.kafka_bootstrap, self.fleet.namespace) as kafka:
            await _eventually(f"{total} registrations on {topic}", lambda: kafka.on_topic(topic, total), 120)
            await _eventually("the consumers to catch up", kafka.caught_up, 400, every_s=1.0)
        mark("every consumer has the volunteers")
        # the first ONGOING_SIGNUPS of each city sign up for the ongoing activity (once the activities service
        # knows them from the registry's events), then it starts
        for city in self.cities:
            first_vid = city.candidates[city.ongoing][0]

            async def known(c: City = city, v: str = first_vid) -> bool:
                r = await client.post(f"/activities/{c.ongoing}/signups", json={"volunteer_id": v}, headers=c.auth)
                if r.status_code == 201:
                    return True
                if r.status_code == 422 and r.json().get("code") in ("volunteer_unknown", "volunteer_inactive"):
                    return False
                raise RuntimeError(f"seeding sign-up: {r.status_code} {r.text[:300]}")

            await _eventually(f"the activities service to know {city.name}'s volunteers", known, 120)
            city.candidates[city.ongoing].popleft()
            city.signed[city.ongoing] += 1
            city.to_check_in.append(first_vid)
        sem = asyncio.Semaphore(6)

        async def sign(city: City, vid: str) -> None:
            async with sem:
                r = await client.post(
                    f"/activities/{city.ongoing}/signups", json={"volunteer_id": vid}, headers=city.auth
                )
            body = _ok(r, 201)
            city.signed[city.ongoing] += 1
            if body["status"] == "confirmed":
                city.to_check_in.append(vid)

        jobs = []
        for city in self.cities:
            for _ in range(ONGOING_SIGNUPS - 1):
                jobs.append(sign(city, city.candidates[city.ongoing].popleft()))
        mark("the activities service knows the volunteers")
        await asyncio.gather(*jobs)
        mark(f"{len(jobs)} sign-ups")
        for city in self.cities:
            started = _ok(await client.post(f"/activities/{city.ongoing}/start", headers=city.auth))
            if started["status"] != "ongoing":
                raise RuntimeError(f"starting {city.ongoing}: {started}")

        # reporting has every volunteer of the seed (its roll-up of the city equals the registry's count of the
        # city's subtree): the base counts of the cities
        for city in self.cities:
            registry_total = int(
                _ok(await client.get("/volunteers", params={"unit_id": city.id, "limit": 1}, headers=city.auth))[
                    "total"
                ]
            )

            async def counted(c: City = city, expected: int = registry_total) -> Any:
                stats = await self.unit_stats(client, c)
                return stats if stats and int(stats["rollup"]["volunteers"]) == expected else None

            stats = await _eventually(f"reporting to count {city.name}'s {registry_total} volunteers", counted, 120)
            city.base_volunteers = int(stats["own"]["volunteers"])
        print(
            "load: seeded "
            + ", ".join(f"{c.name} {c.base_volunteers} volunteers" for c in self.cities)
            + f"; {sum(c.signed[c.ongoing] for c in self.cities)} sign-ups on the ongoing activities",
            flush=True,
        )

    async def volunteer_ids(self, client: httpx.AsyncClient, city: City) -> list[str]:
        ids: list[str] = []
        while True:
            params: dict[str, str | int] = {"unit_id": city.id, "limit": 200, "skip": len(ids)}
            page = _ok(await client.get("/volunteers", params=params, headers=city.auth))
            ids.extend(v["id"] for v in page["items"])
            if not page["items"] or len(ids) >= page["total"]:
                return ids

    async def publish(self, client: httpx.AsyncClient, city: City, draft: dict[str, Any]) -> str:
        aid = str(_ok(await client.post("/activities", json=draft, headers=city.auth), 201)["id"])
        _ok(await client.post(f"/activities/{aid}/publish", headers=city.auth))
        return aid

    async def unit_stats(self, client: httpx.AsyncClient, city: City) -> Any:
        r = await client.get(f"/stats/units/{city.id}", params={"year": self.year}, headers=city.auth)
        return r.json() if r.status_code == 200 else None

    # ---- the load
    async def ramp(self, client: httpx.AsyncClient, reporting: httpx.AsyncClient) -> list[Step]:
        steps: list[Step] = []
        if WARMUP_S > 0:
            warm = await self.step(client, reporting, RATES[0], seconds=WARMUP_S)
            print(
                f"load: warm-up, {WARMUP_S:g} s at {RATES[0]:g} req/s (not counted): "
                f"p50 {warm.percentile(0.5):.0f} ms, p99 {warm.percentile(0.99):.0f} ms, {warm.errors} errors",
                flush=True,
            )
        for rate in RATES:
            if time.monotonic() + STEP_S + DRAIN_S > self.began + BUDGET_S:
                print(f"load: time budget spent, no step at {rate:g} req/s", flush=True)
                break
            step = await self.step(client, reporting, rate)
            steps.append(step)
            p99 = step.percentile(0.99)
            print(
                f"load: {rate:g} req/s offered: {step.answered / step.duration_s:.1f}/s answered, "
                f"p50 {step.percentile(0.5):.0f} ms, p99 {p99:.0f} ms, p999 {step.percentile(0.999):.0f} ms, "
                f"{step.errors} errors, event lag p50 {_median(step.event_lags_ms):.0f} ms "
                f"max {max(step.event_lags_ms, default=0):.0f} ms, consumer lag max {step.consumer_lag_max}",
                flush=True,
            )
            print(f"load:   by request (ms): {step.kinds()}", flush=True)
            print(f"load:   CPU per request (ms): {step.cpu_per_request()}", flush=True)
            for sample in step.error_samples:
                print(f"load:   error: {sample}", flush=True)
            if p99 > P99_LIMIT_MS or step.errors:
                break
        return steps

    async def step(
        self, client: httpx.AsyncClient, reporting: httpx.AsyncClient, rate: float, *, seconds: float = STEP_S
    ) -> Step:
        step = Step(rate)
        count = int(rate * seconds)
        watcher = asyncio.create_task(self.watch_consumer_lag(step))
        cpu_before = _cpu_by_process(self.fleet, self.endpoints)
        t0 = time.monotonic() + 0.05
        try:
            for i in range(count):
                due = t0 + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                kind = self.rng.choices(self.kinds, self.weights)[0]
                city = self.rng.choice(self.cities)
                task = asyncio.create_task(self.one(client, reporting, step, kind, city, due))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
            if self.in_flight:
                await asyncio.wait(set(self.in_flight), timeout=DRAIN_S)
            step.duration_s = max(time.monotonic() - t0, seconds)
            if self.probes:
                await asyncio.wait(set(self.probes), timeout=LAG_PROBE_TIMEOUT_S)
            cpu_after = _cpu_by_process(self.fleet, self.endpoints)
            step.cpu_s = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        return step

    async def one(
        self, client: httpx.AsyncClient, reporting: httpx.AsyncClient, step: Step, kind: str, city: City, due: float
    ) -> None:
        """One request of the mix, its latency counted from ``due`` (its scheduled start)."""
        rng = self.rng
        h = city.auth
        what = kind
        on_ok: Callable[[httpx.Response], None] | None = None
        try:
            if kind == "units_subtree":
                send = client.get(f"/units/{city.id}/subtree", params={"limit": 50}, headers=h)
            elif kind == "units_list":
                send = client.get("/units", params={"limit": 20}, headers=h)
            elif kind == "volunteer_get":
                send = client.get(f"/volunteers/{rng.choice(city.volunteers)}", headers=h)
            elif kind == "volunteers_list":
                send = client.get("/volunteers", params={"unit_id": city.id, "limit": 20}, headers=h)
            elif kind == "activities_list":
                send = client.get("/activities", params={"limit": 20}, headers=h)
            elif kind == "activity_get":
                send = client.get(f"/activities/{rng.choice([*city.open_activities, city.ongoing])}", headers=h)
            elif kind == "unit_stats":
                send = client.get(f"/stats/units/{city.id}", params={"year": self.year}, headers=h)
            elif kind == "volunteer_stats":
                send = client.get(f"/stats/volunteers/{rng.choice(city.volunteers)}", headers=h)
            elif kind == "register":
                seq = self.next_seq
                self.next_seq += 1
                body = {**_person(10**6 + seq), "id_number": _new_id(seq), "unit_id": city.id}
                body["skills"] = ["科普讲解"]  # type: ignore[assignment]
                body["service_areas"] = ["进社区进学校"]  # type: ignore[assignment]
                send = client.post("/volunteers", json=body, headers=h)

                def on_ok(r: httpx.Response, c: City = city) -> None:
                    vid = str(r.json()["id"])
                    c.registered.append(vid)
                    now = time.monotonic()
                    if now - self.last_probe >= LAG_SAMPLE_EVERY_S:
                        self.last_probe = now
                        probe = asyncio.create_task(self.probe_lag(reporting, step, vid, now))
                        self.probes.add(probe)
                        probe.add_done_callback(self.probes.discard)

            elif kind == "attendance" and (city.to_check_out or city.to_check_in):
                checkout = bool(city.to_check_out) and (not city.to_check_in or rng.random() < 0.5)
                queue = city.to_check_out if checkout else city.to_check_in
                vid = queue.popleft()
                what = "checkout" if checkout else "checkin"
                send = client.post(f"/activities/{city.ongoing}/{what}", json={"volunteer_id": vid}, headers=h)

                def on_ok(r: httpx.Response, c: City = city, v: str = vid, out: bool = checkout) -> None:
                    if out:
                        c.checked_out.add(v)
                    else:
                        c.checked_in.add(v)
                        c.to_check_out.append(v)

            else:  # a sign-up (also when no attendance is left to record)
                what = "signup"
                aid = rng.choice([a for a in [*city.open_activities, city.ongoing] if city.candidates[a]])
                vid = city.candidates[aid].popleft()
                send = client.post(f"/activities/{aid}/signups", json={"volunteer_id": vid}, headers=h)

                def on_ok(r: httpx.Response, c: City = city, a: str = aid, v: str = vid) -> None:
                    c.signed[a] += 1
                    if a == c.ongoing and r.json().get("status") == "confirmed":
                        c.to_check_in.append(v)

            r = await send
        except (httpx.HTTPError, OSError) as exc:
            step.record(what, due)
            step.errors += 1
            if len(step.error_samples) < 5:
                step.error_samples.append(f"{what}: {type(exc).__name__} {exc}")
            return
        step.record(what, due)
        step.answered += 1
        if 200 <= r.status_code < 300:
            if on_ok is not None:
                on_ok(r)
        else:
            step.errors += 1
            if len(step.error_samples) < 5:
                step.error_samples.append(
                    f"{what}: {r.request.method} {r.request.url.path} {r.status_code} {r.text[:300]}"
                )

    async def volunteer_search(self, client: httpx.AsyncClient) -> None:
        city = self.cities[0]
        times = []
        for _ in range(5):
            started = time.monotonic()
            _ok(await client.get("/volunteers", params={"unit_id": city.id, "limit": 20}, headers=city.auth))
            times.append((time.monotonic() - started) * 1000)
        self.ctx.report("volunteer_search_ms", _median(times))

    async def probe_lag(self, reporting: httpx.AsyncClient, step: Step, vid: str, accepted: float) -> None:
        """From the registration's 201 until reporting's projection serves the volunteer's record."""
        identity = Identity(subject="bench:load-probe", role="province_admin")
        headers = acting_as(identity)
        deadline = accepted + LAG_PROBE_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await reporting.get(f"/stats/volunteers/{vid}", headers=headers)).status_code == 200:
                    step.event_lags_ms.append((time.monotonic() - accepted) * 1000)
                    return
            await asyncio.sleep(LAG_POLL_S)
        step.lag_probes_failed += 1

    async def watch_consumer_lag(self, step: Step) -> None:
        """Total lag of the namespace's consumer groups, every few seconds."""
        async with Kafka(self.endpoints.kafka_bootstrap, self.fleet.namespace) as kafka:
            while True:
                with contextlib.suppress(Exception):
                    step.consumer_lag_max = max(step.consumer_lag_max, await kafka.lag())
                await asyncio.sleep(KAFKA_LAG_EVERY_S)

    # ---- after the load: nothing lost, then the figures
    async def verify(self, client: httpx.AsyncClient, steps: list[Step]) -> None:
        lost = duplicated = 0
        deadline = time.monotonic() + SETTLE_S
        problems: list[str] = []

        async def settle(what: str, expected: int, read: Callable[[], Awaitable[int]]) -> None:
            nonlocal lost, duplicated
            seen = -1
            while True:
                seen = await read()
                if seen >= expected or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            if seen != expected:
                problems.append(f"{what}: expected {expected}, found {seen}")
                lost += max(expected - seen, 0)
                duplicated += max(seen - expected, 0)

        # registrations: reporting's volunteer count of each city
        for city in self.cities:

            async def volunteers(c: City = city) -> int:
                stats = await self.unit_stats(client, c)
                return int(stats["own"]["volunteers"]) if stats else -1

            await settle(
                f"{city.name}: volunteers in reporting", city.base_volunteers + len(city.registered), volunteers
            )

        # ... and the local copy of every other consumer of the registrations
        mongo = mongo_client(self.ctx.mongo_url, app_name="bench")
        try:
            registered = [v for c in self.cities for v in c.registered]
            for service in ("activities", "notifier", "gateway"):
                copies = mongo[self.fleet.settings.database(service)]["volunteers"]

                async def copied(col: Any = copies) -> int:
                    return int(await col.count_documents({"_id": {"$in": registered}}))

                await settle(f"{service}: copies of the registered volunteers", len(registered), copied)

            # sign-ups: each roster (activities) and the notifier's copy of it
            col = mongo[self.fleet.settings.database("notifier")]["activities"]
            for city in self.cities:
                for aid in [*city.open_activities, city.ongoing]:

                    async def roster(c: City = city, a: str = aid) -> int:
                        body = _ok(await client.get(f"/activities/{a}/signups", headers=c.auth))
                        return int(body["total"])

                    async def notified(a: str = aid) -> int:
                        doc = await col.find_one({"_id": a}, {"signups": 1})
                        return len((doc or {}).get("signups") or {})

                    await settle(f"{aid}: roster", city.signed[aid], roster)
                    await settle(f"{aid}: notifier's sign-ups", city.signed[aid], notified)
        finally:
            await mongo.close()

        # attendance: every accepted check-in/out on the list; then completion reaches reporting
        for city in self.cities:
            body = _ok(await client.get(f"/activities/{city.ongoing}/attendance", headers=city.auth))
            ins = {i["volunteer_id"] for i in body["items"] if i["check_in"]}
            outs = {i["volunteer_id"] for i in body["items"] if i["check_out"]}
            for what, done, found in (("check-ins", city.checked_in, ins), ("check-outs", city.checked_out, outs)):
                if done - found:
                    problems.append(f"{city.ongoing}: {len(done - found)} accepted {what} missing")
                    lost += len(done - found)
            _ok(await client.post(f"/activities/{city.ongoing}/complete", headers=city.auth))

            async def participations(c: City = city) -> int:
                stats = await self.unit_stats(client, c)
                return int(stats["own"].get("participations") or 0) if stats else -1

            await settle(f"{city.name}: participations in reporting", len(city.checked_in), participations)

        accepted = sum(
            len(c.registered) + sum(c.signed.values()) + len(c.checked_in) + len(c.checked_out) for c in self.cities
        )
        self.figures(steps, accepted)
        self.ctx.report("duplicated", duplicated)
        self.ctx.report("lost", lost)
        if problems:
            raise RuntimeError("writes lost or doubled: " + "; ".join(problems))

    def figures(self, steps: list[Step], accepted: int) -> None:
        ctx = self.ctx
        sustained = 0.0
        for s in steps:
            tag = f"r{s.rate:g}_"
            ctx.report(tag + "achieved_per_s", s.answered / s.duration_s)
            ctx.report(tag + "p50_ms", s.percentile(0.5))
            ctx.report(tag + "p99_ms", s.percentile(0.99))
            ctx.report(tag + "p999_ms", s.percentile(0.999))
            ctx.report(tag + "errors", s.errors)
            ctx.report(tag + "event_lag_p50_ms", _median(s.event_lags_ms))
            ctx.report(tag + "event_lag_max_ms", max(s.event_lags_ms, default=0.0))
            ctx.report(tag + "consumer_lag_max", s.consumer_lag_max)
            for name, ms in s.cpu_ms_per_request().items():
                ctx.report(tag + f"cpu_ms_per_request_{name}", ms)
            if s.lag_probes_failed:
                ctx.report(tag + "event_lag_probes_timed_out", s.lag_probes_failed)
            if s.percentile(0.99) <= P99_LIMIT_MS and not s.errors:
                sustained = s.rate
        ctx.report("max_sustained_per_s", sustained)
        for ceiling in ("mongo_insert_docs_per_s", "kafka_produce_events_per_s"):
            if value := ctx.ceiling.get(ceiling):
                ctx.report(f"ratio_to_{ceiling.removesuffix('_per_s')}_ceiling", sustained / value)
        for name, mb in sorted({**self.fleet.peak_rss_mb(), **_infra_rss(self.endpoints)}.items()):
            ctx.report(f"rss_{name}_mb", mb)
        ctx.report("accepted_writes", accepted)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
