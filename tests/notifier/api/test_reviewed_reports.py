"""Reviewed reports from real events (Kafka + MongoDB, issue 16 §3): a return, an amendment and an acceptance
published on the reports stream become the notices the unit and the province office read through the API."""

from __future__ import annotations

from typing import Any

import httpx

from services.notifier.adapters.mongo import DIGESTS, REVIEWS, UNITS
from services.notifier.app import Notifier
from shared.contracts import events as ev
from tests.fixtures import eventually, signing
from tests.notifier.support import at, envelope, headers, notifier_settings, publish, running, unit_registered

SOURCE = "/stvs/reporting"


async def test_a_return_an_amendment_and_an_acceptance_reach_the_unit_and_the_office(infra: Any) -> None:
    settings = await notifier_settings(infra)
    notifier = Notifier(settings)
    report = {"unit_id": "u1", "kind": "monthly", "period": "2026-04"}
    returned = envelope(ev.ReportReturned(**report, version=1, returned_at=at("2026-05-12 10:00")), "u1", SOURCE)
    amended = envelope(ev.ReportAmended(**report, version=2, amended_at=at("2026-05-13 09:00")), "u1", SOURCE)
    accepted = envelope(ev.ReportAccepted(**report, version=2, accepted_at=at("2026-05-14 09:00")), "u1", SOURCE)
    async with running(notifier):
        registered = unit_registered("u1", name="石家庄市科技志愿者支队", email="li@u1.example.org")
        await publish(settings, registered)  # another stream: known before the reports' events are read
        await eventually(lambda: notifier.service.db[UNITS].find_one({"_id": "u1", "version": 1}))
        await publish(settings, returned, returned, amended, accepted)

        async def reviewed() -> Any:
            doc = await notifier.service.db[REVIEWS].find_one({"_id": "u1:monthly:2026-04"})
            return doc if doc and doc["version"] == 2 and doc["rank"] == 8 else None

        doc = await eventually(reviewed)
        assert doc["returned_at"] is None, "accepted: nothing to resubmit"
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(notifier.app), auth=signing(notifier.app), base_url="http://notifier"
        ) as http:

            async def notices(**params: str) -> list[dict[str, Any]]:
                r = await http.get("/notifications", params=params, headers=headers())
                assert r.status_code == 200, r.text
                return [n for n in r.json()["items"] if n["event_type"].startswith("stvs.report.")]

            async def all_there() -> list[dict[str, Any]] | None:
                found = await notices()
                return found if len(found) == 4 else None

            found = await eventually(all_there)
        by = {(n["event_type"], n["recipient"], n["channel"]): n for n in found}
        to_unit = by[("stvs.report.returned.v1", "unit:u1", "inbox")]
        assert "退回" in to_unit["subject"] and "查看退回意见" in to_unit["body"]
        mail = by[("stvs.report.returned.v1", "unit:u1", "email")]
        assert mail["address"] == "li@u1.example.org" and mail["outcome"] == "pending"
        office = by[("stvs.report.amended.v1", "province", "inbox")]
        assert "石家庄市科技志愿者支队" in office["subject"] and "待审核" in office["subject"]
        assert "已通过审核" in by[("stvs.report.accepted.v1", "unit:u1", "inbox")]["subject"]

        # A late, redelivered return of the older version does not reopen the report.
        await notifier.handlers.on_report_reviewed(returned)
        again = await notifier.service.db[REVIEWS].find_one({"_id": "u1:monthly:2026-04"})
        assert again is not None and again["returned_at"] is None


async def test_a_returned_report_is_reminded_from_mongodb_once_per_slot(infra: Any) -> None:
    settings = await notifier_settings(infra, resubmit_reminder_days=3)
    notifier = Notifier(settings)
    report = {"unit_id": "u2", "kind": "action_plan", "period": "2026"}
    returned = envelope(ev.ReportReturned(**report, version=1, returned_at=at("2026-05-12 10:00")), "u2", SOURCE)
    async with running(notifier):
        await notifier.handlers.on_report_reviewed(returned)
        reviews = notifier.scheduler.reviews
        assert await reviews.remind(at("2026-05-15 09:59")) == 0
        assert await reviews.remind(at("2026-05-15 10:00")) == 1
        assert await reviews.remind(at("2026-05-17 10:00")) == 0  # the same slot
        assert await reviews.remind(at("2026-05-18 10:00")) == 1
        digest = await notifier.service.db[DIGESTS].find_one({"_id": "resubmit:action_plan:2026"})
        assert digest is not None and list(digest["units"]) == ["u2"]
