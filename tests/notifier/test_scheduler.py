"""The deadline scheduler against the real broker and server: every due slot's event published exactly once,
with two replicas scanning at the same time, a lease hand-over and a restart after downtime (catch-up once)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from services.notifier.app import Notifier
from services.notifier.consumers import Obligations
from services.notifier.store import SLOTS
from shared.contracts.envelope import parse_envelope
from shared.contracts.events import DEADLINES
from tests.fixtures import read_topic
from tests.notifier.support import at, notifier_settings, running, unit_registered

pytest_plugins = ["tests.fixtures"]

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
        b.scheduler._claimed.clear()
        assert await b.scheduler.run_once(now1, use_lease=False) == 0, "the unique _id refuses the second claim"
        await a.service.relay.flush()  # type: ignore[union-attr]

    # A restart after downtime (weeks later): the replica with an empty memory catches up once.
    c = Notifier(settings, holder="replica-c")
    async with running(c):
        now3 = at("2026-05-10 10:00")
        first = await c.scheduler.run_once(now3, use_lease=False)
        assert first == 5 + 7 + 7, "registration missed (5), action plan missed (7), April report missed (7)"
        second = await asyncio.gather(c.scheduler.run_once(now3), c.scheduler.run_once(now3, use_lease=False))
        assert list(second) == [0, 0]
        assert await c.service.db[SLOTS].count_documents({}) == 5 + first

    records = await read_topic(settings.kafka_bootstrap, settings.topic(DEADLINES), expect=5 + first)
    events = [parse_envelope(r.value) for r in records]
    keys = Counter(
        (e.type, e.data.deadline_id, e.data.unit_id, e.data.obligation, getattr(e.data, "days_left", None))
        for e in events
    )
    assert len(events) == 5 + 19, f"exactly once each, got {len(events)}"
    assert all(n == 1 for n in keys.values()), [k for k, n in keys.items() if n > 1]
    by_type = Counter(e.type for e in events)
    assert by_type == {"stvs.deadline.approaching.v1": 5, "stvs.deadline.missed.v1": 19}
    approaching = [e.data for e in events if e.type == "stvs.deadline.approaching.v1"]
    assert {(d.deadline_id, d.obligation, d.days_left) for d in approaching} == {
        ("registration-2026", "contact_person", 7)
    }
    missed = Counter((e.data.deadline_id, e.data.obligation) for e in events if e.type == "stvs.deadline.missed.v1")
    assert missed == {
        ("registration-2026", "contact_person"): 5,
        ("action-plan-2026", "action_plan"): 7,
        ("monthly-2026-04", "monthly_report"): 7,
    }


async def _apply(notifier: Notifier, env: Any) -> None:
    await Obligations(notifier.service.db).on_unit(env)
