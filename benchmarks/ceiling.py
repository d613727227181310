"""The ceiling: what raw clients get from this machine's Kafka and MongoDB, with no platform code in between.

Every other benchmark is judged against these figures from the same run:
``kafka_produce_events_per_s`` (idempotent producer, acks=all, batched sends), ``kafka_consume_events_per_s``
(``getmany`` of the same events) and ``mongo_insert_docs_per_s`` (``insert_many`` in batches of 1,000).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from benchmarks.harness import BenchContext

EVENTS = 100_000
DOCS = 100_000
PAYLOAD = 1024
CHUNK = 10_000  # send() futures gathered per chunk: bounded memory, full batches
MONGO_BATCH = 1_000
PARTITIONS = 3


async def bench(ctx: BenchContext) -> None:
    await _kafka(ctx)
    await _mongo(ctx)


async def _kafka(ctx: BenchContext) -> None:
    topic = f"bench.ceiling.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=ctx.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
        await _produce(ctx, topic)
        await _consume(ctx, topic)
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def _produce(ctx: BenchContext, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=ctx.kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=20,
        max_batch_size=1024 * 1024,  # with linger 20 ms: the best of a few settings tried on 2 cores
    )
    await producer.start()
    try:
        value = os.urandom(PAYLOAD // 2).hex().encode()  # 1 KB
        keys = [f"aggregate-{i}".encode() for i in range(1_000)]
        started = time.perf_counter()
        for first in range(0, EVENTS, CHUNK):
            futures: list[Any] = []
            for i in range(first, min(first + CHUNK, EVENTS)):
                futures.append(await producer.send(topic, value, key=keys[i % len(keys)]))
            await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    ctx.report("kafka_produce_events_per_s", EVENTS / elapsed)


async def _consume(ctx: BenchContext, topic: str) -> None:
    # Manual assignment: the ceiling is fetch throughput, not the (one-off) group join.
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        received = 0
        started = time.perf_counter()
        while received < EVENTS:
            batch = await consumer.getmany(timeout_ms=1_000, max_records=10_000)
            received += sum(len(records) for records in batch.values())
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    ctx.report("kafka_consume_events_per_s", EVENTS / elapsed)


async def _mongo(ctx: BenchContext) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(ctx.mongo_url)
    db = client["stvs_bench_ceiling"]
    try:
        await db.drop_collection("docs")
        payload = "x" * (PAYLOAD - 64)  # ~1 KB with the other fields
        started = time.perf_counter()
        for first in range(0, DOCS, MONGO_BATCH):
            docs = [{"n": i, "unit": f"unit-{i % 100}", "payload": payload} for i in range(first, first + MONGO_BATCH)]
            await db["docs"].insert_many(docs)
        elapsed = time.perf_counter() - started
        ctx.report("mongo_insert_docs_per_s", DOCS / elapsed)
    finally:
        await client.drop_database(db.name)
        await client.close()
