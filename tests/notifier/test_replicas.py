"""Two notifier replicas (one database, one consumer group, one SMTP server) running the scheduler and the delivery
worker at the same time: every reminder is claimed once and every e-mail reaches the SMTP server once — also when
both replicas work without the lease (a lease hand-over in the middle of a pass), where only the database's unique
keys and the delivery claims stand between them and a second send."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from services.notifier.adapters.mongo import DELIVERIES, NOTIFICATIONS, SLOTS
from services.notifier.app import Notifier
from shared import clock
from tests.fixtures import eventually
from tests.notifier.support import at, free_port, notifier_settings, running, smtp_server, unit_registered

UNITS = [f"u-rep-{i:02d}" for i in range(24)]


async def test_two_replicas_send_each_reminder_mail_exactly_once(infra: Any) -> None:
    port = free_port()
    previous = clock.current()
    settings = await notifier_settings(
        infra,
        smtp_port=port,
        # a week before the action plan is due (2026-04-30): each unit is owed one "7 days left" reminder
        clock_start=at("2026-04-23 10:00"),
        scheduler_enabled=True,
        scheduler_interval_s=0.2,
        delivery_enabled=True,
        delivery_concurrency=4,
    )
    a, b = Notifier(settings, holder="replica-a"), Notifier(settings, holder="replica-b")
    try:
        with smtp_server(port) as inbox:
            async with running(a), running(b):
                for unit_id in UNITS:
                    await a.handlers.on_unit(unit_registered(unit_id, email=f"{unit_id}@example.org"))

                # Besides their own loops (one holds each lease), both replicas scan and deliver without the lease.
                async def race() -> None:
                    while len(inbox.messages) < len(UNITS):
                        await asyncio.gather(
                            a.scheduler.run_once(use_lease=False),
                            b.scheduler.run_once(use_lease=False),
                            a.delivery.work_once(use_lease=False),
                            b.delivery.work_once(use_lease=False),
                        )

                await asyncio.wait_for(race(), 40)
                await eventually(lambda: _queue_empty(a), timeout_s=90)
                await asyncio.sleep(1.0)  # a second send, if there were one, would arrive now

                recipients = Counter(str(m["To"]) for m in inbox.messages)
                assert recipients == {f"{u}@example.org": 1 for u in UNITS}, recipients
                assert all("还有7天截止" in str(m["Subject"]) for m in inbox.messages)
                assert await a.service.db[SLOTS].count_documents({}) == len(UNITS)
                notes = [n async for n in a.service.db[NOTIFICATIONS].find({"channel": "email"})]
                assert len(notes) == len(UNITS)
                assert all(n["outcome"] == "sent" and n["attempts"] == 1 for n in notes)
    finally:
        clock.use(previous)


async def _queue_empty(notifier: Notifier) -> bool:
    return await notifier.service.db[DELIVERIES].count_documents({}) == 0
