"""E-mail delivery against a real SMTP server (aiosmtpd): Chinese mail to the unit's contact and to the province
office, one send per event even when it is redelivered, and retries (not loss) while the server is unreachable."""

from __future__ import annotations

import asyncio
from typing import Any

from services.notifier.adapters.mongo import DELIVERIES, NOTIFICATIONS, UNITS
from services.notifier.app import Notifier
from services.notifier.settings import NotifierSettings
from shared.contracts import events as ev
from tests.fixtures import eventually
from tests.notifier.support import (
    at,
    envelope,
    free_port,
    notifier_settings,
    publish,
    running,
    smtp_server,
    unit_registered,
)


def approaching(unit_id: str) -> Any:
    data = ev.DeadlineApproaching(
        deadline_id="action-plan-2026",
        obligation="action_plan",
        unit_id=unit_id,
        title="2026年科技志愿服务行动计划及注册情况报送",
        due_at=at("2026-04-30 23:59:59"),
        days_left=3,
    )
    return envelope(data, unit_id, "/stvs/notifier")


def missed(unit_id: str) -> Any:
    data = ev.DeadlineMissed(
        deadline_id="action-plan-2026",
        obligation="action_plan",
        unit_id=unit_id,
        title="2026年科技志愿服务行动计划及注册情况报送",
        due_at=at("2026-04-30 23:59:59"),
    )
    return envelope(data, unit_id, "/stvs/notifier")


async def with_unit(notifier: Notifier, settings: NotifierSettings, unit_id: str, email: str) -> None:
    await publish(settings, unit_registered(unit_id, name="石家庄市科协支队", email=email))

    async def known() -> Any:
        return await notifier.service.db[UNITS].find_one({"_id": unit_id})

    await eventually(known)


async def test_chinese_mail_reaches_contact_and_office_once(infra: Any) -> None:
    port = free_port()
    settings = await notifier_settings(infra, smtp_port=port, delivery_enabled=True)
    notifier = Notifier(settings)
    with smtp_server(port) as inbox:
        async with running(notifier):
            await with_unit(notifier, settings, "u1", "contact@u1.example.org")
            soon, late = approaching("u1"), missed("u1")
            await publish(settings, soon, soon, late)  # the same event twice: one mail
            await eventually(lambda: len(inbox.messages) >= 2)
            # A redelivery after the consumer crashed before marking it processed: still no second mail.
            await notifier.handlers.on_deadline_approaching(soon)
            await asyncio.sleep(0.5)

            assert len(inbox.messages) == 2
            by_to = {m["To"]: m for m in inbox.messages}
            contact = by_to["contact@u1.example.org"]
            assert contact["Subject"] == "【科技志愿服务】2026年科技志愿服务行动计划及注册情况报送还有3天截止"
            text = contact.get_content()
            assert "石家庄市科协支队" in text and "2026年4月30日23:59" in text and "附件1" in text
            office = by_to["office@hebei.example"]
            assert "逾期未完成单位（1个）" in office["Subject"] and "石家庄市科协支队" in office.get_content()

            notes = [d async for d in notifier.service.db[NOTIFICATIONS].find({})]
            assert len(notes) == 2
            assert all(n["outcome"] == "sent" and n["attempts"] == 1 and n["channel"] == "email" for n in notes)
            assert {n["recipient"] for n in notes} == {"unit:u1", "province"}
            assert await notifier.service.db[DELIVERIES].count_documents({}) == 0


async def test_unreachable_smtp_is_retried_and_logged_not_lost(infra: Any) -> None:
    port = free_port()  # nothing listens there yet
    settings = await notifier_settings(infra, smtp_port=port, delivery_enabled=True)
    notifier = Notifier(settings)
    async with running(notifier):
        await with_unit(notifier, settings, "u2", "contact@u2.example.org")
        await publish(settings, approaching("u2"))
        notes = notifier.service.db[NOTIFICATIONS]

        async def retried() -> Any:
            doc = await notes.find_one({})
            return doc if doc and doc["attempts"] >= 2 else None

        doc = await eventually(retried)
        assert doc["outcome"] == "pending" and "不可达" in doc["last_error"] and doc["next_attempt_at"] is not None

        with smtp_server(port) as inbox:  # the server comes back
            await eventually(lambda: len(inbox.messages) == 1)
            sent = await eventually(lambda: notes.find_one({"outcome": "sent"}))
            assert sent["attempts"] >= 3 and inbox.messages[0]["To"] == "contact@u2.example.org"


async def test_mail_given_up_after_the_last_attempt_stays_logged(infra: Any) -> None:
    settings = await notifier_settings(infra, smtp_port=free_port(), delivery_enabled=True, email_max_attempts=2)
    notifier = Notifier(settings)
    async with running(notifier):
        await with_unit(notifier, settings, "u3", "contact@u3.example.org")
        await publish(settings, approaching("u3"))
        notes = notifier.service.db[NOTIFICATIONS]
        failed = await eventually(lambda: notes.find_one({"outcome": "failed"}))
        assert failed["attempts"] == 2 and failed["recipient"] == "unit:u3"
        assert await notifier.service.db[DELIVERIES].count_documents({}) == 0


async def test_office_gets_one_digest_per_deadline_listing_every_unit_once(infra: Any) -> None:
    port = free_port()
    # Settle time well above one handler's time on a loaded machine, so the three units land in one digest.
    settings = await notifier_settings(infra, smtp_port=port, delivery_enabled=True, missed_digest_settle_s=3.0)
    notifier = Notifier(settings)
    with smtp_server(port) as inbox:
        async with running(notifier):
            for unit_id in ("d1", "d2", "d3"):
                await publish(settings, unit_registered(unit_id, name=f"{unit_id}支队", email=f"{unit_id}@x.org"))
            await eventually(lambda: _count(notifier, 3))
            first = missed("d1")
            await publish(settings, first, missed("d2"), missed("d3"), first)
            await eventually(lambda: inbox.messages)
            await asyncio.sleep(1.0)
            assert len(inbox.messages) == 1
            mail = inbox.messages[0]
            assert mail["To"] == "office@hebei.example" and "逾期未完成单位（3个）" in mail["Subject"]
            body = mail.get_content()
            assert all(f"{u}支队" in body for u in ("d1", "d2", "d3")) and "1. " in body and "3. " in body

            # A unit missing it later gets a second digest with just that unit.
            await publish(settings, unit_registered("d4", name="d4支队"))
            await eventually(lambda: _count(notifier, 4))
            await publish(settings, missed("d4"))
            await eventually(lambda: len(inbox.messages) == 2, timeout_s=20)
            assert "（1个）" in inbox.messages[1]["Subject"] and "d4支队" in inbox.messages[1].get_content()


async def _count(notifier: Notifier, n: int) -> bool:
    return await notifier.service.db[UNITS].count_documents({}) >= n


async def test_a_template_missing_a_value_is_logged_as_failed_not_crashing(infra: Any) -> None:
    settings = await notifier_settings(infra)
    notifier = Notifier(settings)
    try:
        logged = await notifier.notices.notify(
            None,
            recipient="unit:u5",
            unit_id="u5",
            address="c@u5.example.org",
            template="deadline_approaching",
            values={"unit_name": "某支队"},
            event_id="evt-1",
        )
        assert logged
        doc = await notifier.service.db[NOTIFICATIONS].find_one({"_id": "evt-1:unit:u5:email"})
        assert doc is not None and doc["outcome"] == "failed" and "deadline_title" in doc["last_error"]
        assert await notifier.service.db[DELIVERIES].count_documents({}) == 0
    finally:
        await notifier.service.client.close()
