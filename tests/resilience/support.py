"""What the fault tests share: their own infrastructure, a steady stream of real work through the gateway, and the
event-by-event comparison of what was accepted with what every projection and dead-letter topic holds."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from infra.local.fleet import SERVICES, Fleet, free_ports
from infra.local.runner import Endpoints, InfraRunner, InfraSettings, port_free
from shared.clock import SHANGHAI
from shared.contracts import events as ev
from shared.contracts.envelope import EnvelopeError, parse_envelope
from shared.messaging.consumer import H_REPLAY_FOR
from shared.messaging.dlq import partitions_of
from shared.messaging.outbox import OUTBOX_N
from shared.messaging.topics import all_topics
from shared.storage import mongo_client
from tests.registry.helpers import CITY_LEADERS, CONTACT, id_number

ADMIN = ("province", "province-pass-1")
CITY_ADMIN = ("chaos_admin", "chaos-admin-pass-1")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RETRYABLE = {502, 503, 504}


# ---------------------------------------------------------------- infrastructure of one test module


class ChaosInfra:
    """A Kafka and a SecantusDB of our own, which the tests may stop and start again (same ports, same data)."""

    def __init__(self, runner: InfraRunner, endpoints: Endpoints) -> None:
        self.runner = runner
        self.endpoints = endpoints

    def _stop_part(self, name: str, sig: signal.Signals) -> None:
        proc = self.runner._children[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    async def stop(self, name: str, sig: signal.Signals = signal.SIGTERM) -> None:
        await asyncio.to_thread(self._stop_part, name, sig)

    async def start(self, name: str) -> None:
        part = self.runner.kafka if name == "kafka" else self.runner.mongo
        deadline = time.monotonic() + 60
        while not all(port_free(p) for p, _, _ in part.ports()) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)  # the old process's ports are released a moment after it exits
        self.runner._launch(part)
        await self.runner._wait_one(part, part.endpoint)

    def shutdown(self) -> None:
        self.runner.stop()


def start_chaos_infra(data_dir: Path) -> ChaosInfra:
    for _ in range(5):
        kafka, controller, mongo = free_ports(3)
        settings = InfraSettings(
            kafka_port=kafka,
            kafka_controller_port=controller,
            mongo_port=mongo,
            data_dir=data_dir,
            kafka_bootstrap=None,
            mongo_url=None,
            ready_timeout_s=180,
        )
        runner = InfraRunner(settings, fresh=True)
        try:
            endpoints = runner.start()
        except Exception as exc:  # a port taken between choosing and binding: choose again
            if "in use" not in str(exc):
                raise
            continue
        return ChaosInfra(runner, endpoints)
    raise RuntimeError("no free ports for the chaos infrastructure")


def chaos_env() -> dict[str, str]:
    return {"STVS_CONSUMER_MAX_ATTEMPTS": "4", "STVS_OUTBOX_SWEEP_INTERVAL_S": "5", "STVS_OUTBOX_SWEEP_GRACE_S": "10"}


# ---------------------------------------------------------------- volume


@dataclass(frozen=True)
class Volume:
    volunteers: int  # imported from 附件2 spreadsheets, in ``chunks`` uploads
    chunks: int
    activities: int  # each: publish, ``per_activity`` sign-ups, check-in/out each, complete
    per_activity: int
    settle_s: float

    @property
    def expected_events(self) -> int:
        return self.volunteers + self.activities * (2 + 3 * self.per_activity) + 2


SMALL = Volume(volunteers=120, chunks=2, activities=4, per_activity=5, settle_s=240)
FULL = Volume(volunteers=8000, chunks=8, activities=40, per_activity=25, settle_s=900)


def volume(*, slow: bool) -> Volume:
    """Slow tests (``make chaos``) run the full volume (≥ 10,000 events); fast ones a small one, or the full one
    when ``STVS_CHAOS_FULL=1`` (``make chaos`` sets it)."""
    chosen = FULL if slow or os.environ.get("STVS_CHAOS_FULL") == "1" else SMALL
    if os.environ.get("STVS_CHAOS_SMALL") == "1":  # a quick try of the slow tests while changing them
        chosen = SMALL
    if n := int(os.environ.get("STVS_CHAOS_VOLUNTEERS") or 0):  # the import's size alone
        chosen = dataclasses.replace(chosen, volunteers=n, chunks=max(chosen.chunks, n // 1000), settle_s=900)
    return chosen


# ---------------------------------------------------------------- the workload


def fill_volunteers(template: bytes, first_seq: int, n: int) -> bytes:
    book = openpyxl.load_workbook(io.BytesIO(template))
    sheet = book["科技志愿者集体注册信息表"]
    headers = [c.value for c in sheet[1]]
    sheet.delete_rows(2, sheet.max_row)
    for r, seq in enumerate(range(first_seq, first_seq + n), start=2):
        male = seq % 2 == 0
        row = {
            "姓名": "志愿者" + chr(0x4E00 + seq % 2000) + chr(0x4E00 + (seq // 2000) % 2000),
            "性别": "男" if male else "女",
            "身份证号码": id_number(seq, male=male),
            "手机号码": f"139{seq:08d}",
            "电子邮箱": f"v{seq}@example.com",
            "工作单位": "石家庄市农林科学研究院",
            "职称": "工程师",
            "职称级别": "中级",
            "学历": "大学本科",
            "专业领域": "作物栽培",
            "政治面貌": "群众",
            "技能特长": "科普讲解",
            "服务领域": "进社区进学校",
        }
        for header, value in row.items():
            cell = sheet.cell(row=r, column=headers.index(header) + 1, value=value)
            cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class GaveUp(Exception):
    """The platform did not accept an operation before the workload's deadline."""


@dataclass
class Accepted:
    """What the gateway answered 2xx for."""

    imported: int = 0
    signups: set[tuple[str, str]] = field(default_factory=set)
    checkouts: dict[tuple[str, str], float] = field(default_factory=dict)
    completed: set[str] = field(default_factory=set)
    ambiguous: int = 0  # a retry found the work already done (the first try was accepted, its answer lost)


class Workload:
    """Province admin and a city detachment, then volunteers imported in chunks and activities run to completion,
    all through the gateway; every request is retried on 502/503/504 and connection errors (as a client told to
    retry would), up to ``retry_s``."""

    def __init__(
        self,
        fleet: Fleet,
        vol: Volume,
        *,
        retry_s: float = 240.0,
        first_seq: int = 1000,
        city: tuple[str, str] = ("shijiazhuang", "石家庄市"),
        city_admin: tuple[str, str] = CITY_ADMIN,
    ) -> None:
        self.fleet = fleet
        self.vol = vol
        self.retry_s = retry_s
        self.first_seq = first_seq
        self.accepted = Accepted()
        self.statuses: Counter[tuple[str, int | str]] = Counter()
        self.problems: list[tuple[str, int, dict[str, str], str]] = []  # (op, status, headers, body) of 5xx
        self.progress = 0
        self.city_id = ""
        self.corps_id = ""
        self._tokens: dict[str, dict[str, str]] = {}
        self._creds = {"province": ADMIN, "city": city_admin}
        self.city = city
        self.client = httpx.AsyncClient(base_url=fleet.api, timeout=60.0)
        self.volunteer_ids: list[str] = []
        self.stream_done = asyncio.Event()
        self.stream_error: BaseException | None = None

    async def close(self) -> None:
        await self.client.aclose()

    async def _signin(self, who: str) -> None:
        user, password = self._creds[who]
        r = await self.call("signin", "POST", "/auth/signin", who=None, json={"username": user, "password": password})
        if r.status_code != 200:
            raise GaveUp(f"sign-in {user}: {r.status_code} {r.text}")
        self._tokens[who] = {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def call(self, op: str, method: str, url: str, *, who: str | None = "city", **kw: Any) -> httpx.Response:
        """One request, retried while the platform says "try again" (or cannot be reached)."""
        deadline = time.monotonic() + self.retry_s
        last = ""
        while True:
            headers = {}
            if who is not None:
                if who not in self._tokens:
                    await self._signin(who)
                headers = self._tokens[who]
            try:
                r = await self.client.request(method, url, headers=headers, **kw)
            except httpx.TransportError as exc:
                self.statuses[(op, type(exc).__name__)] += 1
                last = repr(exc)
            else:
                self.statuses[(op, r.status_code)] += 1
                if r.status_code >= 500:
                    if len(self.problems) < 200:
                        self.problems.append((op, r.status_code, dict(r.headers), r.text[:500]))
                    last = f"{r.status_code} {r.text[:300]}"
                elif r.status_code == 401 and who is not None:
                    self._tokens.pop(who, None)  # a restarted gateway may not know the session: sign in again
                    last = "401"
                else:
                    self.progress += 1
                    return r
            if time.monotonic() > deadline:
                raise GaveUp(f"{op} {method} {url}: not accepted within {self.retry_s:.0f} s (last: {last})")
            await asyncio.sleep(0.5)

    def _ok(self, r: httpx.Response, *status: int) -> Any:
        if r.status_code not in status:
            raise GaveUp(f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:500]}")
        return r.json()

    # -- setup
    async def seed(self, corps_id: str | None = None) -> None:
        """The province admin and corps (unless ``corps_id`` is given: a second workload), the city, its admin."""
        if corps_id is None:
            await self.fleet.create_admin(*ADMIN)
            self.corps_id = await self._corps()
        else:
            self.corps_id = corps_id
        await self._city()

    async def _corps(self) -> str:
        corps = self._ok(
            await self.call(
                "unit",
                "POST",
                "/units",
                who="province",
                json={
                    "kind": "province_corps",
                    "leaders": [{"name": "张总队", "role": "总队长"}, {"name": "王副总", "role": "副总队长"}],
                    "phone": "0311-85012345",
                    "address": "石家庄市桥西区",
                    "contact": {**CONTACT, "email": "office@example.com"},
                },
            ),
            201,
        )
        return str(corps["id"])

    async def _city(self) -> None:
        city = self._ok(
            await self.call(
                "unit",
                "POST",
                "/units",
                who="province",
                json={
                    "kind": "city_detachment",
                    "base": self.city[1],
                    "parent_id": self.corps_id,
                    "city": self.city[0],
                    "leaders": CITY_LEADERS,
                    "phone": "0311-80010000",
                    "declared_members": 300,
                    "contact": CONTACT,
                },
            ),
            201,
        )
        self.city_id = city["id"]
        body = {
            "username": self._creds["city"][0],
            "password": self._creds["city"][1],
            "role": "unit_admin",
            "unit_id": self.city_id,
            "display_name": "支队管理员",
        }
        self._ok(await self.call("account", "POST", "/accounts", who="province", json=body), 201)
        deadline = time.monotonic() + 60
        while (await self.call("unit", "GET", f"/units/{self.city_id}")).status_code != 200:
            if time.monotonic() > deadline:
                raise GaveUp("the gateway never learned the city detachment")
            await asyncio.sleep(0.3)
        self.template = (await self.call("template", "GET", "/forms/volunteers/template")).content

    # -- the stream
    async def import_chunk(self, first_seq: int, n: int) -> None:
        filled = await asyncio.to_thread(fill_volunteers, self.template, first_seq, n)
        r = await self.call(
            "import",
            "POST",
            "/forms/volunteers/import",
            params={"dry_run": "false"},
            files={"file": ("附件2.xlsx", filled, XLSX)},
            timeout=300.0,
        )
        out = self._ok(r, 200)
        if out["errors"]:
            raise GaveUp(f"import errors: {out['errors'][:3]}")
        self.accepted.imported += int(out["created"])

    async def pool(self, n: int) -> list[str]:
        """``n`` volunteer ids of the city not yet used by an activity."""
        while len(self.volunteer_ids) < n:
            r = await self.call(
                "list",
                "GET",
                "/volunteers",
                params={"unit_id": self.city_id, "skip": len(self.volunteer_ids), "limit": 200},
            )
            items = self._ok(r, 200)["items"]
            if not items:
                raise GaveUp(f"only {len(self.volunteer_ids)} volunteers listed, {n} needed")
            self.volunteer_ids.extend(v["id"] for v in items)
        return self.volunteer_ids[:n]

    def activity_body(self, index: int, capacity: int) -> dict[str, Any]:
        now = self.fleet.clock.now().replace(microsecond=0)
        starts_at = now - timedelta(hours=2)
        return {
            "title": f"科普讲座第{index}场",
            "description": "面向社区居民的科普讲座",
            "unit_id": self.city_id,
            "line_of_work": "community_school",
            "themes": ["poverty_health"],
            "target_groups": ["社区居民"],
            "place": "长安区某社区活动中心",
            "county": "长安区",
            "starts_at": starts_at.isoformat(),
            "ends_at": (now + timedelta(minutes=30)).isoformat(),
            "capacity": capacity,
            "signup_opens_at": (now - timedelta(hours=3)).isoformat(),
            "signup_closes_at": (now + timedelta(minutes=20)).isoformat(),
        }

    async def run_activity(self, index: int, volunteers: list[str]) -> None:
        body = self.activity_body(index, len(volunteers))
        starts_at = datetime.fromisoformat(body["starts_at"])
        aid = self._ok(await self.call("create", "POST", "/activities", json=body), 201)["id"]
        await self._transition(aid, "publish", "published")
        for vid in volunteers:
            await self._sign_up(aid, vid)
        await self._transition(aid, "start", "ongoing")
        for n, vid in enumerate(volunteers):
            hours = (1.0, 1.5, 2.0)[n % 3]
            at = {"volunteer_id": vid, "at": starts_at.isoformat()}
            r = await self.call("checkin", "POST", f"/activities/{aid}/checkin", json=at)
            if r.status_code not in (200, 409):
                self._ok(r, 200)
            at["at"] = (starts_at + timedelta(hours=hours)).isoformat()
            r = await self.call("checkout", "POST", f"/activities/{aid}/checkout", json=at)
            if r.status_code == 200:
                self.accepted.checkouts[(aid, vid)] = float(r.json()["hours"])
            elif r.status_code != 409:
                self._ok(r, 200)
        await self._transition(aid, "complete", "completed")
        self.accepted.completed.add(aid)

    async def _transition(self, aid: str, action: str, status: str) -> None:
        r = await self.call(action, "POST", f"/activities/{aid}/{action}")
        if r.status_code == 409:  # a retry after an accepted first try whose answer was lost
            current = self._ok(await self.call("get", "GET", f"/activities/{aid}"), 200)
            if current["status"] == status or (status == "ongoing" and current["status"] == "completed"):
                self.accepted.ambiguous += 1
                return
        self._ok(r, 200)

    async def _sign_up(self, aid: str, vid: str) -> None:
        deadline = time.monotonic() + self.retry_s
        while True:
            r = await self.call("signup", "POST", f"/activities/{aid}/signups", json={"volunteer_id": vid})
            code = r.json().get("code") if r.headers.get("content-type", "").startswith("application/") else None
            if r.status_code == 201:
                self.accepted.signups.add((aid, vid))
                return
            if r.status_code == 409 and code in ("already_signed_up", "already_signed"):
                self.accepted.signups.add((aid, vid))
                self.accepted.ambiguous += 1
                return
            if r.status_code == 422 and code in ("volunteer_unknown", "volunteer_inactive"):
                if time.monotonic() > deadline:
                    raise GaveUp(f"activities never learned volunteer {vid}")
                await asyncio.sleep(0.5)  # the registry's event has not reached the activities service yet
                continue
            self._ok(r, 201)

    async def stream(self) -> None:
        """Imports chunk by chunk; after each chunk, runs that chunk's share of activities (two at a time)."""
        try:
            per_chunk = self.vol.volunteers // self.vol.chunks
            acts_per_chunk = -(-self.vol.activities // self.vol.chunks)
            index = 0
            for c in range(self.vol.chunks):
                await self.import_chunk(self.first_seq + c * per_chunk, per_chunk)
                todo = min(acts_per_chunk, self.vol.activities - index)
                ids = await self.pool((index + todo) * self.vol.per_activity)
                jobs = []
                for i in range(index, index + todo):
                    chosen = ids[i * self.vol.per_activity : (i + 1) * self.vol.per_activity]
                    jobs.append(self.run_activity(i, chosen))
                index += todo
                for pair in range(0, len(jobs), 2):
                    await asyncio.gather(*jobs[pair : pair + 2])
        except BaseException as exc:
            self.stream_error = exc
            raise
        finally:
            self.stream_done.set()

    async def reached(self, progress: int, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while self.progress < progress and not self.stream_done.is_set():
            if time.monotonic() > deadline:
                raise AssertionError(f"the stream made only {self.progress} requests in {timeout_s} s")
            await asyncio.sleep(0.2)


# ---------------------------------------------------------------- reading what the platform holds


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]


async def read_topics(bootstrap: str, topics: Iterable[str]) -> dict[str, list[Record]]:
    """Every record of the topics, from the beginning to the end offsets at the time of the call."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: dict[str, list[Record]] = defaultdict(list)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in await partitions_of(bootstrap, t)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=2000)
            for tp, recs in batch.items():
                for r in recs:
                    headers = {k: (v or b"").decode(errors="replace") for k, v in (r.headers or ())}
                    out[tp.topic].append(Record(tp.topic, tp.partition, r.offset, r.key, r.value or b"", headers))
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return out


async def group_lags(bootstrap: str, namespace: str) -> dict[str, int]:
    """Unconsumed messages per consumer group of the namespace (end offsets minus committed offsets)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await probe.start()
    try:
        groups = [g[0] for g in await admin.list_consumer_groups() if str(g[0]).startswith(namespace + ".")]
        lags: dict[str, int] = {}
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            ends = await probe.end_offsets(list(committed)) if committed else {}
            lags[group] = sum(max(end - max(committed[tp].offset, 0), 0) for tp, end in ends.items())
        return lags
    finally:
        await probe.stop()
        await admin.close()


# Which event types each consumer group applies (the others it skips): from the services' registrations.
HANDLED: dict[str, set[str]] = {
    "activities.volunteers": {
        t.event_type
        for t in (ev.VolunteerRegistered, ev.VolunteerUpdated, ev.VolunteerJoinedUnit, ev.VolunteerLeftUnit)
    },
    "gateway.units": {ev.UnitRegistered.event_type, ev.UnitUpdated.event_type},
    "gateway.volunteers": {
        t.event_type
        for t in (ev.VolunteerRegistered, ev.VolunteerUpdated, ev.VolunteerJoinedUnit, ev.VolunteerLeftUnit)
    },
    "notifier.obligations": {
        t.event_type
        for t in (
            ev.UnitRegistered,
            ev.UnitUpdated,
            ev.ActionPlanSubmitted,
            ev.MonthlyReportSubmitted,
            ev.ActivityCompleted,
        )
    },
    "notifier.delivery": {
        t.event_type
        for t in (
            ev.DeadlineApproaching,
            ev.DeadlineMissed,
            ev.ActivityPublished,
            ev.VolunteerSignedUp,
            ev.SignUpConfirmed,
            ev.SignUpCancelled,
            ev.ActivityCompleted,
            ev.ActivityCancelled,
            ev.VolunteerRegistered,
            ev.VolunteerUpdated,
        )
    },
    "notifier.webhooks": set(ev.EVENT_TYPES),
    "reporting.projections": {
        t.event_type
        for t in (
            ev.UnitRegistered,
            ev.UnitUpdated,
            ev.VolunteerRegistered,
            ev.VolunteerUpdated,
            ev.VolunteerJoinedUnit,
            ev.VolunteerLeftUnit,
            ev.ActivityCompleted,
            ev.ActionPlanSubmitted,
            ev.MonthlyReportSubmitted,
        )
    },
}


@dataclass
class Figures:
    test: str
    accepted: int = 0
    delivered: int = 0
    duplicated: int = 0
    lost: int = 0
    recover_s: float = 0.0
    republished: int = 0
    dead_letters: int = 0
    findings: list[str] = field(default_factory=list)

    def lose(self, n: int, what: str) -> None:
        if n:
            self.lost += n
            self.findings.append(f"LOST {n}: {what}")

    def double(self, n: int, what: str) -> None:
        if n:
            self.duplicated += n
            self.findings.append(f"DUPLICATED {n}: {what}")

    def line(self, **extra: Any) -> str:
        more = "".join(f" {k}={v}" for k, v in extra.items())
        return (
            f"CHAOS {self.test} accepted={self.accepted} delivered={self.delivered} duplicated={self.duplicated} "
            f"lost={self.lost} recover_s={self.recover_s:.1f} republished={self.republished} "
            f"dead_letters={self.dead_letters}{more}"
        )


def _parse(value: bytes) -> dict[str, Any] | None:
    """The envelope as a dict when the message is a valid platform event (as the consumers parse it), else None."""
    try:
        parse_envelope(value)
    except EnvelopeError:
        return None
    env: dict[str, Any] = json.loads(value)
    return env


async def outbox_backlog(fleet: Fleet) -> int:
    """Events still staged in any document of the namespace's databases (written, not yet published and cleared)."""
    client = mongo_client(fleet.endpoints.mongo_url, app_name="chaos-settle")
    try:
        staged = 0
        for service in SERVICES:
            db = client[fleet.settings.database(service)]
            for name in await db.list_collection_names():
                staged += await db[name].count_documents({OUTBOX_N: {"$gt": 0}})
        return staged
    finally:
        await client.close()


async def settle(fleet: Fleet, wl: Workload, timeout_s: float) -> float:
    """Waits until the events of everything accepted are on the topics (none left staged in an outbox) and every
    consumer group has consumed its topics to the end (twice in a row, a few seconds apart). Returns the seconds it
    took."""
    started = time.monotonic()
    bootstrap = fleet.endpoints.kafka_bootstrap
    expected_min = wl.accepted.imported + len(wl.accepted.signups) + len(wl.accepted.completed)
    stable = 0
    last: Any = None
    while time.monotonic() - started < timeout_s:
        try:
            lags = await group_lags(bootstrap, fleet.namespace)
            records = await read_topics(bootstrap, [fleet.settings.topic(s) for s in ev.STREAMS])
        except Exception as exc:  # Kafka not back yet
            last = repr(exc)
            await asyncio.sleep(2)
            continue
        n = sum(len(v) for v in records.values())
        staged = await outbox_backlog(fleet)
        last = (n, lags, staged)
        if n >= expected_min and len(lags) >= len(HANDLED) and not any(lags.values()) and not staged:
            stable += 1
            if stable >= 2:
                return time.monotonic() - started
        else:
            stable = 0
        await asyncio.sleep(3)
    raise AssertionError(f"the platform did not settle within {timeout_s:.0f} s (events, lags: {last})\n{fleet.tail()}")


async def compare(
    fleet: Fleet,
    wl: Workload,
    figures: Figures,
    *,
    expected_dead: dict[str, set[str]] | None = None,
) -> dict[str, list[Record]]:
    """Event by event: accepted work → events on the topics → every consumer group and projection; the DLQs.

    ``expected_dead`` maps a DLQ topic to the values (decoded, first 100 chars) expected there (the poison test);
    anything else in a DLQ is a lost event. Returns the DLQ records.
    """
    ns = fleet.namespace
    bootstrap = fleet.endpoints.kafka_bootstrap
    topics = all_topics(fleet.settings)
    records = await read_topics(bootstrap, topics)
    events: dict[str, dict[str, Any]] = {}
    copies: Counter[str] = Counter()
    original: set[str] = set()  # published by a service, not only replayed from a dead-letter topic
    replayed_for: dict[str, set[str]] = defaultdict(set)  # a replayed dead letter is for the group that failed it
    for topic in topics:
        if topic.endswith(".dlq"):
            continue
        for r in records.get(topic, []):
            env = _parse(r.value)
            if env is None or env["type"] not in ev.EVENT_TYPES:
                continue  # a poison message (the poison test accounts for those)
            copies[env["id"]] += 1
            events[env["id"]] = env
            if target := r.headers.get(H_REPLAY_FOR):
                replayed_for[env["id"]].add(target.removeprefix(f"{ns}.stvs."))
            else:
                original.add(env["id"])
    figures.accepted = len(events)
    figures.republished = sum(c - 1 for c in copies.values())
    if figures.republished:
        again = Counter(f"{events[i]['source']} {events[i]['type']}" for i, c in copies.items() for _ in range(c - 1))
        figures.findings.append(f"republished (same id, consumers de-duplicate): {dict(again)}")
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for env in events.values():
        by_type[env["type"]].append(env)
    acc = wl.accepted

    # 1. what the gateway accepted → exactly one event each (a second event with another id is a double)
    registered = Counter(e["data"]["volunteer_id"] for e in by_type[ev.VolunteerRegistered.event_type])
    figures.double(sum(c - 1 for c in registered.values()), "volunteers with more than one registered event")
    figures.lose(max(acc.imported - len(registered), 0), "imported volunteers without a registered event")
    signed = Counter(
        (e["data"]["activity_id"], e["data"]["volunteer_id"]) for e in by_type[ev.VolunteerSignedUp.event_type]
    )
    figures.double(sum(c - 1 for c in signed.values()), "sign-ups announced more than once")
    figures.lose(
        len(acc.signups - set(signed)), f"accepted sign-ups without an event: {sorted(acc.signups - set(signed))[:5]}"
    )
    completed = Counter(e["data"]["activity_id"] for e in by_type[ev.ActivityCompleted.event_type])
    figures.double(sum(c - 1 for c in completed.values()), "activities completed more than once")
    figures.lose(len(acc.completed - set(completed)), "completed activities without an event")
    participation: dict[tuple[str, str], float] = {}
    for e in by_type[ev.ActivityCompleted.event_type]:
        for p in e["data"]["participants"]:
            participation[(e["data"]["activity_id"], p["volunteer_id"])] = float(p["hours"])
    missing_hours = [k for k, h in acc.checkouts.items() if k[0] in acc.completed and participation.get(k) != h]
    figures.lose(len(missing_hours), f"accepted check-outs not in the completion's participants: {missing_hours[:5]}")

    # 2. events → every consumer group that applies them (its processed ids)
    client = mongo_client(fleet.endpoints.mongo_url, app_name="chaos-check")
    missing_events: set[str] = set()
    try:
        processed: dict[str, set[str]] = defaultdict(set)
        for service in ("activities", "gateway", "notifier", "reporting"):
            async for doc in client[fleet.settings.database(service)]["_processed"].find({}, {"_id": 1}):
                group, _, event_id = str(doc["_id"]).rpartition(":")
                processed[group.removeprefix(f"{ns}.stvs.")].add(event_id)
        for group, handled in HANDLED.items():
            if group == "reporting.projections":
                continue  # its batch path de-duplicates with markers in the projections, checked below instead
            want = {
                i for i, e in events.items() if e["type"] in handled and (i in original or group in replayed_for[i])
            }
            missing = want - processed[group]
            if missing:
                missing_events |= missing
                sample = [events[i]["type"] for i in list(missing)[:5]]
                figures.findings.append(f"group {group} never processed {len(missing)} events, e.g. {sample}")

        # 3. the projections hold every event's effect, once
        volunteer_ids = set(registered)
        for service in ("activities", "gateway", "notifier"):
            have = {d["_id"] async for d in client[fleet.settings.database(service)]["volunteers"].find({}, {"_id": 1})}
            figures.lose(len(volunteer_ids - have), f"registered volunteers missing from {service}' copy")
        stats = {
            d["_id"] async for d in client[fleet.settings.database("reporting")]["volunteer_stats"].find({}, {"_id": 1})
        }
        figures.lose(len(volunteer_ids - stats), "registered volunteers missing from reporting's stats")
        want_hours: dict[str, float] = defaultdict(float)
        want_acts: Counter[str] = Counter()
        for (_aid, vid), h in participation.items():
            want_hours[vid] += h
            want_acts[vid] += 1
        over: list[str] = []
        under: list[str] = []
        limit = asyncio.Semaphore(6)

        async def check_volunteer(vid: str) -> None:
            async with limit:
                resp = await wl.call("stats", "GET", f"/stats/volunteers/{vid}", who="province")
            got = resp.json() if resp.status_code == 200 else {}
            got_h, got_a = float(got.get("hours") or 0), int(got.get("activities") or 0)
            if got_h > want_hours[vid] + 1e-6 or got_a > want_acts[vid]:
                over.append(f"{vid}: {got_h} h/{got_a}, events say {want_hours[vid]}/{want_acts[vid]}")
            elif got_h < want_hours[vid] - 1e-6 or got_a < want_acts[vid]:
                under.append(f"{vid}: {got_h} h/{got_a}, events say {want_hours[vid]}/{want_acts[vid]}")

        await asyncio.gather(*(check_volunteer(v) for v in want_hours))
        figures.double(len(over), f"volunteers whose reported hours/activities count twice: {over[:3]}")
        figures.lose(len(under), f"volunteers whose reported hours/activities miss a completion: {under[:3]}")
        notifier_acts = {
            d["_id"]: d
            async for d in client[fleet.settings.database("notifier")]["activities"].find(
                {}, {"signups": 1, "status": 1}
            )
        }
        missing_signups = [(a, v) for a, v in signed if (notifier_acts.get(a, {}).get("signups") or {}).get(v) is None]
        figures.lose(len(missing_signups), "sign-ups missing from the notifier's activity copy")
        not_completed = [a for a in completed if notifier_acts.get(a, {}).get("status") != "completed"]
        figures.lose(len(not_completed), "completed activities not completed in the notifier's copy")
    finally:
        await client.close()
    per_unit_h: dict[str, float] = defaultdict(float)
    per_unit_n: Counter[str] = Counter()
    for e in by_type[ev.ActivityCompleted.event_type]:
        per_unit_h[e["data"]["unit_id"]] += float(e["data"]["total_hours"])
        per_unit_n[e["data"]["unit_id"]] += 1
    members: Counter[str] = Counter()
    for e in by_type[ev.VolunteerRegistered.event_type]:
        for unit_id in e["data"]["unit_ids"]:
            members[unit_id] += 1
    year = fleet.clock.now().astimezone(SHANGHAI).year
    for unit_id in set(per_unit_h) | set(members):
        want_h = per_unit_h.get(unit_id, 0.0)
        resp = await wl.call("stats", "GET", f"/stats/units/{unit_id}", who="province", params={"year": year})
        own = (resp.json().get("own") if resp.status_code == 200 else None) or {}
        got_v = int(own.get("volunteers") or 0)
        if got_v != members[unit_id]:
            what = f"unit {unit_id} counts {got_v} volunteers, {members[unit_id]} registered events name it"
            figures.double(1, what) if got_v > members[unit_id] else figures.lose(1, what)
        got_h, got_a = float(own.get("hours") or 0), int(own.get("activities") or 0)
        what = f"unit {unit_id} stats: {got_h} h / {got_a} activities, events say {want_h} / {per_unit_n[unit_id]}"
        if got_h > want_h + 1e-6 or got_a > per_unit_n[unit_id]:
            figures.double(1, what)
        elif got_h < want_h - 1e-6 or got_a < per_unit_n[unit_id]:
            figures.lose(1, what)

    # 4. dead letters: only what the test put there on purpose
    dead = {t: rs for t, rs in records.items() if t.endswith(".dlq") and rs}
    figures.dead_letters = sum(len(rs) for rs in dead.values())
    expected_dead = expected_dead or {}
    unexpected: Counter[str] = Counter()
    for topic, rs in dead.items():
        for rec in rs:
            if rec.value.decode(errors="replace")[:100] in expected_dead.get(topic, set()):
                continue
            env = _parse(rec.value)
            if env is not None:
                missing_events.add(str(env.get("id")))
            group = rec.headers.get("x-stvs-consumer-group", "").removeprefix(f"{ns}.stvs.")
            why = f"{rec.headers.get('x-stvs-reason')} {rec.headers.get('x-stvs-error', '')[:300]}"
            unexpected[f"{topic.removeprefix(ns + '.')} by {group}: {why}"] += 1
    for what, n in unexpected.items():
        figures.lose(n, f"unexpected dead letters on {what}")
    figures.lose(len(missing_events), "events not applied by every consumer that should")
    figures.delivered = len(set(events) - missing_events)
    return dead


FIGURES: list[str] = []  # every CHAOS line of the session, shown in the terminal summary (tests/conftest.py)


def report(figures: Figures, wl: Workload, **extra: Any) -> None:
    FIGURES.append(figures.line(**extra))
    print(figures.line(**extra))
    statuses = dict(sorted((str(k), v) for k, v in wl.statuses.items()))
    print(f"  requests: {sum(wl.statuses.values())}, statuses: {statuses}")
    for finding in figures.findings:
        print("  " + finding)


async def run_fault(
    fleet: Fleet,
    test: str,
    fault: Callable[[Workload], Awaitable[None]],
    *,
    slow: bool,
    after: int = 40,
    wl: Workload | None = None,
    expected_dead: dict[str, set[str]] | None = None,
) -> tuple[Figures, Workload]:
    """Seeds, starts the stream, injects ``fault`` once ``after`` requests were answered, lets the stream finish,
    waits for the platform to settle, compares, prints the CHAOS line and asserts nothing lost or doubled."""
    vol = volume(slow=slow)
    wl = wl or Workload(fleet, vol)
    figures = Figures(test)
    try:
        if not wl.city_id:
            await asyncio.wait_for(wl.seed(), 180)
        stream = asyncio.create_task(wl.stream())
        await asyncio.wait_for(wl.reached(wl.progress + after), 600)
        await asyncio.wait_for(fault(wl), 900)
        repaired = time.monotonic()
        try:
            await asyncio.wait_for(stream, vol.settle_s + 900)
        except BaseException:
            print(fleet.tail())
            raise
        await settle(fleet, wl, vol.settle_s)
        figures.recover_s = time.monotonic() - repaired
        await compare(fleet, wl, figures, expected_dead=expected_dead)
        report(figures, wl)
        print(f"  peak RSS (MB): {fleet.peak_rss_mb()}")
    finally:
        await wl.close()
    return figures, wl


def assert_clean(figures: Figures) -> None:
    assert figures.lost == 0 and figures.duplicated == 0, "\n".join(figures.findings)


async def chaos_dead_letters(fleet: Fleet) -> dict[str, set[str]]:
    """What the DLQs hold now (to tell it apart from what comes later)."""
    topics = [t for t in all_topics(fleet.settings) if t.endswith(".dlq")]
    records = await read_topics(fleet.endpoints.kafka_bootstrap, topics)
    return {t: {r.value.decode(errors="replace")[:100] for r in rs} for t, rs in records.items()}
