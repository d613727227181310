"""Two replicas of the activities service on one database and one Kafka: the sign-up rules hold across processes.

Each replica is a whole app (its own MongoDB client, outbox relay, consumers and repair sweep) in this process; they
share nothing but the database and the broker, as N processes would. The burst is smaller than the benchmark's
(``benchmarks/signup.py``: 2,000 sign-ups for 500 places through one replica) so the test stays short on a busy
machine; the rules checked are the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from services.activities.app import create_app
from services.activities.settings import ActivitiesSettings
from shared.contracts.events import ACTIVITIES
from shared.settings import ServiceSettings
from tests.activities.conftest import CHECKIN_SECRET, Running, draft, read_all
from tests.fixtures import signing

SIGN_UPS = 240
PLACES = 60
CANCELLED = 20
IN_FLIGHT = 25  # requests under way at once per replica (the benchmark's 50 in all): all of them overlap anyway


@pytest.fixture(scope="module")
async def replicas(settings: ServiceSettings) -> AsyncIterator[list[Running]]:
    activities_settings = ActivitiesSettings(**{**settings.model_dump(), "checkin_secret": CHECKIN_SECRET})
    apps = [create_app(activities_settings) for _ in range(2)]
    async with (
        apps[0].router.lifespan_context(apps[0]),
        apps[1].router.lifespan_context(apps[1]),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=apps[0]), auth=signing(apps[0]), base_url="http://a", timeout=120
        ) as first,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=apps[1]), auth=signing(apps[1]), base_url="http://b", timeout=120
        ) as second,
    ):
        yield [
            Running(app=apps[0], client=first, settings=activities_settings),
            Running(app=apps[1], client=second, settings=activities_settings),
        ]


async def flush(replicas: list[Running]) -> None:
    for replica in replicas:
        assert replica.service.relay is not None
        await replica.service.relay.flush()


async def test_two_replicas_never_oversell_and_keep_the_waitlist_in_order(replicas: list[Running]) -> None:
    one, two = replicas
    created = await one.client.post("/activities", json=draft(capacity=PLACES), headers=one.admin())
    activity_id = created.json()["id"]
    assert (await two.client.post(f"/activities/{activity_id}/publish", headers=two.admin())).status_code == 200
    volunteers = [f"rep-{i:04d}" for i in range(SIGN_UPS)]
    await asyncio.gather(*(one.add_volunteer(v) for v in volunteers))

    # Every volunteer signs up at once, half of them through each replica.
    limits = [asyncio.Semaphore(IN_FLIGHT), asyncio.Semaphore(IN_FLIGHT)]

    async def sign_up(i: int, volunteer_id: str) -> httpx.Response:
        async with limits[i % 2]:
            path = f"/activities/{activity_id}/signups"
            return await replicas[i % 2].client.post(path, headers=one.volunteer(volunteer_id))

    responses = await asyncio.gather(*(sign_up(i, v) for i, v in enumerate(volunteers)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses if r.status_code != 201][:3]
    answers = {r.json()["volunteer_id"]: r.json() for r in responses}
    statuses = [a["status"] for a in answers.values()]
    assert (statuses.count("confirmed"), statuses.count("waitlisted")) == (PLACES, SIGN_UPS - PLACES)
    told = sorted(a["waitlist_position"] for a in answers.values() if a["status"] == "waitlisted")
    assert told == list(range(1, SIGN_UPS - PLACES + 1)), "each waitlisted sign-up was told a distinct place in line"

    listing = (await two.client.get(f"/activities/{activity_id}/signups", headers=two.admin())).json()
    items = listing["items"]
    assert len(items) == SIGN_UPS and listing["counts"]["confirmed"] == PLACES
    assert [s["sequence"] for s in items] == list(range(1, SIGN_UPS + 1)), "one order of arrival, no gap, no twice"
    # First come, first served: the places went to the first arrivals, the waitlist follows in order of arrival.
    assert {s["status"] for s in items[:PLACES]} == {"confirmed"}
    assert [s["waitlist_position"] for s in items[PLACES:]] == list(range(1, SIGN_UPS - PLACES + 1))
    assert all(answers[s["volunteer_id"]]["status"] == s["status"] for s in items), "answers agree with the roster"
    assert all(answers[s["volunteer_id"]]["sequence"] == s["sequence"] for s in items)

    await flush(replicas)
    events = [
        e.data.model_dump()
        for e in await read_all(one.settings.kafka_bootstrap, one.settings.topic(ACTIVITIES))
        if e.subject == activity_id and e.type.endswith("volunteer_signed_up.v1")
    ]
    assert sorted(e["volunteer_id"] for e in events) == volunteers, "one event per sign-up, none twice"
    assert sum(e["status"] == "confirmed" for e in events) == PLACES
    assert {e["volunteer_id"]: e["status"] for e in events} == {v: a["status"] for v, a in answers.items()}

    # Concurrent cancellations of confirmed sign-ups, through both replicas: as many promoted as cancelled, and
    # exactly the first ones of the waitlist.
    waiting = [s["volunteer_id"] for s in items[PLACES:]]
    leaving = [s["volunteer_id"] for s in items[:PLACES:3]][:CANCELLED]
    cancels = await asyncio.gather(
        *(
            replicas[i % 2].client.delete(f"/activities/{activity_id}/signups/{v}", headers=one.volunteer(v))
            for i, v in enumerate(leaving)
        )
    )
    assert {r.status_code for r in cancels} == {200}, [r.text for r in cancels if r.status_code != 200][:3]
    promoted = [v for r in cancels for v in r.json()["promoted"]]
    assert sorted(promoted) == sorted(waiting[:CANCELLED])

    after = (await one.client.get(f"/activities/{activity_id}/signups", headers=one.admin())).json()
    counts = after["counts"]
    assert (counts["confirmed"], counts["waitlisted"], counts["cancelled"]) == (
        PLACES,
        SIGN_UPS - PLACES - CANCELLED,
        CANCELLED,
    )
    by_status: dict[str, list[str]] = {}
    for s in after["items"]:
        by_status.setdefault(s["status"], []).append(s["volunteer_id"])
    assert sorted(by_status["cancelled"]) == sorted(leaving)
    assert set(waiting[:CANCELLED]) <= set(by_status["confirmed"])
    assert by_status["waitlisted"] == waiting[CANCELLED:], "the rest keep their order"
    assert [s["waitlist_position"] for s in after["items"] if s["status"] == "waitlisted"] == list(
        range(1, SIGN_UPS - PLACES - CANCELLED + 1)
    )

    await flush(replicas)
    later = [
        (e.type.split(".")[2], e.data.model_dump())
        for e in await read_all(one.settings.kafka_bootstrap, one.settings.topic(ACTIVITIES))
        if e.subject == activity_id and not e.type.endswith(("volunteer_signed_up.v1", "published.v1"))
    ]
    assert sorted(d["volunteer_id"] for kind, d in later if kind == "signup_cancelled") == sorted(leaving)
    confirmed = [d for kind, d in later if kind == "signup_confirmed"]
    assert sorted(d["volunteer_id"] for d in confirmed) == sorted(waiting[:CANCELLED])
    assert {d["reason"] for d in confirmed} == {"promoted"}
