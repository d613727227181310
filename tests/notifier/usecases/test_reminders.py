"""Reminders on the in-memory port: each due slot is claimed and published once, however often and by however many
schedulers it is evaluated."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.notifier.support import at
from tests.notifier.usecases.memory import MemoryStore
from tests.notifier.usecases.support import registered_unit, scheduler


async def test_a_reminder_is_claimed_once() -> None:
    store = MemoryStore()
    registered_unit(store, "u1")
    first = await scheduler(store).run_once(at("2026-04-13 10:00"), use_lease=False)  # 7 days before 20 April
    assert first == 1
    assert list(store.slots) == ["registration-2026|u1|approaching-7d"]
    assert [e.type for e in store.staged] == ["stvs.deadline.approaching.v1"]
    again = await scheduler(store).run_once(at("2026-04-13 18:00"), use_lease=False)
    assert again == 0 and len(store.staged) == 1, "the same slot is not claimed or published twice"


async def test_two_schedulers_at_once_claim_each_slot_once() -> None:
    store = MemoryStore()
    for n in range(30):
        registered_unit(store, f"u{n}")
    now = at("2026-04-17 10:00")  # 3 days before
    claimed = await asyncio.gather(*(scheduler(store, holder=h).run_once(now, use_lease=False) for h in "abc"))
    assert sum(claimed) == 30
    published = Counter(e.data.unit_id for e in store.staged)
    assert set(published.values()) == {1} and len(published) == 30


async def test_after_a_downtime_only_the_latest_slot_is_claimed() -> None:
    store = MemoryStore()
    registered_unit(store, "u1")
    await scheduler(store).run_once(at("2026-04-19 10:00"), use_lease=False)  # the 7- and 3-day slots were missed
    assert list(store.slots) == ["registration-2026|u1|approaching-1d"]
    assert store.staged[0].data.days_left == 1
