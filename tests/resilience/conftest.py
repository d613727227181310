"""Fault tests (issue 9): each module runs its own Kafka and SecantusDB (they are stopped and killed here, so never
the shared ones) on free loopback ports with a throw-away data dir, and the five services in a :class:`Fleet`.

Plain ``pytest`` (``make test``) skips the tests marked ``slow``; ``make chaos`` selects every resilience test with
an explicit ``-m``, sets ``STVS_CHAOS_FULL=1`` (full volume: at least 10,000 events per test) and
``STVS_CHAOS_REPLICAS=2`` (two processes of every service: a fault hits one replica while the other serves).
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from infra.local.fleet import Fleet
from tests.resilience.support import ChaosInfra, chaos_env, start_chaos_infra

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("markexpr"):
        return  # an explicit -m decides
    skip = pytest.mark.skip(reason="slow fault test: run by `make chaos` (pytest -m 'slow or not slow')")
    for item in items:
        if "slow" in item.keywords and _HERE in item.path.parents:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def chaos_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosInfra]:
    # A SIGTERM (a `timeout`, a CI cancel) tears down like Ctrl-C, so the broker and database never outlive the run.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    infra = start_chaos_infra(tmp_path_factory.mktemp("chaos-infra"))
    try:
        yield infra
    finally:
        infra.shutdown()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
async def fleet(chaos_infra: ChaosInfra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    logs = tmp_path_factory.mktemp("chaos-logs")
    replicas = int(os.environ.get("STVS_CHAOS_REPLICAS") or 1)
    async with Fleet(chaos_infra.endpoints, logs=logs, env=chaos_env(), replicas=replicas) as f:
        print(f"fleet namespace {f.namespace}, logs in {logs}")
        yield f
