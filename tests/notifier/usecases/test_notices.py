"""Notices on the in-memory port: the deadline mail names the platform's public address (a setting), a rendering
error is logged as failed, the province office's digest lists each unit once."""

from __future__ import annotations

import pytest

from services.notifier.domain.notices import FAILED
from services.notifier.usecases import Notices
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope
from tests.notifier.support import at
from tests.notifier.usecases.memory import MemoryStore
from tests.notifier.usecases.support import registered_unit, settings


def approaching(unit_id: str = "u1") -> Envelope[ev.DeadlineApproaching]:
    data = ev.DeadlineApproaching(
        deadline_id="registration-2026",
        obligation="contact_person",
        unit_id=unit_id,
        title="2026年科技志愿服务信息平台注册及工作联系人报送",
        due_at=at("2026-04-20 23:59"),
        days_left=3,
    )
    return Envelope.new(data, source="/stvs/notifier", subject=unit_id)


async def test_the_deadline_mail_names_the_platform_address_of_the_settings() -> None:
    store = MemoryStore()
    registered_unit(store, "u1", email="c@u1.example.org")
    env = approaching()
    await Notices(store, settings(public_url="https://stvs.hebei.example/portal/")).deadline_approaching(env, env.data)
    (note,) = store.notices.values()
    assert note["channel"] == "email" and "科技志愿服务信息平台（stvs.hebei.example/portal）" in note["body"]
    assert note["_id"] in store.queue


async def test_by_default_the_mail_names_www_stvs_org_cn() -> None:
    store = MemoryStore()
    registered_unit(store, "u1", email="c@u1.example.org")
    env = approaching()
    await Notices(store, settings()).deadline_approaching(env, env.data)
    (note,) = store.notices.values()
    assert "科技志愿服务信息平台（www.stvs.org.cn）" in note["body"]


async def test_a_unit_without_an_address_hears_in_its_inbox() -> None:
    store = MemoryStore()
    registered_unit(store, "u1")
    env = approaching()
    await Notices(store, settings()).deadline_approaching(env, env.data)
    (note,) = store.notices.values()
    assert note["channel"] == "inbox" and note["outcome"] == "delivered" and not store.queue


async def test_a_template_missing_a_value_is_logged_failed() -> None:
    store = MemoryStore()
    logged = await Notices(store, settings()).notify(
        None,
        recipient="unit:u5",
        unit_id="u5",
        address="c@u5.example.org",
        template="deadline_approaching",
        values={},
        event_id="e",
    )
    assert logged and store.notices["e:unit:u5:email"]["outcome"] == FAILED and not store.queue


async def test_the_missed_digest_lists_each_unit_once() -> None:
    store = MemoryStore()
    notices = Notices(store, settings(missed_digest_settle_s=0))
    for unit_id in ("u1", "u2", "u1"):
        registered_unit(store, unit_id)
        data = ev.DeadlineMissed(
            deadline_id="registration-2026",
            obligation="registration",
            unit_id=unit_id,
            title="注册",
            due_at=at("2026-04-20 23:59"),
        )
        await notices.deadline_missed(Envelope.new(data, source="/stvs/notifier", subject=unit_id), data)
    assert await notices.flush_digests() == 1
    assert await notices.flush_digests() == 0
    (mail,) = store.notices.values()
    assert mail["unit_ids"] == ["u1", "u2"] and mail["address"] == "office@stvs.hebei.example"


def test_the_public_url_must_be_a_web_address() -> None:
    with pytest.raises(ValueError, match="public_url"):
        settings(public_url="www.stvs.org.cn")
