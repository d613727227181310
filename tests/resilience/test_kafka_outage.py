"""Fault 2: the Kafka broker stopped for 30 s mid-stream and started again: producers and consumers recover by
themselves (no service restarted), the outbox catches up, nothing is lost."""

from __future__ import annotations

import asyncio

import pytest

from infra.local.fleet import SERVICES, Fleet
from tests.resilience.support import ChaosInfra, Workload, assert_clean, run_fault


@pytest.mark.slow
async def test_kafka_stopped_30s(fleet: Fleet, chaos_infra: ChaosInfra) -> None:
    pids = {name: fleet.pid(name) for name in SERVICES}

    async def fault(wl: Workload) -> None:
        await chaos_infra.stop("kafka")
        await asyncio.sleep(30)
        await chaos_infra.start("kafka")

    figures, _ = await run_fault(fleet, "kafka_outage", fault, slow=True)
    assert {name: fleet.pid(name) for name in SERVICES} == pids, "a service died or was restarted"
    assert_clean(figures)
