"""The deadline scheduler against the real broker and server: every due slot's event published exactly once,
with two replicas scanning at the same time, a lease hand-over and a restart after downtime (catch-up once)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from services.notifier.adapters.mongo import SLOT_BATCHES, SLOTS
from services.notifier.app import Notifier
from shared.contracts.envelope import parse_envelope
from shared.contracts.events import DEADLINES
from tests.fixtures import read_topic
from tests.notifier.support import at, notifier_settings, running, unit_registered

WITHOUT_CONTACT = [f"u-open-{i}" for i in range(5)]
WITH_CONTACT = ["u-done-1", "u-done-2"]


async def test_two_replicas_and_a_restart_publish_each_slot_once(infra: Any) -> None:
    settings = await notifier_settings(infra)
    a, b = Notifier(settings, holder="replica-a"), Notifier(settings, holder="replica-b")
    async with running(a), running(b):
        for unit_id in WITHOUT_CONTACT:
            await _apply(a, unit_registered(unit_id, contact=False))
        for unit_id in WITH_CONTACT:
            await _apply(a, unit_registered(unit_id, email=f"{unit_id}@example.org"))

        # Both replicas scan at the same moment: the lease lets one do it.
        now1 = at("2026-04-13 10:00")
        claimed = await asyncio.gather(a.scheduler.run_once(now1), b.scheduler.run_once(now1))
        assert sorted(claimed) == [0, 5], "one replica claims the 7-days slot of the 5 units without a contact"

        # Even when both skip the lease (a hand-over in the middle of a scan), a slot is claimed once.
        again = await asyncio.gather(
            a.scheduler.run_once(now1, use_lease=False), b.scheduler.run_once(now1, use_lease=False)
        )
        assert again == [0, 0]

        # Two replicas race for the next slot (3 days before): each slot is won once.
        now2 = at("2026-04-17 10:00")
        raced = await asyncio.gather(
            a.scheduler.run_once(now2, use_lease=False), b.scheduler.run_once(now2, use_lease=False)
        )
        assert sum(raced) == 5, raced
        await a.service.relay.flush()  # type: ignore[union-attr]
        await b.service.relay.flush()  # type: ignore[union-attr]

    # A restart after downtime (weeks later): the replica with an empty memory catches up once.
    c = Notifier(settings, holder="replica-c")
    async with running(c):
        now3 = at("2026-05-10 10:00")
        first = await c.scheduler.run_once(now3, use_lease=False)
        assert first == 5 + 7 + 7, "registration missed (5), action plan missed (7), April report missed (7)"
        second = await asyncio.gather(c.scheduler.run_once(now3), c.scheduler.run_once(now3, use_lease=False))
        assert list(second) == [0, 0]
        assert await c.service.db[SLOTS].count_documents({}) == 5 + 5 + first

    records = await read_topic(settings.kafka_bootstrap, settings.topic(DEADLINES), expect=5 + 5 + first)
    events = [parse_envelope(r.value) for r in records]
    keys = Counter(
        (e.type, e.data.deadline_id, e.data.unit_id, e.data.obligation, getattr(e.data, "days_left", None))
        for e in events
    )
    assert len(events) == 5 + 5 + 19, f"exactly once each, got {len(events)}"
    assert all(n == 1 for n in keys.values()), [k for k, n in keys.items() if n > 1]
    by_type = Counter(e.type for e in events)
    assert by_type == {"stvs.deadline.approaching.v1": 10, "stvs.deadline.missed.v1": 19}
    approaching = Counter(
        (e.data.deadline_id, e.data.obligation, e.data.days_left) for e in events if e.type.endswith("approaching.v1")
    )
    assert approaching == {("registration-2026", "contact_person", 7): 5, ("registration-2026", "contact_person", 3): 5}
    missed = Counter((e.data.deadline_id, e.data.obligation) for e in events if e.type == "stvs.deadline.missed.v1")
    assert missed == {
        ("registration-2026", "contact_person"): 5,
        ("action-plan-2026", "action_plan"): 7,
        ("monthly-2026-04", "monthly_report"): 7,
    }


async def _apply(notifier: Notifier, env: Any) -> None:
    await notifier.handlers.on_unit(env)


async def test_a_pass_that_dies_after_claiming_leaves_nothing_and_the_next_pass_publishes_each_once(
    infra: Any,
) -> None:
    settings = await notifier_settings(infra)
    units = [f"u-crash-{i}" for i in range(3)]
    now = at("2026-04-13 10:00")
    crashing = Notifier(settings, holder="crashing")
    async with running(crashing):
        for unit_id in units:
            await _apply(crashing, unit_registered(unit_id, contact=False))

        async def crash(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("process died after inserting the claims, before their events")

        crashing.service.outbox.insert_one = crash  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            await crashing.scheduler.run_once(now, use_lease=False)
        assert await crashing.service.db[SLOTS].count_documents({}) == 0, "no claim without its events"

    after = Notifier(settings, holder="after")
    async with running(after):
        assert await after.scheduler.run_once(now, use_lease=False) == 3
        await after.service.relay.flush()  # type: ignore[union-attr]
        assert await after.scheduler.run_once(now, use_lease=False) == 0
        assert await after.scheduler.run_once(now, use_lease=False) == 0, "published batches are dropped"
        assert await after.service.db[SLOT_BATCHES].count_documents({}) == 0

    records = await read_topic(settings.kafka_bootstrap, settings.topic(DEADLINES), expect=3)
    await asyncio.sleep(1.0)
    records = await read_topic(settings.kafka_bootstrap, settings.topic(DEADLINES), expect=4, timeout_s=2)
    events = [parse_envelope(r.value) for r in records]
    assert sorted(e.data.unit_id for e in events) == units, "each claimed slot's event once"
    assert {(e.data.deadline_id, e.data.days_left) for e in events} == {("registration-2026", 7)}
