"""Obligations and volunteer notices from real events (Kafka), and the HTTP API."""

from __future__ import annotations

import base64
import os
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.notifier.adapters.mongo import NOTIFICATIONS, UNITS
from services.notifier.app import Notifier
from services.notifier.settings import NotifierSettings
from shared.contracts import events as ev
from tests.fixtures import eventually, signing
from tests.notifier.support import at, envelope, headers, notifier_settings, publish, running, unit_registered


def client(notifier: Notifier) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(notifier.app), auth=signing(notifier.app), base_url="http://notifier"
    )


async def test_obligations_follow_events_and_duplicates_change_nothing(infra: Any) -> None:
    settings = await notifier_settings(infra)
    notifier = Notifier(settings)
    registered = unit_registered("u1", contact=False)
    updated = envelope(
        ev.UnitUpdated(
            **{**registered.data.model_dump(), "contact": {"name": "李联络", "email": "li@example.org"}, "version": 2},
            changed=["contact"],
        ),
        "u1",
    )
    reports = [
        envelope(
            ev.ActionPlanSubmitted(
                unit_id="u1", year=2026, submitted_at=at("2026-04-25 09:00"), submitted_by="x", late=False
            ),
            "u1",
            "/stvs/reporting",
        ),
        envelope(
            ev.MonthlyReportSubmitted(
                unit_id="u1", month="2026-04", submitted_at=at("2026-05-08 09:00"), submitted_by="x", late=True
            ),
            "u1",
            "/stvs/reporting",
        ),
    ]
    completed = envelope(
        ev.ActivityCompleted(
            activity_id="a1",
            unit_id="u1",
            title="科普进社区",
            line_of_work="community_school",
            themes=["women_youth"],
            starts_at=at("2026-05-20 09:00"),
            ends_at=at("2026-05-20 12:00"),
            completed_at=at("2026-05-20 12:00"),
            participants=[],
            total_hours=0,
        ),
        "a1",
        "/stvs/activities",
    )
    async with running(notifier):
        await publish(settings, registered, registered, updated, *reports, completed, completed)

        async def done() -> Any:
            doc = await notifier.service.db[UNITS].find_one({"_id": "u1"})
            ready = doc and doc.get("active_quarters") and doc.get("monthly_reports") and doc.get("version") == 2
            return doc if ready else None

        doc = await eventually(done)
        assert doc["contact"] == {"name": "李联络", "email": "li@example.org"} and doc["version"] == 2
        # A redelivered old event (the consumer crashed before marking it processed) changes nothing.
        await notifier.handlers.on_unit(registered)
        again = await notifier.service.db[UNITS].find_one({"_id": "u1"})
        assert again == doc

        async with client(notifier) as http:
            r = await http.get("/obligations/u1", headers=headers())
            assert r.status_code == 200, r.text
            state = {(o["deadline_id"], o["kind"]): o for o in r.json()["obligations"]}
            contact = state[("registration-2026", "contact_person")]
            closed_at = datetime.fromisoformat(contact["closed_at"])
            assert not contact["open"] and abs((closed_at - updated.time).total_seconds()) < 0.01, "given when updated"
            assert not state[("action-plan-2026", "action_plan")]["open"]
            assert state[("monthly-2026-04", "monthly_report")]["late"]
            assert not state[("quarter-2026-Q2", "quarterly_activity")]["open"]
            assert state[("quarter-2026-Q3", "quarterly_activity")]["open"]
            assert state[("monthly-2026-05", "monthly_report")]["open"]

            r = await http.get("/obligations/u1", headers=headers("unit_admin", unit_id="u2"))
            assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
            r = await http.get("/obligations/nope", headers=headers())
            assert r.status_code == 404

            r = await http.get("/deadlines", params={"year": 2026}, headers=headers("volunteer", volunteer_id="v1"))
            deadlines = r.json()
            assert len(deadlines) == 2 + 9 + 3 and deadlines[0]["id"] == "registration-2026"
            assert deadlines[0]["due_at"] == "2026-04-20T23:59:59+08:00"


async def test_subscriptions_api_refuses_bad_input_in_chinese(infra: Any) -> None:
    settings = await notifier_settings(infra)
    notifier = Notifier(settings)
    async with running(notifier), client(notifier) as http:
        body = {"url": "https://hooks.example.org/stvs", "event_types": ["stvs.unit.registered.v1", "stvs.nope.v1"]}
        r = await http.post("/subscriptions", json=body, headers=headers())
        assert r.status_code == 422 and "未知的事件类型" in r.json()["detail"] and "stvs.nope.v1" in r.json()["detail"]
        r = await http.post(
            "/subscriptions",
            json={**body, "url": "ftp://x", "event_types": ["stvs.unit.registered.v1"]},
            headers=headers(),
        )
        assert r.status_code == 422 and "http" in r.json()["detail"]
        r = await http.post(
            "/subscriptions",
            json={**body, "event_types": ["stvs.unit.registered.v1"]},
            headers=headers("unit_admin", unit_id="u1"),
        )
        assert r.status_code == 403

        r = await http.post(
            "/subscriptions", json={**body, "event_types": ["stvs.unit.registered.v1"]}, headers=headers()
        )
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["secret"].startswith("whsec_") and created["status"] == "active"
        r = await http.get("/subscriptions", headers=headers())
        assert [s["id"] for s in r.json()] == [created["id"]] and "secret" not in r.json()[0]
        assert (await http.delete(f"/subscriptions/{created['id']}", headers=headers())).status_code == 204
        assert (await http.delete(f"/subscriptions/{created['id']}", headers=headers())).status_code == 404

    prod_values = {
        **settings.model_dump(),
        "production": True,
        "internal_token": "prod-secret-for-tests-0123456789abcdef",
    }
    with pytest.raises(ValueError, match="STVS_WEBHOOK_SECRET_KEY"):
        Notifier(NotifierSettings(**prod_values))  # the development key of subscribers' secrets is refused
    prod_values["webhook_secret_key"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    production = NotifierSettings(**prod_values)
    prod = Notifier(production)
    async with client(prod) as http:
        from shared.identity import Identity, acting_as

        province = acting_as(Identity(subject="t", role="province_admin"))
        r = await http.post(
            "/subscriptions",
            json={"url": "http://127.0.0.1:9/x", "event_types": ["stvs.unit.registered.v1"]},
            headers=province,
        )
        assert r.status_code == 422 and "生产环境" in r.json()["detail"]
        for url, message in (("http://10.1.2.3/x", "内网"), ("http://localhost/x", "本机"), ("ftp://x.org/x", "http")):
            r = await http.post(
                "/subscriptions",
                json={"url": url, "event_types": ["stvs.unit.registered.v1"]},
                headers=province,
            )
            assert r.status_code == 422 and message in r.json()["detail"], (url, r.text)
        r = await http.post(
            "/subscriptions",
            json={"url": "https://hooks.example.org/x", "event_types": ["stvs.unit.registered.v1"]},
            headers=province,
        )
        assert r.status_code == 201, "a public https address is accepted in production"


async def test_volunteers_get_inbox_notices_for_cancellation_and_the_day_before(infra: Any) -> None:
    settings = await notifier_settings(infra)
    notifier = Notifier(settings)
    src = "/stvs/activities"
    published = [
        envelope(
            ev.ActivityPublished(
                activity_id=aid,
                unit_id="u1",
                title=title,
                line_of_work="community_school",
                themes=["women_youth"],
                county="正定县",
                starts_at=at(f"{day} 09:00"),
                ends_at=at(f"{day} 12:00"),
                capacity=10,
                published_at=at("2026-06-01 09:00"),
            ),
            aid,
            src,
        )
        for aid, title, day in (("a-cancel", "科普讲座", "2026-06-20"), ("a-run", "义诊进乡村", "2026-06-21"))
    ]
    volunteer = envelope(
        ev.VolunteerRegistered(
            volunteer_id="v1",
            platform_number="HB2026000001",
            display_name="张三",
            status="active",
            unit_ids=["u1"],
            registered_at=at("2026-04-02 09:00"),
            version=1,
        ),
        "v1",
    )
    signups = [
        envelope(
            ev.VolunteerSignedUp(activity_id=aid, volunteer_id=vid, status=status, signed_up_at=at("2026-06-02 09:00")),
            aid,
            src,
        )
        for aid in ("a-cancel", "a-run")
        for vid, status in (("v1", "confirmed"), ("v2", "waitlisted"))
    ]
    cancelled = envelope(
        ev.ActivityCancelled(
            activity_id="a-cancel",
            unit_id="u1",
            title="科普讲座",
            starts_at=at("2026-06-20 09:00"),
            reason="天气原因",
            cancelled_at=at("2026-06-10 09:00"),
            signed_up_volunteer_ids=["v1", "v2"],
        ),
        "a-cancel",
        src,
    )
    async with running(notifier):
        await publish(settings, unit_registered("u1"), volunteer, *published, *signups, cancelled, cancelled)
        notes = notifier.service.db[NOTIFICATIONS]

        async def cancellations() -> list[Any]:
            found = [d async for d in notes.find({"kind": "activity_cancelled"})]
            return found if len(found) == 2 else []

        found = await eventually(cancellations)
        assert {d["recipient"] for d in found} == {"volunteer:v1", "volunteer:v2"}
        assert all(d["channel"] == "inbox" and d["outcome"] == "delivered" for d in found)
        mine = next(d for d in found if d["recipient"] == "volunteer:v1")
        assert "张三" in mine["body"] and "天气原因" in mine["body"] and "已取消" in mine["body"]

        async def signed_up() -> bool:
            doc = await notifier.service.db["activities"].find_one({"_id": "a-run"})
            return bool(doc and len(doc.get("signups", {})) == 2)

        await eventually(signed_up)
        # The publication of the cancelled activity delivered once more (a replay): the copy stays cancelled, and
        # its volunteers get no reminder for an activity that does not take place.
        await notifier.handlers.on_activity_published(published[0])
        copy = await notifier.service.db["activities"].find_one({"_id": "a-cancel"})
        assert copy is not None and copy["status"] == "cancelled"
        # The day before, from the reminder hour: confirmed volunteers of the activity that goes ahead, once.
        assert await notifier.scheduler.activity_reminders(at("2026-06-20 08:00")) == 0
        assert await notifier.scheduler.activity_reminders(at("2026-06-20 10:00")) == 1
        assert await notifier.scheduler.activity_reminders(at("2026-06-20 18:00")) == 0
        reminders = [d async for d in notes.find({"kind": "activity_reminder"})]
        assert len(reminders) == 1 and reminders[0]["recipient"] == "volunteer:v1"
        assert "明天" in reminders[0]["subject"] and "正定县" in reminders[0]["body"]

        async with client(notifier) as http:
            r = await http.get("/notifications", headers=headers("volunteer", volunteer_id="v1"))
            page = r.json()
            assert page["total"] == 2 and {n["kind"] for n in page["items"]} == {
                "activity_cancelled",
                "activity_reminder",
            }
            r = await http.get(
                "/notifications", params={"recipient": "volunteer:v2"}, headers=headers("volunteer", volunteer_id="v1")
            )
            assert r.status_code == 404
            r = await http.get(
                "/notifications", params={"channel": "inbox", "limit": 1, "offset": 1}, headers=headers()
            )
            page = r.json()
            assert page["total"] == 3 and len(page["items"]) == 1
