"""Fault 4: a consumer-group rebalance: a second replica of reporting and of the notifier joins mid-stream (same
consumer groups, other HTTP ports) and leaves again: no gap, no double count."""

from __future__ import annotations

import pytest

from infra.local.fleet import Fleet
from tests.resilience.support import Workload, assert_clean, run_fault


@pytest.mark.slow
async def test_replica_joins_and_leaves(fleet: Fleet) -> None:
    async def fault(wl: Workload) -> None:
        extra = [await fleet.start_replica("reporting"), await fleet.start_replica("notifier")]
        await wl.reached(wl.progress + 40)
        for name in extra:
            assert await fleet.stop_service(name) in (0, -15)  # uvicorn re-raises SIGTERM after its shutdown

    figures, _ = await run_fault(fleet, "rebalance", fault, slow=True)
    assert_clean(figures)
