"""Two reporting instances in one consumer group (two services, one namespace, one database) consume a stream of
registry and activity events, some published twice; one instance stops while the stream is still flowing (a
rebalance hands its partitions, and any poll it had not committed, to the other). The figures must be exactly what
the events say: nothing counted twice, nothing missed."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from services.reporting.app import create_app
from services.reporting.settings import ReportingSettings
from shared.contracts.envelope import Envelope
from shared.settings import ServiceSettings
from tests.fixtures import eventually, signing
from tests.reporting.helpers import (
    Harness,
    at,
    completed,
    corrected,
    get_json,
    joined,
    left,
    publish,
    unit_event,
    volunteer_registered,
)

UNITS = ["K1", "K2", "K3", "K4"]
VOLUNTEERS = [f"v{n:03d}" for n in range(240)]


@contextlib.asynccontextmanager
async def instance(settings: ServiceSettings) -> AsyncIterator[Harness]:
    """One reporting instance; small polls, so that a rebalance finds polls under way."""
    rsettings = ReportingSettings(**{**settings.model_dump(), "campaign_year": 2026, "projections_batch_size": 15})
    app = create_app(rsettings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, auth=signing(app), base_url="http://reporting") as client:
            yield Harness(app, client, rsettings)


def applied(harness: Harness) -> int:
    return int(harness.app.state.service.consumers[0].batched_events)


class Stream:
    """The events, and what they say the figures must be."""

    def __init__(self, rng: random.Random) -> None:
        self.first: list[Envelope[Any]] = [
            unit_event("P", "province_corps", []),
            unit_event("C1", "city_detachment", ["P"]),
            *(unit_event(u, "county_team", ["P", "C1"]) for u in UNITS),
        ]
        self.second: list[Envelope[Any]] = []
        self.members: dict[str, str] = {}
        self.hours: dict[str, float] = defaultdict(float)
        self.activities: Counter[str] = Counter()
        self.unit_activities: Counter[str] = Counter()
        self.unit_hours: dict[str, float] = defaultdict(float)
        for n, vid in enumerate(VOLUNTEERS):
            self.members[vid] = UNITS[n % len(UNITS)]
            self.first.append(volunteer_registered(vid, [self.members[vid]]))
        for n in range(80):
            unit = UNITS[n % len(UNITS)]
            people = [(vid, rng.choice((1.0, 1.5, 2.0, 3.5))) for vid in rng.sample(VOLUNTEERS, 6)]
            event = completed(f"a{n:02d}", unit, at(2026, 5 + n % 4, 1 + n % 27), people)
            (self.first if n < 40 else self.second).append(event)
            self.unit_activities[unit] += 1
            for vid, h in people:
                self.hours[vid] += h
                self.activities[vid] += 1
                self.unit_hours[unit] += h
            if n % 10 == 0:  # a correction of the first participant's hours
                vid, was = people[0]
                self.second.append(corrected(f"a{n:02d}", unit, at(2026, 5 + n % 4, 1 + n % 27), vid, was, was + 1))
                self.hours[vid] += 1
                self.unit_hours[unit] += 1
        for n, vid in enumerate(VOLUNTEERS[::12]):  # some volunteers move to another unit
            target = UNITS[(UNITS.index(self.members[vid]) + 1) % len(UNITS)]
            self.second += [left(vid, self.members[vid], 2), joined(vid, target, 3, at(2026, 6, 1 + n % 20))]
            self.members[vid] = target
        # the producer's outbox publishes some events a second time (same id), later
        self.second += self.first[::9] + self.second[::7]


async def publish_slowly(settings: ServiceSettings, events: Sequence[Envelope[Any]], pause_s: float) -> None:
    for first in range(0, len(events), 20):
        await publish(settings, events[first : first + 20])
        await asyncio.sleep(pause_s)


async def test_two_instances_and_a_rebalance_count_every_event_exactly_once(settings: ServiceSettings) -> None:
    stream = Stream(random.Random(7))
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(instance(settings))
        b_stack = contextlib.AsyncExitStack()
        b = await b_stack.enter_async_context(instance(settings))
        try:
            flowing = asyncio.create_task(publish_slowly(settings, stream.first, 0.05))
            # both members have partitions and apply polls
            await eventually(lambda: applied(a) > 0 and applied(b) > 0, timeout_s=60)
            await flowing
            second = asyncio.create_task(publish_slowly(settings, stream.second, 0.02))
            await asyncio.sleep(0.1)
        finally:
            await b_stack.aclose()  # one instance stops mid-stream: its partitions move to the other
        await second
        consumer = a.app.state.service.consumers[0]

        async def caught_up() -> bool:
            return not any((await consumer.lag()).values())

        await eventually(caught_up, timeout_s=90, interval_s=0.5)

        province = await get_json(a.client, "/stats/units/P", a.settings, year=2026)
        assert province["rollup"]["volunteers"] == len(VOLUNTEERS)
        assert province["rollup"]["activities"] == 80
        assert province["rollup"]["hours"] == round(sum(stream.hours.values()), 2)
        headcount = Counter(stream.members.values())
        for unit in UNITS:
            own = (await get_json(a.client, f"/stats/units/{unit}", a.settings, year=2026))["own"]
            assert (own["volunteers"], own["activities"]) == (headcount[unit], stream.unit_activities[unit]), unit
            assert own["hours"] == round(stream.unit_hours[unit], 2), unit
        for vid in VOLUNTEERS:
            record = await get_json(a.client, f"/stats/volunteers/{vid}", a.settings)
            assert (record["hours"], record["activities"]) == (round(stream.hours[vid], 2), stream.activities[vid])
            assert record["unit_ids"] == [stream.members[vid]]
        june = await get_json(a.client, "/monthly-reports/P/2026-06", a.settings)
        assert june["rollup"]["activities"] == 20
        assert june["team_building"]["subtree_volunteers"] == len(VOLUNTEERS)
