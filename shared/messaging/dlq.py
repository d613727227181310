"""Dead letters: list what a topic's ``.dlq`` holds and re-publish chosen ones once the cause is fixed."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel

from shared.messaging.consumer import H_ATTEMPTS, H_ERROR, H_GROUP, H_REASON, H_REPLAY_FOR, H_TOPIC, H_TRUNCATED

DLQ_HEADERS = {H_ERROR, H_REASON, H_ATTEMPTS, H_TOPIC, H_GROUP, H_TRUNCATED}


class DeadLetter(BaseModel):
    dlq_topic: str
    partition: int
    offset: int
    key: str | None
    reason: str
    error: str
    attempts: int
    original_topic: str
    consumer_group: str
    headers: dict[str, str]
    value_preview: str
    size: int


async def list_dead_letters(bootstrap: str, dlq_topic: str, *, limit: int = 100) -> list[DeadLetter]:
    """Read up to ``limit`` dead letters from the start of ``dlq_topic`` (no consumer group, nothing committed)."""
    records = await _read_all(bootstrap, dlq_topic, limit=limit)
    return [_describe(dlq_topic, r) for r in records]


async def replay_dead_letters(
    bootstrap: str,
    dlq_topic: str,
    offsets: Collection[tuple[int, int]] | None = None,
    *,
    groups: Collection[str] | None = None,
) -> int:
    """Re-publish dead letters (all, or the given (partition, offset) pairs; only those of ``groups`` when given) to
    their original topic, each addressed to the consumer group that failed it: the other groups ignore it."""
    records = await _read_all(bootstrap, dlq_topic, limit=100_000)
    chosen = [
        r
        for r in records
        if (offsets is None or (r.partition, r.offset) in offsets) and (groups is None or _header(r, H_GROUP) in groups)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for r in chosen:
            headers = [(k, v) for k, v in (r.headers or ()) if k not in DLQ_HEADERS and not k.startswith("x-stvs-")]
            if group := _header(r, H_GROUP):
                headers.append((H_REPLAY_FOR, group.encode()))
            original = _header(r, H_TOPIC) or dlq_topic.removesuffix(".dlq")
            await producer.send_and_wait(original, r.value, key=r.key, headers=headers)
    finally:
        await producer.stop()
    return len(chosen)


def _header(record: Any, name: str) -> str:
    value = dict(record.headers or ()).get(name)
    return value.decode(errors="replace") if value else ""


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """Partition numbers of a topic (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for d in described if d.get("error_code") == 0 for p in d["partitions"])


async def _read_all(bootstrap: str, topic: str, *, limit: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        client_id=f"dlq-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[Any] = []
        while len(out) < limit and not await _caught_up(consumer, tps, end):
            batch = await consumer.getmany(timeout_ms=1000, max_records=min(500, limit - len(out)))
            for recs in batch.values():
                out.extend(recs)
        return sorted(out, key=lambda r: (r.partition, r.offset))[:limit]
    finally:
        await consumer.stop()


async def _caught_up(consumer: AIOKafkaConsumer, tps: list[TopicPartition], end: dict[Any, int]) -> bool:
    for tp in tps:
        if await consumer.position(tp) < end[tp]:
            return False
    return True


def _describe(dlq_topic: str, r: Any) -> DeadLetter:
    h = {k: v.decode(errors="replace") for k, v in (r.headers or ())}
    value = r.value or b""
    return DeadLetter(
        dlq_topic=dlq_topic,
        partition=r.partition,
        offset=r.offset,
        key=r.key.decode(errors="replace") if r.key else None,
        reason=h.get(H_REASON, ""),
        error=h.get(H_ERROR, ""),
        attempts=int(h.get(H_ATTEMPTS, "0") or 0),
        original_topic=h.get(H_TOPIC, dlq_topic.removesuffix(".dlq")),
        consumer_group=h.get(H_GROUP, ""),
        headers=h,
        value_preview=value[:500].decode(errors="replace"),
        size=len(value),
    )
