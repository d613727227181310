"""A watchdog for the notifier's integration tests: a test still running after a minute dumps its asyncio tasks
(what it is waiting for) instead of hanging silently."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import pytest

WATCHDOG_S = float(os.environ.get("STVS_TEST_WATCHDOG_S", "45"))


@pytest.fixture(autouse=True)
async def _watchdog(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    async def dump() -> None:
        await asyncio.sleep(WATCHDOG_S)
        print(f"\n--- {request.node.nodeid} still running after {WATCHDOG_S:g}s", file=sys.__stderr__, flush=True)
        for task in asyncio.all_tasks():
            task.print_stack(limit=8, file=sys.__stderr__)
        if sys.__stderr__ is not None:
            sys.__stderr__.flush()

    watchdog = asyncio.create_task(dump())
    yield
    watchdog.cancel()
