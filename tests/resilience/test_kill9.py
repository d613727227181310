"""Fault 1: ``kill -9`` of each service process mid-stream, then a restart: nothing lost, nothing counted twice."""

from __future__ import annotations

import asyncio

import pytest

from infra.local.fleet import SERVICES, Fleet
from tests.resilience.support import Workload, assert_clean, run_fault


@pytest.mark.slow
async def test_kill9_each_service_mid_stream(fleet: Fleet) -> None:
    async def fault(wl: Workload) -> None:
        for name in SERVICES:
            assert await fleet.kill(name) == -9
            await asyncio.sleep(1)
            await fleet.start_service(name)
            await wl.reached(wl.progress + 15)  # some work between two kills

    figures, _ = await run_fault(fleet, "kill9", fault, slow=True)
    assert_clean(figures)
