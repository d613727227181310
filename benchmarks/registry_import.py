"""Collective registration of 50,000 volunteers (附件2) end to end: parse, validate, store, events published.

The registry app runs in-process (httpx ASGITransport with its lifespan, outbox relay included) on a fresh
namespace. A dry run of the same file gives ``parse_validate_s`` (parse, row checks, lookups against stored data);
the real upload's request time minus that is ``store_s`` (reserving the persons, writing the documents with their
staged events); ``publish_s`` is the time from the answer until every ``VolunteerRegistered`` event is on the topic;
``rows_per_s`` counts from the real upload until every event is on the topic, and ``ratio_to_mongo_insert_ceiling``
divides it by the raw ``insert_many`` rate of the same run; ``repeated_events`` counts records that repeat an event
already on the topic (at-least-once publishing). Target (issue 4): at least 5,000 rows/s.

Then, over the imported volunteers (``STVS_BENCH_LISTING_ROWS``, default the imported ones; more are inserted
straight into the collection, as the import would store them, to reach e.g. 100,000), what a unit administrator
waits for, asked ``STVS_BENCH_LISTING_TIMES`` times each (default 50): ``list_unit_p50_ms`` / ``list_unit_p99_ms``
(the city's members, first page, with the total), ``list_unit_deep_page_ms`` (its last page, median),
``search_name_p50_ms`` / ``search_name_p99_ms`` (a part of a name within the city). Listings are indexed queries
(services/registry/search.py); ``restart_ready_s`` is the time from creating a fresh registry app over the same
database until it answered the city's listing (there is no start-up scan any more).

Each row costs one document on the MongoDB-protocol server (the volunteer with its staged event and its index
keys: id_hash, scope_units, name_terms, title, field, skills), so the figure to watch on a shared machine is the
ratio.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import xlsxwriter
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.harness import BenchContext
from services.registry.adapters.mongo import VOLUNTEERS as VOLUNTEER_COLLECTION
from services.registry.adapters.spreadsheets.forms import VOLUNTEERS
from services.registry.adapters.spreadsheets.layout import FormSpec
from services.registry.app import create_app
from services.registry.domain.fields import id_check_char
from services.registry.domain.records import name_terms
from services.registry.settings import RegistrySettings
from shared.contracts.events import VOLUNTEERS as VOLUNTEER_STREAM
from shared.identity import Identity, SignedIdentity, acting_as
from shared.messaging.topics import ensure_topics
from shared.storage import mongo_client

ROWS = int(os.environ.get("STVS_BENCH_IMPORT_ROWS", "50000"))
LISTING_ROWS = int(os.environ.get("STVS_BENCH_LISTING_ROWS", "0"))  # 0: the imported ones only
LISTING_TIMES = int(os.environ.get("STVS_BENCH_LISTING_TIMES", "50"))
REGISTERED = b'"stvs.volunteer.registered.v1"'
EVENTS_TIMEOUT_S = 300.0
CITY_LEADERS = [
    {"name": "李支队", "role": "支队长"},
    {"name": "王副一", "role": "副支队长"},
    {"name": "王副二", "role": "副支队长"},
    {"name": "王副三", "role": "副支队长"},
    {"name": "赵秘书", "role": "秘书长"},
]


def _id_number(seq: int) -> str:
    birth = date(1960, 1, 1) + timedelta(days=seq // 500)
    first17 = f"130102{birth:%Y%m%d}{(seq % 500) * 2 + 1:03d}"
    return first17 + id_check_char(first17)


def _row(seq: int, unit: str) -> dict[str, str]:
    return {
        "name": f"志愿{chr(0x4E00 + seq % 20000)}{chr(0x4E00 + seq // 20000)}",
        "gender": "男",
        "id_number": _id_number(seq),
        "mobile": f"138{seq:08d}",
        "email": f"v{seq}@example.com",
        "employer": "正定县农业农村局",
        "title": "农艺师",
        "title_level": "中级",
        "education": "大学本科",
        "professional_field": "果树栽培",
        "political_status": "中共党员",
        "unit_name": unit,
        "skills": "果树修剪、病虫害防治",
        "service_areas": "助力乡村振兴",
    }


def _workbook(spec: FormSpec[Any], rows: list[dict[str, str]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet(spec.sheet_name)
    columns = [c.key for c in spec.columns]
    for i, column in enumerate(spec.columns):
        sheet.write_string(0, i, column.header)
    for r, row in enumerate(rows, start=1):
        for i, key in enumerate(columns):
            value = row.get(key)
            if value is not None:
                sheet.write_string(r, i, value)
    book.close()
    return buffer.getvalue()


async def _count_registered(bootstrap: str, topic: str, expect: int, timeout_s: float) -> tuple[int, int]:
    """Distinct VolunteerRegistered events (by event id) on ``topic`` from the beginning, waiting until ``expect``
    (or timeout), and how many records repeated one (at-least-once: the outbox sweeper may publish an event a
    second time)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + 10
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or [])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ids: set[str] = set()
        records = 0
        deadline = time.monotonic() + timeout_s
        while len(ids) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for recs in batch.values():
                for r in recs:
                    if REGISTERED in r.value:
                        records += 1
                        ids.add(json.loads(r.value)["id"])
        return len(ids), records - len(ids)
    finally:
        await consumer.stop()


async def bench(ctx: BenchContext) -> None:
    settings = RegistrySettings(
        kafka_bootstrap=ctx.kafka_bootstrap, mongo_url=ctx.mongo_url, namespace="b" + uuid.uuid4().hex[:8]
    )
    await ensure_topics(settings)
    province = Identity(subject="bench-province", role="province_admin")

    def hdrs() -> dict[str, str]:  # the client signs it for each request
        return acting_as(province)

    signing = SignedIdentity(settings.internal_token.get_secret_value(), "registry")

    app = create_app(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app), auth=signing, base_url="http://registry", timeout=600
            ) as client,
        ):
            r = await client.post(
                "/units", json={"kind": "总队", "leaders": [{"name": "张总", "role": "总队长"}]}, headers=hdrs()
            )
            r.raise_for_status()
            r = await client.post(
                "/units",
                json={"kind": "市级支队", "base": "石家庄", "parent_id": r.json()["id"], "leaders": CITY_LEADERS},
                headers=hdrs(),
            )
            r.raise_for_status()
            unit_name, city_id = r.json()["name"], r.json()["id"]
            data = _workbook(VOLUNTEERS, [_row(seq, unit_name) for seq in range(ROWS)])
            files = {"file": ("volunteers.xlsx", data, "application/octet-stream")}

            started = time.perf_counter()
            r = await client.post("/forms/volunteers/import", files=files, params={"dry_run": "true"}, headers=hdrs())
            parse_validate_s = time.perf_counter() - started
            r.raise_for_status()
            assert r.json()["created"] == ROWS and not r.json()["errors"], r.text[:2000]

            started = time.perf_counter()
            r = await client.post("/forms/volunteers/import", files=files, headers=hdrs())
            request_s = time.perf_counter() - started
            assert r.status_code == 200 and r.json()["created"] == ROWS, r.text[:2000]
            published, repeated = await _count_registered(
                ctx.kafka_bootstrap, settings.topic(VOLUNTEER_STREAM), ROWS, EVENTS_TIMEOUT_S
            )
            total_s = time.perf_counter() - started
            assert published == ROWS, f"{published} VolunteerRegistered events on the topic, expected {ROWS}"
            rows_per_s = ROWS / total_s
            ctx.report("rows_per_s", rows_per_s)
            ctx.report("parse_validate_s", parse_validate_s)
            ctx.report("store_s", max(0.0, request_s - parse_validate_s))
            ctx.report("publish_s", total_s - request_s)
            ctx.report("repeated_events", repeated)
            ceiling = ctx.ceiling.get("mongo_insert_docs_per_s")
            if ceiling:
                ctx.report("ratio_to_mongo_insert_ceiling", rows_per_s / ceiling)
            for name, value in (await _listing_figures(app, settings, client, hdrs, city_id)).items():
                ctx.report(name, value)
    finally:  # after the lifespan: the relay is stopped, nothing writes into the dropped database
        mongo = mongo_client(settings.mongo_url, app_name="bench")
        await mongo.drop_database(settings.database("registry"))
        await mongo.close()


def _p99(spent: list[float]) -> float:
    ordered = sorted(spent)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def _top_up(app: Any, total: int) -> None:
    """More volunteers in the city until ``total``: copies of an imported one with their own number, name, keyed
    hash and name terms (as the import stores them), for listing figures at a size this benchmark need not import."""
    registry = app.state.registry
    volunteers = registry.db[VOLUNTEER_COLLECTION]
    have = await volunteers.count_documents({})
    if have >= total:
        return
    template = await volunteers.find_one({}, {"_outbox": 0, "_outbox_n": 0})
    numbers = await registry.next_platform_numbers(total - have)
    for start in range(0, len(numbers), 2_000):
        docs = []
        for offset, number in enumerate(numbers[start : start + 2_000]):
            seq = ROWS + start + offset
            name = _row(seq, "")["name"]
            docs.append(
                {
                    **template,
                    "_id": number,
                    "platform_number": number,
                    "name": name,
                    "name_terms": name_terms(name),
                    "id_hash": f"bench-{seq}",
                }
            )
        await volunteers.insert_many(docs, ordered=False)


async def _listing_figures(
    app: Any,
    settings: RegistrySettings,
    client: httpx.AsyncClient,
    hdrs: Callable[[], dict[str, str]],
    city_id: str,
) -> dict[str, float]:
    """A unit admin's daily questions over the volunteers: the city's members, a search by name; a restart."""
    relay = app.state.registry.outbox.relay
    started = time.perf_counter()
    await relay.flush()  # the published events are cleared from their documents: the timings are the listings'
    cleared_s = time.perf_counter() - started
    if LISTING_ROWS > ROWS:
        await _top_up(app, LISTING_ROWS)
    size = max(ROWS, LISTING_ROWS)

    async def timed(http: httpx.AsyncClient, params: dict[str, Any], times: int) -> list[float]:
        spent = []
        for _ in range(times):
            started = time.perf_counter()
            r = await http.get("/volunteers", params=params, headers=hdrs())
            spent.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200 and r.json()["total"] > 0, r.text[:500]
        return spent

    city = {"unit_id": city_id, "limit": 20}
    name = {"name": f"志愿{chr(0x4E00 + 7)}", "unit_id": city_id, "limit": 20}
    listing = await timed(client, city, LISTING_TIMES)
    search = await timed(client, name, LISTING_TIMES)
    deep = await timed(client, {**city, "skip": size - 40}, 5)
    figures = {
        "outbox_cleared_after_s": cleared_s,
        "listing_volunteers": float(size),
        "list_unit_p50_ms": statistics.median(listing),
        "list_unit_p99_ms": _p99(listing),
        "list_unit_deep_page_ms": statistics.median(deep),
        "search_name_p50_ms": statistics.median(search),
        "search_name_p99_ms": _p99(search),
    }
    # A restart: a fresh registry over the same database, until it answers the city's listing.
    started = time.perf_counter()
    fresh = create_app(settings)
    async with (
        fresh.router.lifespan_context(fresh),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(fresh),
            auth=SignedIdentity(settings.internal_token.get_secret_value(), "registry"),
            base_url="http://registry",
            timeout=600,
        ) as again,
    ):
        r = await again.get("/volunteers", params=city, headers=hdrs())
        figures["restart_ready_s"] = time.perf_counter() - started
        assert r.status_code == 200 and r.json()["total"] == size, r.text[:500]
    return figures
