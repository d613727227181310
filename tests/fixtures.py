"""Fixtures shared by the integration tests: an isolated namespace (topics + databases) per test module on the
session's real Kafka and MongoDB-protocol server, and small helpers to read what reached a topic."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.identity import SignedIdentity
from shared.messaging.dlq import partitions_of
from shared.messaging.topics import ensure_topics
from shared.settings import ServiceSettings


def make_settings(infra: Any, **overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongo_url": infra.mongo_url,
        "namespace": "t" + uuid.uuid4().hex[:10],
        "consumer_backoff_ms": 20,
        "consumer_batch_size": 100,
        "outbox_sweep_interval_s": 3600,
        "outbox_sweep_grace_s": 0,
    }
    values.update(overrides)
    return ServiceSettings(**values)


def signing(app: Any) -> SignedIdentity:
    """A test client's ``auth`` for a service app: signs each request's identity (``acting_as`` headers) for it."""
    return SignedIdentity(app.state.internal_secret, app.state.service_name)


@pytest.fixture(scope="module")
async def settings(infra: Any) -> ServiceSettings:
    """Settings of a fresh namespace with all its topics created."""
    s = make_settings(infra)
    await ensure_topics(s, partitions=3)
    return s


async def read_topic(bootstrap: str, topic: str, *, expect: int, timeout_s: float = 20.0) -> list[Any]:
    """Every record of ``topic`` from the beginning, waiting until at least ``expect`` arrived (or timeout)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        tps = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        assert tps, f"topic {topic} does not exist"
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        while len(out) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                out.extend(recs)
        # a short settle to catch unexpected extra records (duplicates)
        batch = await consumer.getmany(timeout_ms=300)
        for recs in batch.values():
            out.extend(recs)
        return out
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], Any], timeout_s: float = 20.0, interval_s: float = 0.1) -> Any:
    """Await ``check()`` until it returns a truthy value; fail with the last value after the timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last value: {last!r})")


@pytest.fixture
async def cleanup() -> AsyncIterator[list[Callable[[], Any]]]:
    """Register async callables to run after the test, last first."""
    actions: list[Callable[[], Any]] = []
    yield actions
    for action in reversed(actions):
        result = action()
        if asyncio.iscoroutine(result):
            await result
