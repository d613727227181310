"""A province through the reporting projections: 1,500 units, 100,000 volunteers, 20,000 completed activities.

The events (built with the shared contracts, as the registry and activities services publish them) are produced
onto a fresh namespace's topics first; then the reporting app starts in-process and its projections consume them
all. Figures:

- ``projection_events_per_s``: events / (service start → every partition committed), group join included
  (target ≥ 5,000); ``ratio_to_consume_ceiling`` divides it by the raw ``getmany`` rate of the ceiling of the
  same run, and ``raw_read_events_per_s`` is a plain read of the very same topics, for reference. ``batches`` and
  ``mean_batch_events``: the polls applied (each in transactions of bulk upserts).
- ``compliance_table_s`` / ``monthly_rollup_s``: the province's compliance table (every unit against every rule)
  and its monthly report (roll-up of the whole tree), through the HTTP API, best of three (target ≤ 200 ms).
- ``freshness_p50_s`` / ``freshness_p99_s``: while idle, single ``ActivityCompleted`` events published at a steady
  low rate; latency from publish to the volunteer's hours being visible through the API (target p99 ≤ 100 ms).

``STVS_BENCH_REPORTING_SCALE`` (default 1.0) scales units, volunteers and activities for quick runs;
``STVS_BENCH_REPORTING_CATCH_UP_S`` (600, so the whole fits the harness's 900 s) bounds the catch-up: when it runs
out, ``caught_up=0`` and ``consumed_events`` are reported with the rate so far, and the queries and the freshness
run are skipped (a partial state is no province, a backlog no idle service). ``STVS_BENCH_REPORTING_FRESHNESS_EVENTS``
(100) is the number of freshness samples. Figures on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.harness import BenchContext
from services.reporting.app import create_app
from services.reporting.replay import committed, end_offsets
from services.reporting.settings import ReportingSettings
from shared.calendar import SHANGHAI
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    ActivityCompleted,
    ContactRef,
    Participation,
    UnitRegistered,
    VolunteerRegistered,
)
from shared.identity import Identity, SignedIdentity, acting_as
from shared.messaging.topics import ensure_topics
from shared.programme import LineOfWork, Theme
from shared.storage import mongo_client

SCALE = float(os.environ.get("STVS_BENCH_REPORTING_SCALE", "1.0"))
UNITS = max(20, round(1_500 * SCALE))
VOLUNTEERS = max(200, round(100_000 * SCALE))
ACTIVITIES = max(40, round(20_000 * SCALE))
CITIES = 11
FRESHNESS_EVENTS = int(os.environ.get("STVS_BENCH_REPORTING_FRESHNESS_EVENTS", "100"))
FRESHNESS_RATE_PER_S = 5.0
CATCH_UP_TIMEOUT_S = float(os.environ.get("STVS_BENCH_REPORTING_CATCH_UP_S", "600"))
CHUNK = 10_000
YEAR = 2026


def _at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(YEAR, month, day, hour, tzinfo=SHANGHAI)


def _units() -> list[UnitRegistered]:
    """A province corps, 11 city detachments, some society/university/enterprise detachments, county teams."""
    leaders = {"支队长": 1, "副支队长": 3, "秘书长": 1}
    out = [
        UnitRegistered(
            unit_id="P",
            name="河北省科技志愿服务总队",
            kind="province_corps",
            parent_id=None,
            ancestors=[],
            status="active",
            registered_at=_at(4, 1),
            leader_counts={"总队长": 1},
            contact=ContactRef(name="联系人"),
            version=1,
        )
    ]
    cities = [f"C{i:02d}" for i in range(CITIES)]
    specials = {"society_detachment": 40, "university_detachment": 30, "enterprise_detachment": 20}
    kinds: list[tuple[str, list[str]]] = [("city_detachment", ["P"])] * CITIES
    for kind, n in specials.items():
        kinds += [(kind, ["P"])] * max(1, round(n * SCALE))
    while len(kinds) < UNITS - 1:
        city = cities[len(kinds) % CITIES]
        kinds.append(("county_team", ["P", city]))
    for i, (kind, ancestors) in enumerate(kinds[: UNITS - 1]):
        uid = cities[i] if kind == "city_detachment" else f"U{i:04d}"
        out.append(
            UnitRegistered(
                unit_id=uid,
                name=f"{uid}科技志愿服务队",
                kind=kind,
                parent_id=ancestors[-1],
                ancestors=ancestors,
                city=f"城市{ancestors[-1] if kind == 'county_team' else uid}",
                status="active",
                registered_at=_at(4, 1 + i % 25),
                leader_counts=leaders,
                contact=ContactRef(name="联系人") if i % 7 else None,
                version=1,
            )
        )
    return out


def _envelopes(rng: random.Random) -> tuple[list[Envelope[Any]], list[str]]:
    units = _units()
    unit_ids = [u.unit_id for u in units]
    envs: list[Envelope[Any]] = [Envelope.new(u, source="/stvs/registry", subject=u.unit_id) for u in units]
    # Volunteers arrive per unit (collective registration forms): unit i gets a contiguous block.
    members: dict[str, list[str]] = {u: [] for u in unit_ids}
    for n in range(VOLUNTEERS):
        unit = unit_ids[n * len(unit_ids) // VOLUNTEERS]
        vid = f"vol-{n:06d}"
        members[unit].append(vid)
        registered = _at(4, 1) + timedelta(minutes=n * 60 * 24 * 60 // VOLUNTEERS)
        data = VolunteerRegistered(
            volunteer_id=vid,
            platform_number=f"HB{YEAR}{n:06d}",
            display_name=f"志愿者{n}",
            status="active",
            unit_ids=[unit],
            registered_at=registered,
            version=1,
        )
        envs.append(Envelope.new(data, source="/stvs/registry", subject=vid, time=registered))
    # Activities in time order over April–December, 5–20 participants from the unit's members.
    lines, themes = list(LineOfWork), list(Theme)
    span = (_at(12, 20) - _at(4, 5)).total_seconds()
    for n in range(ACTIVITIES):
        unit = rng.choice(unit_ids)
        pool = members[unit] or members[unit_ids[1]]
        people = rng.sample(pool, min(len(pool), rng.randint(5, 20)))
        starts = _at(4, 5) + timedelta(seconds=span * n / ACTIVITIES)
        hours = [rng.choice((1.0, 1.5, 2.0, 2.5, 3.0, 4.0)) for _ in people]
        activity = ActivityCompleted(
            activity_id=f"act-{n:06d}",
            unit_id=unit,
            title="科普进社区",
            line_of_work=rng.choice(lines),
            themes=rng.sample(themes, rng.randint(1, 2)),
            starts_at=starts,
            ends_at=starts + timedelta(hours=3),
            completed_at=starts + timedelta(hours=4),
            people_served=rng.randint(20, 300),
            participants=[
                Participation(volunteer_id=v, display_name=f"志愿者{v[4:]}", hours=h)
                for v, h in zip(people, hours, strict=True)
            ],
            total_hours=sum(hours),
        )
        envs.append(Envelope.new(activity, source="/stvs/activities", subject=activity.activity_id, time=starts))
    return envs, unit_ids


async def _produce(settings: ReportingSettings, envs: Sequence[Envelope[Any]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=20,
        max_batch_size=1024 * 1024,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        for first in range(0, len(envs), CHUNK):
            futures = [
                await producer.send(settings.topic(env.data.stream), env.to_json(), key=env.subject.encode())
                for env in envs[first : first + CHUNK]
            ]
            await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def _raw_read(settings: ReportingSettings, ends: dict[TopicPartition, int]) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        total, received = sum(ends.values()), 0
        started = time.perf_counter()
        while received < total:
            batch = await consumer.getmany(timeout_ms=1_000, max_records=10_000)
            received += sum(len(records) for records in batch.values())
        return total / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def _caught_up(settings: ReportingSettings, group: str, ends: dict[TopicPartition, int]) -> int:
    """Events consumed (committed) by the group: all of them, or as many as the time allowed."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while True:
        done = await committed(settings.kafka_bootstrap, group)
        consumed = sum(min(end, max(0, done.get(tp, 0))) for tp, end in ends.items())
        if consumed >= sum(ends.values()) or time.monotonic() > deadline:
            return consumed
        await asyncio.sleep(0.25)


async def _best_of(client: httpx.AsyncClient, url: str, hdrs: dict[str, str], **params: Any) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        response = await client.get(url, params=params, headers=hdrs)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return min(times)


async def _freshness(
    settings: ReportingSettings, client: httpx.AsyncClient, hdrs: dict[str, str], unit: str
) -> list[float]:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, linger_ms=0)
    await producer.start()
    latencies: list[float] = []
    try:
        for n in range(FRESHNESS_EVENTS):
            slot = time.perf_counter() + 1 / FRESHNESS_RATE_PER_S
            vid = f"fresh-{n:04d}"
            starts = _at(11, 2)
            data = ActivityCompleted(
                activity_id=f"fresh-act-{n:04d}",
                unit_id=unit,
                title="科普讲座",
                line_of_work="community_school",
                themes=["women_youth"],
                starts_at=starts,
                ends_at=starts + timedelta(hours=2),
                completed_at=starts + timedelta(hours=3),
                people_served=30,
                participants=[Participation(volunteer_id=vid, display_name="新志愿者", hours=2)],
                total_hours=2,
            )
            env = Envelope.new(data, source="/stvs/activities", subject=data.activity_id)
            published = time.perf_counter()
            await producer.send_and_wait(settings.topic(data.stream), env.to_json(), key=env.subject.encode())
            while time.perf_counter() - published < 30:
                response = await client.get(f"/stats/volunteers/{vid}", headers=hdrs)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - published)
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(max(0.0, slot - time.perf_counter()))
    finally:
        await producer.stop()
    return latencies


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench(ctx: BenchContext) -> None:
    settings = ReportingSettings(
        kafka_bootstrap=ctx.kafka_bootstrap,
        mongo_url=ctx.mongo_url,
        namespace="b" + uuid.uuid4().hex[:8],
        campaign_year=YEAR,
    )
    await ensure_topics(settings)
    rng = random.Random(20260420)
    started = time.perf_counter()
    envs, unit_ids = _envelopes(rng)
    ctx.report("events", len(envs))
    ctx.report("generate_s", time.perf_counter() - started)
    ctx.report("produce_s", await _produce(settings, envs))
    topics = sorted({settings.topic(env.data.stream) for env in envs})
    ends = {tp: end for tp, end in (await end_offsets(settings.kafka_bootstrap, topics)).items() if end > 0}
    total = sum(ends.values())
    raw = await _raw_read(settings, ends)
    ctx.report("raw_read_events_per_s", raw)
    del envs

    province = Identity(subject="bench", role="province_admin")
    hdrs = acting_as(province)
    signing = SignedIdentity(settings.internal_token.get_secret_value(), "reporting")
    app = create_app(settings)
    try:
        started = time.perf_counter()
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app), auth=signing, base_url="http://reporting", timeout=120
            ) as client,
        ):
            group = app.state.service.consumers[0].group
            consumed = await _caught_up(settings, group, ends)
            elapsed = time.perf_counter() - started
            rate = consumed / elapsed
            ctx.report("caught_up", consumed == total)
            if consumed < total:  # a busy machine: report the rate so far, the queries answer on a partial state
                ctx.report("consumed_events", consumed)
            ctx.report("projection_s", elapsed)
            ctx.report("projection_events_per_s", rate)
            ceiling = ctx.ceiling.get("kafka_consume_events_per_s")
            if ceiling:
                ctx.report("ratio_to_consume_ceiling", rate / ceiling)
            ctx.report("ratio_to_raw_read", rate / raw)
            consumer = app.state.service.consumers[0]
            ctx.report("batches", consumer.batches)
            ctx.report("mean_batch_events", consumer.batched_events / max(1, consumer.batches))

            complete = consumed == total
            if not complete:
                return  # queries on a partial state (the province may not be in yet) and freshness behind a backlog
            body = (await client.get("/compliance", params={"unit_id": "P", "year": YEAR}, headers=hdrs)).json()
            assert len(body["units"]) == len(unit_ids), f"{len(body['units'])} units in the table"
            ctx.report("compliance_table_s", await _best_of(client, "/compliance", hdrs, unit_id="P", year=YEAR))
            report = (await client.get("/monthly-reports/P/2026-06", headers=hdrs)).json()
            assert report["team_building"]["subtree_volunteers"] == VOLUNTEERS, report["team_building"]
            ctx.report("monthly_rollup_s", await _best_of(client, "/monthly-reports/P/2026-06", hdrs))
            stats = (await client.get("/stats/units/P", params={"year": YEAR}, headers=hdrs)).json()
            assert stats["rollup"]["activities"] == ACTIVITIES, stats["rollup"]["activities"]

            latencies = await _freshness(settings, client, hdrs, unit_ids[-1])
            ctx.report("freshness_samples", len(latencies))
            if latencies:
                ctx.report("freshness_p50_s", statistics.median(latencies))
                ctx.report("freshness_p99_s", _quantile(latencies, 0.99))
    finally:
        mongo = mongo_client(settings.mongo_url, app_name="bench")
        await mongo.drop_database(settings.database("reporting"))
        await mongo.close()
