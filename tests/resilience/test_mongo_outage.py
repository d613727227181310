"""Fault 3: the MongoDB-protocol server stopped mid-stream and started again. Writes during the outage get a 503
problem (Chinese ``detail``, retry advice); nothing accepted is lost; the services recover without a restart."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from infra.local.fleet import SERVICES, Fleet
from tests.resilience.support import ADMIN, ChaosInfra, Workload, assert_clean, run_fault

OUTAGE_S = 20


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.slow
async def test_mongo_stopped_and_restarted(fleet: Fleet, chaos_infra: ChaosInfra) -> None:
    pids = {name: fleet.pid(name) for name in SERVICES}
    during: list[tuple[str, int | str, float, dict[str, str], str]] = []

    async def fault(wl: Workload) -> None:
        token = wl._tokens.get("city") or {}
        await chaos_infra.stop("secantus")
        async with httpx.AsyncClient(base_url=fleet.api, timeout=30) as client:
            started = time.monotonic()
            while time.monotonic() - started < OUTAGE_S:
                for what, method, url, body in (
                    ("write", "POST", "/activities", wl.activity_body(999, 5)),
                    ("signin", "POST", "/auth/signin", {"username": ADMIN[0], "password": ADMIN[1]}),
                    ("read", "GET", f"/units/{wl.city_id}", None),
                ):
                    t0 = time.monotonic()
                    try:
                        r = await client.request(method, url, json=body, headers=token)
                    except httpx.HTTPError as exc:
                        during.append((what, type(exc).__name__, time.monotonic() - t0, {}, ""))
                    else:
                        during.append((what, r.status_code, time.monotonic() - t0, dict(r.headers), r.text[:300]))
                await asyncio.sleep(1)
        await chaos_infra.start("secantus")

    figures, wl = await run_fault(fleet, "mongo_outage", fault, slow=True)
    for what, status, took, headers, body in during:
        print(
            f"  during outage: {what} -> {status} in {took:.1f} s retry-after={headers.get('retry-after')} {body[:120]}"
        )
    assert {name: fleet.pid(name) for name in SERVICES} == pids, "a service died or was restarted"
    bad = [d for d in during if d[1] != 503 and not (d[0] == "read" and d[1] == 200)]
    assert not bad, f"during the outage, answers other than 503: {bad[:5]}"
    refused = [d for d in during if d[1] == 503]
    assert all(_has_chinese(d[4]) and d[3].get("content-type", "").startswith("application/problem") for d in refused)
    assert all("retry-after" in d[3] for d in refused), "503 without Retry-After"
    five_hundreds = [p for p in wl.problems if p[1] == 500]
    assert not five_hundreds, five_hundreds[:3]
    assert_clean(figures)
