"""Sign-up burst (issue 5): 2,000 distinct active volunteers sign up concurrently for one activity of capacity 500.

The activities service runs in-process (ASGI) on the real Kafka and MongoDB-protocol server of the run. Its local copy
of the volunteers is filled as its consumer would (``Store.apply_volunteer``, as the activities tests do). Every sign-up
must come back 201, exactly 500 confirmed and 1,500 waitlisted, none lost (the roster holds all 2,000), and Kafka must
carry one ``VolunteerSignedUp`` per sign-up, 500 of them confirmed — else the benchmark fails. Figures:
``signups_per_s`` over the whole burst, per-request latency ``p50_ms`` / ``p99_ms``,
``cpu_ms_per_signup`` (CPU time of this process, which runs the service and the client, per sign-up: the figure that
bounds the rate on a busy machine), ``confirmed`` / ``waitlisted``, ``signup_events`` (``VolunteerSignedUp`` events
that reached Kafka), and ``ratio_to_produce_ceiling`` (sign-ups/s ÷ raw Kafka produce events/s).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.harness import BenchContext, drop_namespace
from services.activities.adapters.mongo import Store
from services.activities.app import create_app
from services.activities.settings import ActivitiesSettings
from shared.contracts.envelope import parse_envelope
from shared.contracts.events import ACTIVITIES
from shared.identity import Identity, SignedIdentity, acting_as
from shared.messaging.dlq import partitions_of
from shared.messaging.topics import ensure_topics
from shared.service import Service

CAPACITY = 500
VOLUNTEERS = 2_000
CONCURRENCY = 50
UNIT = "unit-bench"


def _draft() -> dict[str, Any]:
    now = datetime.now(UTC)
    starts = now + timedelta(days=1)
    return {
        "title": "科技志愿服务基准活动",
        "description": "报名并发压力测试",
        "unit_id": UNIT,
        "line_of_work": "community_school",
        "themes": ["poverty_health"],
        "target_groups": ["社区居民"],
        "place": "裕华区东苑街道社区服务中心",
        "county": "裕华区",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=3)).isoformat(),
        "capacity": CAPACITY,
        "skills_wanted": [],
        "signup_opens_at": (now - timedelta(hours=1)).isoformat(),
        "signup_closes_at": starts.isoformat(),
    }


async def _signed_up_events(settings: ActivitiesSettings, activity_id: str) -> list[str]:
    """The status of every ``VolunteerSignedUp`` of the activity on its topic (read from the beginning to the end)."""
    topic = settings.topic(ACTIVITIES)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(settings.kafka_bootstrap, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[str] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    env = parse_envelope(record.value)
                    if env.subject == activity_id and env.type.endswith("volunteer_signed_up.v1"):
                        found.append(env.data.model_dump()["status"])
        return found
    finally:
        await consumer.stop()


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def bench(ctx: BenchContext) -> None:
    httpx_log = logging.getLogger("httpx")
    level = httpx_log.level
    httpx_log.setLevel(logging.WARNING)  # a log line per request would be timed with it
    try:
        await _bench(ctx)
    finally:
        httpx_log.setLevel(level)


async def _bench(ctx: BenchContext) -> None:
    settings = ActivitiesSettings(
        kafka_bootstrap=ctx.kafka_bootstrap, mongo_url=ctx.mongo_url, namespace="b" + uuid.uuid4().hex[:8]
    )
    await ensure_topics(settings)
    secret = settings.internal_token.get_secret_value()

    def headers(role: str, **fields: Any) -> dict[str, str]:
        return acting_as(Identity(role=role, **fields))

    def admin() -> dict[str, str]:
        return headers("unit_admin", subject="admin-bench", unit_id=UNIT)

    app = create_app(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                auth=SignedIdentity(secret, "activities"),
                base_url="http://activities",
                timeout=60.0,
            ) as client,
        ):
            store: Store = app.state.store
            volunteers = [f"bv-{i:05d}" for i in range(VOLUNTEERS)]
            for start in range(0, VOLUNTEERS, 200):
                await asyncio.gather(
                    *(
                        store.apply_volunteer(
                            v, 1, {"status": "active", "unit_ids": [UNIT], "display_name": f"志愿者{v}"}
                        )
                        for v in volunteers[start : start + 200]
                    )
                )
            created = await client.post("/activities", json=_draft(), headers=admin())
            if created.status_code != 201:
                raise RuntimeError(f"creating the activity: {created.status_code} {created.text}")
            activity_id = created.json()["id"]
            published = await client.post(f"/activities/{activity_id}/publish", headers=admin())
            if published.status_code != 200:
                raise RuntimeError(f"publishing the activity: {published.status_code} {published.text}")

            semaphore = asyncio.Semaphore(CONCURRENCY)
            latencies: list[float] = []

            async def sign_up(volunteer_id: str) -> httpx.Response:
                async with semaphore:
                    hdrs = headers("volunteer", subject=f"user-{volunteer_id}", volunteer_id=volunteer_id)
                    t0 = time.perf_counter()
                    response = await client.post(f"/activities/{activity_id}/signups", headers=hdrs)
                    latencies.append(time.perf_counter() - t0)
                return response

            started, cpu_started = time.perf_counter(), time.process_time()
            responses = await asyncio.gather(*(sign_up(v) for v in volunteers))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started

            bad = [r for r in responses if r.status_code != 201]
            if bad:
                raise RuntimeError(f"{len(bad)} sign-ups refused, first: {bad[0].status_code} {bad[0].text}")
            statuses = [r.json()["status"] for r in responses]
            confirmed, waitlisted = statuses.count("confirmed"), statuses.count("waitlisted")
            listing = (await client.get(f"/activities/{activity_id}/signups", headers=admin())).json()
            counts = listing["counts"]
            if (confirmed, waitlisted) != (CAPACITY, VOLUNTEERS - CAPACITY) or listing["total"] != VOLUNTEERS:
                raise RuntimeError(
                    f"expected {CAPACITY} confirmed + {VOLUNTEERS - CAPACITY} waitlisted of {VOLUNTEERS}: responses "
                    f"{confirmed}/{waitlisted}, roster total {listing['total']}, counts {counts}"
                )
            if (counts.get("confirmed"), counts.get("waitlisted")) != (CAPACITY, VOLUNTEERS - CAPACITY):
                raise RuntimeError(f"activity counters disagree with the roster: {counts}")

            service: Service = app.state.service
            assert service.relay is not None
            await service.relay.flush()
            signed = await _signed_up_events(settings, activity_id)
            if len(signed) != VOLUNTEERS or signed.count("confirmed") != CAPACITY:
                confirmed_events = signed.count("confirmed")
                raise RuntimeError(f"Kafka disagrees: {len(signed)} sign-up events, {confirmed_events} confirmed")

            rate = VOLUNTEERS / elapsed
            ms = [s * 1000 for s in latencies]
            ctx.report("signups_per_s", rate)
            ctx.report("p50_ms", _percentile(ms, 50))
            ctx.report("p99_ms", _percentile(ms, 99))
            ctx.report("cpu_ms_per_signup", cpu * 1000 / VOLUNTEERS)  # this process: the service and the client
            ctx.report("confirmed", confirmed)
            ctx.report("signup_events", len(signed))
            ctx.report("waitlisted", waitlisted)
            ceiling = ctx.ceiling.get("kafka_produce_events_per_s")
            if ceiling:
                ctx.report("ratio_to_produce_ceiling", rate / ceiling)
    finally:
        await drop_namespace(settings.mongo_url, settings.namespace)
