"""Reviewed reports on the in-memory port (issue 16 §3): a return tells the unit (inbox and its contact's e-mail)
without the comment, reminds it every few days while it is open and lists it in the office's digest; an amendment
tells the office; an acceptance tells the unit; redelivered and late events change nothing."""

from __future__ import annotations

from typing import Any

from services.notifier.domain.notices import PROVINCE
from services.notifier.usecases import Notices, Reviews
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope
from tests.notifier.support import at
from tests.notifier.usecases.memory import MemoryStore
from tests.notifier.usecases.support import registered_unit, scheduler, settings

RETURNED_AT = "2026-05-12 10:00"


def returned(version: int = 1, when: str = RETURNED_AT) -> Envelope[Any]:
    data = ev.ReportReturned(unit_id="u1", kind="monthly", period="2026-04", version=version, returned_at=at(when))
    return Envelope.new(data, source="/stvs/reporting", subject="u1")


def amended(version: int = 2) -> Envelope[Any]:
    data = ev.ReportAmended(
        unit_id="u1", kind="monthly", period="2026-04", version=version, amended_at=at("2026-05-13 09:00")
    )
    return Envelope.new(data, source="/stvs/reporting", subject="u1")


def accepted(version: int) -> Envelope[Any]:
    data = ev.ReportAccepted(
        unit_id="u1", kind="monthly", period="2026-04", version=version, accepted_at=at("2026-05-14 09:00")
    )
    return Envelope.new(data, source="/stvs/reporting", subject="u1")


def setup(**overrides: Any) -> tuple[MemoryStore, Reviews]:
    store = MemoryStore()
    registered_unit(store, "u1", email="c@u1.example.org")
    return store, Reviews(Notices(store, settings(**overrides)))


async def handle(reviews: Reviews, *envs: Envelope[Any]) -> None:
    for env in envs:
        await reviews.on_event(env, env.data)


def to_unit(store: MemoryStore) -> list[dict[str, Any]]:
    return sorted((n for n in store.notices.values() if n["recipient"] == "unit:u1"), key=lambda n: n["_id"])


async def test_a_returned_report_is_announced_to_the_unit_inbox_and_contact_without_the_comment() -> None:
    store, reviews = setup()
    await handle(reviews, returned())
    notes = to_unit(store)
    assert {n["channel"] for n in notes} == {"inbox", "email"}
    for note in notes:
        assert "2026年4月月度报告" in note["subject"] and "退回" in note["subject"]
        assert "查看退回意见" in note["body"] and "重新提交" in note["body"]
        assert note["kind"] == "report_returned" and note["period"] == "2026-04"
    assert store.reviews["u1:monthly:2026-04"].is_open


async def test_a_redelivered_return_sends_nothing_twice() -> None:
    store, reviews = setup()
    env = returned()
    await handle(reviews, env, env)
    assert len(to_unit(store)) == 2


async def test_an_amendment_closes_it_and_tells_the_province_office() -> None:
    store, reviews = setup()
    await handle(reviews, returned(), amended(2))
    assert not store.reviews["u1:monthly:2026-04"].is_open
    (office,) = [n for n in store.notices.values() if n["recipient"] == PROVINCE]
    assert office["channel"] == "inbox" and "待审核" in office["subject"] and "单位u1" in office["subject"]


async def test_an_acceptance_closes_it_and_tells_the_unit() -> None:
    store, reviews = setup()
    await handle(reviews, returned(), accepted(1))
    assert not store.reviews["u1:monthly:2026-04"].is_open
    (note,) = [n for n in to_unit(store) if n["kind"] == "report_accepted"]
    assert note["channel"] == "inbox" and "已通过审核" in note["subject"]


async def test_a_late_return_of_an_older_version_after_the_acceptance_does_not_reopen() -> None:
    store, reviews = setup()
    await handle(reviews, accepted(2), returned(1))
    assert not store.reviews["u1:monthly:2026-04"].is_open
    assert not [n for n in to_unit(store) if n["kind"] == "report_returned"]
    assert await reviews.remind(at("2026-06-30 10:00")) == 0


async def test_the_unit_is_reminded_every_few_days_while_it_is_open_once_per_slot() -> None:
    store, reviews = setup(resubmit_reminder_days=3)
    await handle(reviews, returned())
    assert await reviews.remind(at("2026-05-15 09:00")) == 0
    assert await reviews.remind(at("2026-05-15 10:00")) == 1
    assert await reviews.remind(at("2026-05-16 10:00")) == 0  # the same slot: nothing new
    again = [n for n in to_unit(store) if n["_id"].startswith("report-resubmit:")]
    assert len(again) == 2 and all("再次提醒" in n["subject"] for n in again)
    await reviews.remind(at("2026-05-18 10:00"))
    assert len([n for n in to_unit(store) if n["_id"].startswith("report-resubmit:")]) == 4
    await handle(reviews, amended(2))
    await reviews.remind(at("2026-05-30 10:00"))
    assert len([n for n in to_unit(store) if n["_id"].startswith("report-resubmit:")]) == 4


async def test_two_replicas_remind_once_per_slot() -> None:
    store, reviews = setup()
    await handle(reviews, returned())
    other = Reviews(Notices(store, settings()))
    assert await reviews.remind(at("2026-05-15 10:00")) == 1
    assert await other.remind(at("2026-05-15 10:00")) == 0
    assert len([n for n in to_unit(store) if n["_id"].startswith("report-resubmit:")]) == 2


async def test_units_not_resubmitted_are_listed_in_the_province_office_digest() -> None:
    store, reviews = setup(missed_digest_settle_s=0)
    await handle(reviews, returned())
    await reviews.remind(at("2026-05-15 10:00"))
    await reviews.remind(at("2026-05-18 10:00"))
    assert await reviews.notices.flush_digests(at("2026-05-18 11:00")) == 1
    (digest,) = [n for n in store.notices.values() if n["recipient"] == PROVINCE]
    assert "2026年4月月度报告（退回后重新提交）" in digest["subject"] and "单位u1" in digest["body"]
    assert digest["channel"] == "email"


async def test_the_scheduler_pass_reminds_returned_reports() -> None:
    store, reviews = setup()
    await handle(reviews, returned())
    await scheduler(store).run_once(at("2026-05-15 10:00"))
    assert [n for n in to_unit(store) if n["_id"].startswith("report-resubmit:")]
