"""Benchmark harness: infrastructure, discovery, reporting.

A benchmark is a module ``benchmarks/<name>.py`` defining ``async def bench(ctx: BenchContext) -> None`` that
calls ``ctx.report(figure, value)``. ``ceiling`` (raw Kafka/MongoDB speed on this machine) always runs first so
every other benchmark can state its figures as a fraction of it (``ctx.ceiling``) measured in the same run.
Results are printed as ``BENCH <name> <figure>=<value>`` and merged into ``benchmarks/results.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import inspect
import json
import os
import pkgutil
import platform
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local.runner import REPO_ROOT, Endpoints, InfraRunner, InfraSettings
from shared.storage import mongo_client

RESULTS_FILE = Path(__file__).resolve().parent / "results.json"
NOT_BENCHMARKS = {"harness", "ceiling", "__main__"}
BENCH_KAFKA_PORT = 29092
BENCH_KAFKA_CONTROLLER_PORT = 29093
BENCH_MONGO_PORT = 27019
BENCH_DATA_DIR = REPO_ROOT / ".stvs" / "bench-infra"
BENCH_TIMEOUT_S = 900.0

Bench = Callable[["BenchContext"], Awaitable[None]]


@dataclass
class BenchContext:
    """What a benchmark gets: endpoints, the ceiling figures of this run, and ``report``."""

    name: str
    kafka_bootstrap: str
    mongo_url: str
    ceiling: dict[str, float]
    results: dict[str, dict[str, float]] = field(default_factory=dict)

    def report(self, figure: str, value: float) -> None:
        value = float(value)
        self.results.setdefault(self.name, {})[figure] = value
        if self.name == "ceiling":
            self.ceiling[figure] = value
        print(f"BENCH {self.name} {figure}={value:.6g}", flush=True)


async def drop_namespace(mongo_url: str, namespace: str) -> None:
    """Drop every database of a benchmark's namespace (its topics stay: a shared broker is not the benchmark's)."""
    client = mongo_client(mongo_url, app_name="bench")
    try:
        for name in await client.list_database_names():
            if name.startswith(namespace):
                await client.drop_database(name)
    finally:
        await client.close()


def discover() -> dict[str, Bench]:
    """Every ``benchmarks/<name>.py`` with an async ``bench`` (ceiling excluded: it always runs first)."""
    import benchmarks

    found: dict[str, Bench] = {}
    for info in pkgutil.iter_modules(benchmarks.__path__):
        if info.name in NOT_BENCHMARKS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        bench = getattr(module, "bench", None)
        if bench is not None and inspect.iscoroutinefunction(bench):
            found[info.name] = bench
    return dict(sorted(found.items()))


@contextlib.contextmanager
def infrastructure() -> Iterator[Endpoints]:
    """The given infrastructure (STVS_KAFKA_BOOTSTRAP + STVS_MONGO_URL), else a fresh one on bench ports."""
    kafka, mongo = os.environ.get("STVS_KAFKA_BOOTSTRAP"), os.environ.get("STVS_MONGO_URL")
    if kafka and mongo:
        yield Endpoints(kafka_bootstrap=kafka, mongo_url=mongo)
        return
    settings = InfraSettings(
        kafka_port=BENCH_KAFKA_PORT,
        kafka_controller_port=BENCH_KAFKA_CONTROLLER_PORT,
        mongo_port=BENCH_MONGO_PORT,
        data_dir=BENCH_DATA_DIR,
        kafka_heap="1g",
    )
    with InfraRunner(settings, fresh=True) as endpoints:
        yield endpoints


def _save(results: dict[str, dict[str, float]]) -> None:
    """Merges into results.json so `--only NAME` keeps the other benchmarks' last figures."""
    try:
        saved: dict[str, Any] = json.loads(RESULTS_FILE.read_text())
    except (OSError, ValueError):
        saved = {}
    saved.update(results)
    saved["_meta"] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    RESULTS_FILE.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")


def select(only: str | None = None) -> dict[str, Bench]:
    """The run plan: ceiling first, then every benchmark or only ``only`` (SystemExit if unknown)."""
    from benchmarks import ceiling

    benches = discover()
    if only == "ceiling":
        benches = {}
    elif only is not None:
        if only not in benches:
            raise SystemExit(f"unknown benchmark {only!r}; available: {', '.join(['ceiling', *benches])}")
        benches = {only: benches[only]}
    return {"ceiling": ceiling.bench, **benches}


async def run_all(endpoints: Endpoints, plan: dict[str, Bench]) -> int:
    """Runs the plan in order; returns the number of benchmarks that failed."""
    ceiling_figures: dict[str, float] = {}
    results: dict[str, dict[str, float]] = {}
    failed = 0
    for name, bench in plan.items():
        ctx = BenchContext(name, endpoints.kafka_bootstrap, endpoints.mongo_url, ceiling_figures, results)
        started = time.monotonic()
        print(f"--- {name}", flush=True)
        try:
            async with asyncio.timeout(BENCH_TIMEOUT_S):
                await bench(ctx)
        except Exception:
            failed += 1
            print(f"BENCH {name} FAILED", flush=True)
            traceback.print_exc()
            if name == "ceiling":
                break  # no ratios without it
        print(f"--- {name} took {time.monotonic() - started:.1f} s", flush=True)
        _save(results)
    return failed
