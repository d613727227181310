"""The activities API against the real Kafka and FerretDB: life cycle, refusals, the sign-up burst, hours, events."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.activities.adapters.mongo import SIGNUPS, signup_id
from services.activities.domain import checkin_code
from services.activities.usecases.repair import repair
from shared.contracts.events import ACTIVITIES, DEMANDS
from shared.unit_paths import SCOPE_UNITS
from tests.activities.conftest import CHECKIN_SECRET, Running, draft


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), "the message is Chinese"
    return body


async def new_activity(running: Running, *, publish: bool = True, **overrides: Any) -> str:
    created = await running.client.post("/activities", json=draft(**overrides), headers=running.admin())
    assert created.status_code == 201, created.text
    activity_id: str = created.json()["id"]
    if publish:
        published = await running.client.post(f"/activities/{activity_id}/publish", headers=running.admin())
        assert published.status_code == 200, published.text
    return activity_id


async def sign_up(running: Running, activity_id: str, volunteer_id: str) -> httpx.Response:
    return await running.client.post(f"/activities/{activity_id}/signups", headers=running.volunteer(volunteer_id))


def iso(moment: datetime) -> str:
    return moment.isoformat()


# ---------------------------------------------------------------- life cycle


async def test_life_cycle_with_events(running: Running) -> None:
    c, admin = running.client, running.admin()
    activity_id = await new_activity(running, publish=False)
    got = (await c.get(f"/activities/{activity_id}", headers=admin)).json()
    assert (got["status"], got["status_label"], got["line_of_work_label"]) == ("draft", "草稿", "进社区进学校")

    # A draft is invisible to volunteers and to other units.
    problem(await c.get(f"/activities/{activity_id}", headers=running.volunteer("v-x")), 404, "activity_not_found")
    problem(await c.get(f"/activities/{activity_id}", headers=running.admin("unit-2")), 404, "activity_not_found")
    problem(await c.post(f"/activities/{activity_id}/publish", headers=running.admin("unit-2")), 403, "not_unit_admin")

    patched = await c.patch(f"/activities/{activity_id}", json={"title": "社区应急救护培训（第二期）"}, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "社区应急救护培训（第二期）"

    assert (await c.post(f"/activities/{activity_id}/publish", headers=admin)).json()["status"] == "published"
    listed = (await c.get("/activities", headers=running.volunteer("v-x"))).json()
    assert activity_id in [a["id"] for a in listed["items"]]

    problem(await c.post(f"/activities/{activity_id}/publish", headers=admin), 409, "invalid_transition")
    problem(
        await c.post(f"/activities/{activity_id}/publicity", json=_publicity(), headers=admin),
        409,
        "publicity_before_completion",
    )
    assert (await c.post(f"/activities/{activity_id}/start", headers=admin)).json()["status"] == "ongoing"
    assert (await c.post(f"/activities/{activity_id}/complete", headers=admin)).json()["status"] == "completed"
    problem(
        await c.post(f"/activities/{activity_id}/cancel", json={"reason": "迟了"}, headers=admin),
        409,
        "invalid_transition",
    )
    problem(
        await c.patch(f"/activities/{activity_id}", json={"capacity": 9}, headers=admin), 409, "activity_not_editable"
    )
    published = await c.post(f"/activities/{activity_id}/publicity", json=_publicity(), headers=admin)
    assert published.status_code == 200, published.text
    assert published.json()["publicity"]["people_served"] == 120

    events = await running.events(activity_id, ACTIVITIES)
    assert [e.type for e in events] == [
        "stvs.activity.published.v1",
        "stvs.activity.completed.v1",
        "stvs.activity.publicity_published.v1",
    ]
    data = events[0].data.model_dump()
    assert data["title"] == "社区应急救护培训（第二期）"
    assert (data["unit_id"], data["capacity"], sorted(data["themes"])) == (
        "unit-1",
        2,
        ["poverty_health", "women_youth"],
    )
    assert events[1].data.model_dump()["participants"] == []
    assert events[2].data.model_dump()["links"] == ["https://example.org/news/1", "https://example.org/p.jpg"]
    assert all(e.source == "/stvs/activities" for e in events)


def _publicity() -> dict[str, Any]:
    return {
        "summary": "讲解心肺复苏，现场演练",
        "people_served": 120,
        "links": ["https://example.org/news/1"],
        "photo_urls": ["https://example.org/p.jpg"],
    }


async def test_cancel_needs_a_reason_and_tells_everyone_signed_up(running: Running) -> None:
    c, admin = running.client, running.admin()
    activity_id = await new_activity(running, capacity=1)
    for v in ("c-1", "c-2", "c-3"):
        await running.add_volunteer(v)
    assert (await sign_up(running, activity_id, "c-1")).json()["status"] == "confirmed"
    assert (await sign_up(running, activity_id, "c-2")).json()["status"] == "waitlisted"
    assert (await sign_up(running, activity_id, "c-3")).status_code == 201
    assert (
        await c.delete(f"/activities/{activity_id}/signups/c-3", headers=running.volunteer("c-3"))
    ).status_code == 200

    problem(
        await c.post(f"/activities/{activity_id}/cancel", json={"reason": "  "}, headers=admin),
        422,
        "cancel_reason_required",
    )
    cancelled = await c.post(f"/activities/{activity_id}/cancel", json={"reason": "暴雨预警"}, headers=admin)
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancel_reason"] == "暴雨预警"

    events = await running.events(activity_id, ACTIVITIES)
    assert events[-1].type == "stvs.activity.cancelled.v1"
    data = events[-1].data.model_dump()
    assert data["signed_up_volunteer_ids"] == ["c-1", "c-2"]
    assert data["reason"] == "暴雨预警"


async def test_invalid_transitions_are_refused_through_the_api(running: Running) -> None:
    c, admin = running.client, running.admin()
    draft_id = await new_activity(running, publish=False)
    body = problem(await c.post(f"/activities/{draft_id}/start", headers=admin), 409, "invalid_transition")
    assert body["detail"] == "活动当前状态为“草稿”，不能变更为“进行中”"
    problem(await c.post(f"/activities/{draft_id}/complete", headers=admin), 409, "invalid_transition")
    published = await new_activity(running)
    problem(await c.post(f"/activities/{published}/complete", headers=admin), 409, "invalid_transition")
    assert (await c.post(f"/activities/{published}/cancel", json={"reason": "场地冲突"}, headers=admin)).json()[
        "status"
    ] == "cancelled"
    for action in ("publish", "start", "complete"):
        problem(await c.post(f"/activities/{published}/{action}", headers=admin), 409, "invalid_transition")
    problem(
        await c.post(f"/activities/{published}/cancel", json={"reason": "再次取消"}, headers=admin),
        409,
        "invalid_transition",
    )
    assert "total_hours" not in (await c.get(f"/activities/{published}", headers=admin)).json()


async def test_cancelling_tells_volunteers_still_awaiting_approval(running: Running) -> None:
    c, admin = running.client, running.admin()
    activity_id = await new_activity(running, capacity=1, requires_approval=True)
    for v in ("ap-1", "ap-2", "ap-3"):
        await running.add_volunteer(v)
        assert (await sign_up(running, activity_id, v)).json()["status"] == "pending_approval"
    assert (await c.post(f"/activities/{activity_id}/signups/ap-1/approve", headers=admin)).status_code == 200
    assert (await c.post(f"/activities/{activity_id}/signups/ap-3/reject", headers=admin)).status_code == 200
    await c.post(f"/activities/{activity_id}/cancel", json={"reason": "主讲专家临时无法到场"}, headers=admin)
    events = await running.events(activity_id, ACTIVITIES)
    cancelled = [e.data.model_dump() for e in events if e.type == "stvs.activity.cancelled.v1"]
    assert [d["signed_up_volunteer_ids"] for d in cancelled] == [["ap-1", "ap-2"]], (
        "confirmed and pending, not rejected"
    )


async def test_listing_filters_and_pagination(running: Running) -> None:
    c = running.client
    base = datetime.now(UTC) + timedelta(days=300)
    ids: list[str] = []
    admin_l = running.admin("unit-L")
    for i, (lw, th) in enumerate(
        [
            ("community_school", ["women_youth"]),
            ("enterprise_park", ["enterprise_innovation"]),
            ("rural_revitalization", ["poverty_health", "national_key_event"]),
        ]
    ):
        starts = base + timedelta(days=i)
        body = draft(starts=starts, unit_id="unit-L", line_of_work=lw, themes=th)
        created = await c.post("/activities", json=body, headers=admin_l)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    for activity_id in ids[:2]:
        await c.post(f"/activities/{activity_id}/publish", headers=admin_l)

    async def listed(headers: dict[str, str], **params: Any) -> list[str]:
        response = await c.get("/activities", params={"unit_id": "unit-L", **params}, headers=headers)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["items"]]

    volunteer = running.volunteer("v-list")
    assert await listed(volunteer) == ids[:2], "volunteers see published ones"
    assert await listed(admin_l) == ids, "the unit sees its drafts too"
    assert await listed(running.admin("unit-other")) == ids[:2]
    assert await listed(running.province(), status="draft") == ids[2:]
    assert await listed(admin_l, line_of_work="enterprise_park") == ids[1:2]
    assert await listed(admin_l, theme="national_key_event") == ids[2:]
    assert await listed(admin_l, **{"from": iso(base + timedelta(hours=12))}) == ids[1:]
    assert await listed(admin_l, to=iso(base + timedelta(hours=12))) == ids[:1]
    # Without a unit filter: a unit's administrator sees its own drafts and everyone's published activities.
    unfiltered = await c.get("/activities", params={"from": iso(base - timedelta(hours=1))}, headers=admin_l)
    assert [a["id"] for a in unfiltered.json()["items"]] == ids
    unfiltered = await c.get("/activities", params={"from": iso(base - timedelta(hours=1))}, headers=running.admin())
    assert [a["id"] for a in unfiltered.json()["items"]] == ids[:2]
    page = (await c.get("/activities", params={"unit_id": "unit-L", "offset": 1, "limit": 1}, headers=admin_l)).json()
    assert (page["total"], [a["id"] for a in page["items"]]) == (3, ids[1:2])
    problem(await c.get("/activities", params={"limit": 1000}, headers=admin_l), 422, "validation")
    # an absurd offset (found by fuzzing: it overflowed MongoDB's 64-bit skip) is bad input, not a server error
    huge = {"offset": 482080847328974542471168}
    problem(await c.get("/activities", params=huge, headers=admin_l), 422, "validation")
    problem(await c.get("/demands", params=huge, headers=admin_l), 422, "validation")


# ---------------------------------------------------------------- refusals


async def test_activity_data_refusals(running: Running) -> None:
    c, admin = running.client, running.admin()
    starts = datetime.now(UTC) + timedelta(days=2)
    bad = draft(starts=starts, ends_at=iso(starts - timedelta(hours=1)))
    body = problem(await c.post("/activities", json=bad, headers=admin), 422, "activity_invalid")
    assert {"field": "ends_at", "message": "结束时间必须晚于开始时间"} in body["errors"]
    body = problem(
        await c.post("/activities", json=draft(capacity=0, title=""), headers=admin), 422, "activity_invalid"
    )
    assert {e["field"] for e in body["errors"]} == {"capacity", "title"}
    problem(await c.post("/activities", json=draft(unit_id="unit-2"), headers=admin), 403, "not_unit_admin")
    problem(await c.post("/activities", json=draft(), headers=running.volunteer("v-1")), 403, "forbidden_role")
    problem(await c.post("/activities", json=draft()), 401, "no_identity")
    problem(await c.post("/activities", json=draft(demand_ids=["nope"]), headers=admin), 422, "activity_invalid")

    # Capacity below the confirmed count.
    activity_id = await new_activity(running, capacity=3)
    for v in ("cap-1", "cap-2", "cap-3"):
        await running.add_volunteer(v)
        assert (await sign_up(running, activity_id, v)).json()["status"] == "confirmed"
    body = problem(
        await c.patch(f"/activities/{activity_id}", json={"capacity": 2}, headers=admin), 422, "activity_invalid"
    )
    assert body["errors"] == [{"field": "capacity", "message": "招募人数（2）不能少于已确认报名人数（3）"}]
    problem(
        await c.patch(f"/activities/{activity_id}", json={"unit_id": "unit-2"}, headers=admin), 422, "activity_invalid"
    )
    assert (await c.patch(f"/activities/{activity_id}", json={"capacity": 3}, headers=admin)).status_code == 200
    problem(await c.get("/activities/does-not-exist", headers=admin), 404, "activity_not_found")


async def test_sign_up_refusals(running: Running) -> None:
    c = running.client
    activity_id = await new_activity(running, capacity=5)
    await running.add_volunteer("r-ok")
    await running.add_volunteer("r-inactive", status="inactive")
    await running.add_volunteer("r-left", units=())

    problem(await sign_up(running, activity_id, "r-unknown"), 422, "volunteer_unknown")
    problem(await sign_up(running, activity_id, "r-inactive"), 422, "volunteer_inactive")
    problem(await sign_up(running, activity_id, "r-left"), 422, "volunteer_inactive")
    assert (await sign_up(running, activity_id, "r-ok")).status_code == 201
    problem(await sign_up(running, activity_id, "r-ok"), 409, "already_signed_up")
    # Someone else's sign-up, and an admin of another unit.
    problem(
        await c.post(
            f"/activities/{activity_id}/signups", json={"volunteer_id": "r-x"}, headers=running.volunteer("r-ok")
        ),
        403,
        "not_yourself",
    )
    problem(
        await c.post(
            f"/activities/{activity_id}/signups", json={"volunteer_id": "r-ok"}, headers=running.admin("unit-2")
        ),
        403,
        "volunteer_out_of_scope",  # r-ok is unit-1's: unit-2's admin may not act for them (issue 14)
    )

    now = datetime.now(UTC)
    not_yet = await new_activity(running, signup_opens_at=iso(now + timedelta(hours=2)))
    problem(await sign_up(running, not_yet, "r-ok"), 409, "signup_not_yet_open")
    closed = await new_activity(
        running,
        starts=now + timedelta(hours=5),
        signup_opens_at=iso(now - timedelta(days=2)),
        signup_closes_at=iso(now - timedelta(days=1)),
    )
    problem(await sign_up(running, closed, "r-ok"), 409, "signup_closed")
    admin = running.admin()
    draft_id = await new_activity(running, publish=False)
    problem(
        await c.post(f"/activities/{draft_id}/signups", json={"volunteer_id": "r-ok"}, headers=admin),
        409,
        "activity_not_published",
    )
    cancelled = await new_activity(running)
    await c.post(f"/activities/{cancelled}/cancel", json={"reason": "场地临时关闭"}, headers=admin)
    problem(await sign_up(running, cancelled, "r-ok"), 409, "activity_cancelled")
    problem(await sign_up(running, "no-such-activity", "r-ok"), 404, "activity_not_found")


# ---------------------------------------------------------------- sign-up, waitlist, approval


async def test_waitlist_is_first_come_first_served(running: Running) -> None:
    c, admin = running.client, running.admin()
    activity_id = await new_activity(running, capacity=2)
    volunteers = [f"w-{i}" for i in range(1, 6)]
    for v in volunteers:
        await running.add_volunteer(v)
    statuses = [(await sign_up(running, activity_id, v)).json() for v in volunteers]
    assert [s["status"] for s in statuses] == ["confirmed", "confirmed", "waitlisted", "waitlisted", "waitlisted"]
    assert [s.get("waitlist_position") for s in statuses] == [None, None, 1, 2, 3]

    # An administrator cancels a confirmed sign-up: the first on the waitlist moves up.
    gone = await c.delete(f"/activities/{activity_id}/signups/w-1", headers=admin)
    assert gone.status_code == 200, gone.text
    assert (gone.json()["status"], gone.json()["promoted"]) == ("cancelled", ["w-3"])
    # A waitlisted volunteer leaves: nobody moves up, the rest keep their order.
    left = await c.delete(f"/activities/{activity_id}/signups/w-4", headers=running.volunteer("w-4"))
    assert left.json()["promoted"] == []
    problem(await c.delete(f"/activities/{activity_id}/signups/w-4", headers=admin), 409, "signup_not_active")
    problem(await c.delete(f"/activities/{activity_id}/signups/w-9", headers=admin), 404, "signup_not_found")
    # Raising the capacity promotes from the waitlist too.
    assert (await c.patch(f"/activities/{activity_id}", json={"capacity": 3}, headers=admin)).status_code == 200

    listing = (await c.get(f"/activities/{activity_id}/signups", headers=admin)).json()
    assert [(s["volunteer_id"], s["status"]) for s in listing["items"]] == [
        ("w-1", "cancelled"),
        ("w-2", "confirmed"),
        ("w-3", "confirmed"),
        ("w-4", "cancelled"),
        ("w-5", "confirmed"),
    ]
    assert listing["counts"]["confirmed"] == 3
    assert (await c.get(f"/activities/{activity_id}", headers=admin)).json()["signup_counts"]["confirmed"] == 3
    problem(await c.get(f"/activities/{activity_id}/signups", headers=running.volunteer("w-2")), 403, "forbidden_role")
    mine = (await c.get(f"/activities/{activity_id}", headers=running.volunteer("w-2"))).json()["my_signup"]
    assert (mine["status"], mine["sequence"]) == ("confirmed", 2)

    # Signing up again after cancelling is allowed (at the end of the queue).
    again = await sign_up(running, activity_id, "w-1")
    assert again.json()["status"] == "waitlisted" and again.json()["sequence"] == 6

    events = [e for e in await running.events(activity_id, ACTIVITIES) if e.type != "stvs.activity.published.v1"]
    summary = [(e.type.split(".")[2], e.data.model_dump()["volunteer_id"]) for e in events]
    assert summary == [
        *[("volunteer_signed_up", v) for v in volunteers],
        ("signup_cancelled", "w-1"),
        ("signup_confirmed", "w-3"),
        ("signup_cancelled", "w-4"),
        ("signup_confirmed", "w-5"),
        ("volunteer_signed_up", "w-1"),
    ]
    assert [e.data.model_dump()["status"] for e in events[:5]] == ["confirmed"] * 2 + ["waitlisted"] * 3
    assert events[5].data.model_dump()["by"] == "admin" and events[7].data.model_dump()["by"] == "volunteer"
    assert events[6].data.model_dump()["reason"] == "promoted"


async def test_sign_ups_needing_approval(running: Running) -> None:
    c, admin = running.client, running.admin()
    activity_id = await new_activity(running, capacity=1, requires_approval=True)
    for v in ("a-1", "a-2", "a-3"):
        await running.add_volunteer(v)
        assert (await sign_up(running, activity_id, v)).json()["status"] == "pending_approval"
    approved = await c.post(f"/activities/{activity_id}/signups/a-1/approve", headers=admin)
    assert approved.json()["status"] == "confirmed"
    assert (await c.post(f"/activities/{activity_id}/signups/a-2/approve", headers=admin)).json()["status"] == (
        "waitlisted"
    )
    assert (await c.post(f"/activities/{activity_id}/signups/a-3/reject", headers=admin)).json()["status"] == "rejected"
    problem(await c.post(f"/activities/{activity_id}/signups/a-1/approve", headers=admin), 409, "signup_not_active")
    problem(
        await c.post(f"/activities/{activity_id}/signups/a-2/approve", headers=running.volunteer("a-2")),
        403,
        "forbidden_role",
    )
    events = await running.events(activity_id, ACTIVITIES)
    confirmed = [e.data.model_dump() for e in events if e.type == "stvs.activity.signup_confirmed.v1"]
    assert [(d["volunteer_id"], d["reason"]) for d in confirmed] == [("a-1", "approved")]


async def test_admin_signs_up_a_volunteer(running: Running) -> None:
    activity_id = await new_activity(running)
    await running.add_volunteer("adm-1")
    response = await running.client.post(
        f"/activities/{activity_id}/signups", json={"volunteer_id": "adm-1"}, headers=running.admin()
    )
    assert response.status_code == 201, response.text
    assert (response.json()["status"], response.json()["by"]) == ("confirmed", "admin")
    problem(
        await running.client.post(f"/activities/{activity_id}/signups", headers=running.admin()),
        422,
        "volunteer_required",
    )


async def test_a_burst_of_concurrent_sign_ups_never_oversells(running: Running) -> None:
    activity_id = await new_activity(running, capacity=50)
    volunteers = [f"burst-{i:03d}" for i in range(200)]
    await asyncio.gather(*(running.add_volunteer(v) for v in volunteers))
    responses = await asyncio.gather(*(sign_up(running, activity_id, v) for v in volunteers))
    assert sorted({r.status_code for r in responses}) == [201]
    statuses = [r.json()["status"] for r in responses]
    assert (statuses.count("confirmed"), statuses.count("waitlisted")) == (50, 150)

    listing = (await running.client.get(f"/activities/{activity_id}/signups", headers=running.admin())).json()
    assert listing["total"] == 200, "none lost"
    assert listing["counts"]["confirmed"] == 50 and listing["counts"]["waitlisted"] == 150
    assert [s["sequence"] for s in listing["items"]] == list(range(1, 201))
    # Arrival order decides: the first 50 sequences are the confirmed ones, the waitlist follows in order.
    assert {s["status"] for s in listing["items"][:50]} == {"confirmed"}
    assert [s["waitlist_position"] for s in listing["items"][50:]] == list(range(1, 151))
    # Each answer told its place on the waitlist as the roster shows it (sign-ups were committed in batches).
    answered = {r.json()["volunteer_id"]: r.json().get("waitlist_position") for r in responses}
    assert answered == {s["volunteer_id"]: s.get("waitlist_position") for s in listing["items"]}

    events = [e for e in await running.events(activity_id, ACTIVITIES) if e.type.endswith("volunteer_signed_up.v1")]
    assert len(events) == 200
    assert sorted(e.data.model_dump()["volunteer_id"] for e in events) == volunteers
    assert sum(e.data.model_dump()["status"] == "confirmed" for e in events) == 50


async def test_concurrent_requests_of_one_volunteer_make_one_sign_up(running: Running) -> None:
    """The same volunteer signing up several times at once (double click, two devices): one sign-up, the others are
    refused as duplicates; refusals of other volunteers in the same burst are answered each on its own."""
    activity_id = await new_activity(running, capacity=3)
    for v in ("g-before", "g-1", "g-2", "g-3"):
        await running.add_volunteer(v)
    assert (await sign_up(running, activity_id, "g-before")).json()["status"] == "confirmed"

    arrivals = ["g-1"] * 5 + ["g-unknown", "g-before", "g-2", "g-3"]
    responses = await asyncio.gather(*(sign_up(running, activity_id, v) for v in arrivals))
    repeated, (unknown, before, *others) = responses[:5], responses[5:]
    assert sorted(r.status_code for r in repeated) == [201, 409, 409, 409, 409]
    for refused in (r for r in repeated if r.status_code == 409):
        problem(refused, 409, "already_signed_up")
    problem(unknown, 422, "volunteer_unknown")
    problem(before, 409, "already_signed_up")
    signed = [r.json() for r in [*repeated, *others] if r.status_code == 201]
    assert sorted(s["status"] for s in signed) == ["confirmed", "confirmed", "waitlisted"]
    assert sorted(s["sequence"] for s in signed) == [2, 3, 4]

    listing = (await running.client.get(f"/activities/{activity_id}/signups", headers=running.admin())).json()
    assert listing["items"][0]["volunteer_id"] == "g-before"
    assert sorted(s["volunteer_id"] for s in listing["items"]) == ["g-1", "g-2", "g-3", "g-before"]
    assert [s["status"] for s in listing["items"]] == ["confirmed", "confirmed", "confirmed", "waitlisted"]
    assert (listing["counts"]["confirmed"], listing["counts"]["waitlisted"]) == (3, 1)
    events = [e for e in await running.events(activity_id, ACTIVITIES) if e.type.endswith("volunteer_signed_up.v1")]
    assert sorted(e.data.model_dump()["volunteer_id"] for e in events) == ["g-1", "g-2", "g-3", "g-before"]


async def test_concurrent_cancellations_and_sign_ups_keep_the_counts_exact(running: Running) -> None:
    activity_id = await new_activity(running, capacity=20)
    first = [f"mix-{i:02d}" for i in range(40)]
    late = [f"mix-late-{i:02d}" for i in range(10)]
    await asyncio.gather(*(running.add_volunteer(v) for v in first + late))
    for v in first:  # in order: 20 confirmed, 20 waitlisted
        await sign_up(running, activity_id, v)

    leaving = first[:10]
    admin = running.admin()
    cancels = [running.client.delete(f"/activities/{activity_id}/signups/{v}", headers=admin) for v in leaving]
    results = await asyncio.gather(*cancels, *(sign_up(running, activity_id, v) for v in late))
    assert {r.status_code for r in results[:10]} == {200} and {r.status_code for r in results[10:]} == {201}

    listing = (await running.client.get(f"/activities/{activity_id}/signups", headers=running.admin())).json()
    by_status: dict[str, list[str]] = {}
    for item in listing["items"]:
        by_status.setdefault(item["status"], []).append(item["volunteer_id"])
    assert len(by_status["confirmed"]) == 20
    assert sorted(by_status["cancelled"]) == leaving
    # The ten places freed went to the first ten on the waitlist, whatever the interleaving with the newcomers.
    assert set(first[20:30]) <= set(by_status["confirmed"])
    assert {k: len(v) for k, v in by_status.items()} == {k: n for k, n in listing["counts"].items() if n}
    assert len(listing["items"]) == 50


# ---------------------------------------------------------------- attendance and hours


async def test_check_in_out_and_hours_end_to_end(running: Running) -> None:
    c, admin = running.client, running.admin()
    now = datetime.now(UTC)
    starts = now - timedelta(hours=2)  # three hours: started two hours ago, ends in one hour
    activity_id = await new_activity(
        running,
        starts=starts,
        capacity=5,
        signup_opens_at=iso(now - timedelta(days=3)),
        signup_closes_at=iso(starts + timedelta(hours=3)),
    )
    for v in ("h-early", "h-forgot", "h-code", "h-absent"):
        await running.add_volunteer(v)
        assert (await sign_up(running, activity_id, v)).status_code == 201
    await running.add_volunteer("h-not-signed")
    assert (await c.post(f"/activities/{activity_id}/start", headers=admin)).status_code == 200

    def at(hours: float) -> str:
        return iso(starts + timedelta(hours=hours))

    async def admin_att(kind: str, volunteer: str, hours: float) -> httpx.Response:
        body = {"volunteer_id": volunteer, "at": at(hours)}
        return await c.post(f"/activities/{activity_id}/{kind}", json=body, headers=admin)

    # Early check-in counts from the start; checked out after one hour.
    assert (await admin_att("checkin", "h-early", -0.5)).status_code == 200
    problem(await admin_att("checkin", "h-early", 0), 409, "already_checked_in")
    problem(await admin_att("checkout", "h-early", -0.7), 409, "checkout_before_checkin")
    out = await admin_att("checkout", "h-early", 1)
    assert out.status_code == 200, out.text
    assert out.json()["hours"] == "1.0"
    problem(await admin_att("checkout", "h-early", 1.5), 409, "already_checked_out")
    # Forgotten check-out: closes at the end.
    assert (await admin_att("checkin", "h-forgot", 0.5)).status_code == 200
    problem(await admin_att("checkout", "h-absent", 1), 409, "not_checked_in")
    problem(await admin_att("checkin", "h-not-signed", 1), 409, "not_confirmed")
    problem(await admin_att("checkin", "h-absent", -1.5), 409, "checkin_outside_window")
    problem(await admin_att("checkin", "h-absent", 5), 422, "time_in_future")

    # The volunteer with the activity's code (the QR code's content); only admins see the code.
    code = (await c.get(f"/activities/{activity_id}/checkin-code", headers=admin)).json()["code"]
    assert code == checkin_code(activity_id, CHECKIN_SECRET)
    problem(
        await c.get(f"/activities/{activity_id}/checkin-code", headers=running.volunteer("h-code")),
        403,
        "forbidden_role",
    )
    me = running.volunteer("h-code")
    problem(await c.post(f"/activities/{activity_id}/checkin", json={}, headers=me), 422, "checkin_code_required")
    problem(
        await c.post(f"/activities/{activity_id}/checkin", json={"code": "garbage"}, headers=me),
        403,
        "checkin_code_mismatch",
    )
    other = await new_activity(running)  # tomorrow: its code is refused here, and refused there (outside window)
    other_code = checkin_code(other, CHECKIN_SECRET)
    problem(
        await c.post(f"/activities/{activity_id}/checkin", json={"code": other_code}, headers=me),
        403,
        "checkin_code_mismatch",
    )
    await sign_up(running, other, "h-code")
    problem(
        await c.post(f"/activities/{other}/checkin", json={"code": other_code}, headers=me),
        409,
        "checkin_outside_window",
    )
    problem(
        await c.post(f"/activities/{activity_id}/checkin", json={"code": code, "at": at(0)}, headers=me),
        403,
        "at_for_admins",
    )
    assert (await c.post(f"/activities/{activity_id}/checkin", json={"code": code}, headers=me)).status_code == 200
    checked_out = await c.post(f"/activities/{activity_id}/checkout", json={"code": code}, headers=me)
    assert checked_out.json()["hours"] == "0.0"

    # Corrections (补录): reason required, within the span, every one kept; the last one counts.
    def correction(volunteer: str, hours: Any, reason: str) -> Any:
        return c.post(
            f"/activities/{activity_id}/attendance/{volunteer}/correction",
            json={"hours": hours, "reason": reason},
            headers=admin,
        )

    problem(await correction("h-code", 2, "  "), 422, "correction_reason_required")
    problem(await correction("h-code", "3.1", "超出"), 422, "correction_hours_out_of_range")
    problem(await correction("h-not-signed", 1, "不在名单"), 409, "not_confirmed")
    assert (await correction("h-code", "2.5", "扫码失败，负责人证明")).json()["hours"] == "2.5"
    corrected = (await correction("h-code", "1.5", "核实后更正")).json()
    assert corrected["hours"] == "1.5" and corrected["computed_hours"] == "0.0"
    assert [x["reason"] for x in corrected["corrections"]] == ["扫码失败，负责人证明", "核实后更正"]
    assert (await correction("h-absent", 0, "未到场")).status_code == 200

    attendance = (await c.get(f"/activities/{activity_id}/attendance", headers=admin)).json()
    assert {a["volunteer_id"]: a["hours"] for a in attendance["items"]} == {
        "h-early": "1.0",
        "h-forgot": "2.5",
        "h-code": "1.5",
        "h-absent": "0.0",
    }
    assert attendance["total_hours"] == "5.0"

    completed_view = await c.post(f"/activities/{activity_id}/complete", headers=admin)
    assert completed_view.status_code == 200
    assert (completed_view.json()["total_hours"], completed_view.json()["participants"]) == ("5.0", 4)
    problem(await admin_att("checkout", "h-forgot", 2), 409, "activity_not_open")

    events = await running.events(activity_id, ACTIVITIES)
    completed = [e.data.model_dump() for e in events if e.type == "stvs.activity.completed.v1"]
    assert len(completed) == 1
    assert {p["volunteer_id"]: p["hours"] for p in completed[0]["participants"]} == {
        "h-early": 1.0,
        "h-forgot": 2.5,
        "h-code": 1.5,
        "h-absent": 0.0,
    }
    assert completed[0]["participants"][0]["display_name"].startswith("志愿者")
    assert completed[0]["total_hours"] == 5.0
    recorded = [e.data.model_dump() for e in events if e.type == "stvs.activity.attendance_recorded.v1"]
    early = [r for r in recorded if r["volunteer_id"] == "h-early"]
    assert [r["hours"] for r in early] == [None, 1.0]
    reasons = [r["correction_reason"] for r in recorded if r["correction_reason"]]
    assert reasons == ["扫码失败，负责人证明", "核实后更正", "未到场"]
    assert not [e for e in events if e.type.endswith("hours_corrected.v1")], "completion carried the corrections"


async def test_hours_corrected_after_completion_reach_reporting(running: Running) -> None:
    c, admin = running.client, running.admin()
    now = datetime.now(UTC)
    starts = now - timedelta(hours=2)
    activity_id = await new_activity(
        running,
        starts=starts,
        capacity=5,
        signup_opens_at=iso(now - timedelta(days=3)),
        signup_closes_at=iso(starts + timedelta(hours=3)),
    )
    for v in ("hc-1", "hc-2"):
        await running.add_volunteer(v)
        assert (await sign_up(running, activity_id, v)).status_code == 201
    await c.post(f"/activities/{activity_id}/start", headers=admin)
    for kind, hours in (("checkin", 0), ("checkout", 1)):
        body = {"volunteer_id": "hc-1", "at": iso(starts + timedelta(hours=hours))}
        assert (await c.post(f"/activities/{activity_id}/{kind}", json=body, headers=admin)).status_code == 200
    done = (await c.post(f"/activities/{activity_id}/complete", headers=admin)).json()
    assert (done["status"], done["total_hours"], done["participants"]) == ("completed", "1.0", 1)

    def correction(volunteer: str, hours: Any, reason: str) -> Any:
        return c.post(
            f"/activities/{activity_id}/attendance/{volunteer}/correction",
            json={"hours": hours, "reason": reason},
            headers=admin,
        )

    problem(await correction("hc-1", "2.5", " "), 422, "correction_reason_required")
    assert (await correction("hc-1", "2.5", "签退漏记，负责人证明")).json()["hours"] == "2.5"
    assert (await correction("hc-1", "2.0", "核实后更正")).json()["hours"] == "2.0"  # chains from 2.5
    assert (await correction("hc-2", "1.0", "到场未签到")).json()["hours"] == "1.0"  # a new participant

    view = (await c.get(f"/activities/{activity_id}", headers=running.volunteer("hc-2"))).json()
    assert (view["total_hours"], view["participants"]) == ("3.0", 2)
    listed = (await c.get("/activities", params={"status": "completed", "unit_id": "unit-1"}, headers=admin)).json()
    assert [(a["total_hours"], a["participants"]) for a in listed["items"] if a["id"] == activity_id] == [("3.0", 2)]
    assert (await c.get(f"/activities/{activity_id}/attendance", headers=admin)).json()["total_hours"] == "3.0"

    events = await running.events(activity_id, ACTIVITIES)
    completed = next(e.data.model_dump() for e in events if e.type.endswith("completed.v1"))
    corrected = [e.data.model_dump() for e in events if e.type == "stvs.activity.hours_corrected.v1"]
    assert [(d["volunteer_id"], d["previous_hours"], d["hours"], d["reason"]) for d in corrected] == [
        ("hc-1", 1.0, 2.5, "签退漏记，负责人证明"),
        ("hc-1", 2.5, 2.0, "核实后更正"),
        ("hc-2", 0.0, 1.0, "到场未签到"),
    ]
    assert all(d["unit_id"] == "unit-1" and abs(d["starts_at"] - starts) < timedelta(milliseconds=1) for d in corrected)
    # What reporting computes from the events equals the activity's total.
    assert completed["total_hours"] + sum(d["hours"] - d["previous_hours"] for d in corrected) == 3.0
    recorded = [e.data.model_dump() for e in events if e.type.endswith("attendance_recorded.v1")]
    assert [r["correction_reason"] for r in recorded if r["correction_reason"]] == [d["reason"] for d in corrected]
    stored = await running.store.get(SIGNUPS, signup_id(activity_id, "hc-1"))
    assert stored is not None and [x["reason"] for x in stored["attendance"]["corrections"]] == [
        "签退漏记，负责人证明",
        "核实后更正",
    ]


async def test_hours_are_capped_at_the_activity_span(running: Running) -> None:
    c, admin = running.client, running.admin()
    now = datetime.now(UTC)
    starts = now - timedelta(hours=4)
    activity_id = await new_activity(
        running,
        starts=starts,
        ends_at=iso(now + timedelta(hours=1)),
        capacity=5,
        signup_opens_at=iso(now - timedelta(days=3)),
        signup_closes_at=iso(now + timedelta(hours=1)),
    )
    await running.add_volunteer("cap-late")
    await running.add_volunteer("cap-before")
    for v in ("cap-late", "cap-before"):
        await c.post(f"/activities/{activity_id}/signups", json={"volunteer_id": v}, headers=admin)
    # Then shortened to three hours: it ended an hour ago.
    end = iso(starts + timedelta(hours=3))
    body = {"ends_at": end, "signup_closes_at": end}
    shortened = await c.patch(f"/activities/{activity_id}", json=body, headers=admin)
    assert shortened.status_code == 200, shortened.text
    await c.post(f"/activities/{activity_id}/start", headers=admin)

    async def record(kind: str, volunteer: str, hours: float) -> httpx.Response:
        body = {"volunteer_id": volunteer, "at": iso(starts + timedelta(hours=hours))}
        response = await c.post(f"/activities/{activity_id}/{kind}", json=body, headers=admin)
        assert response.status_code == 200, response.text
        return response

    await record("checkin", "cap-late", 2.5)
    assert (await record("checkout", "cap-late", 3.5)).json()["hours"] == "0.5"  # late check-out counts to the end
    await record("checkin", "cap-before", -0.9)
    assert (await record("checkout", "cap-before", -0.4)).json()["hours"] == "0.0"  # left before the start
    problem(
        await c.post(
            f"/activities/{activity_id}/attendance/cap-late/correction",
            json={"hours": "3.5", "reason": "超过活动时长"},
            headers=admin,
        ),
        422,
        "correction_hours_out_of_range",
    )
    await c.post(f"/activities/{activity_id}/complete", headers=admin)
    completed = [e for e in await running.events(activity_id, ACTIVITIES) if e.type.endswith("completed.v1")]
    data = completed[0].data.model_dump()
    assert {p["volunteer_id"]: p["hours"] for p in data["participants"]} == {"cap-late": 0.5, "cap-before": 0.0}
    assert data["total_hours"] == 0.5


# ---------------------------------------------------------------- demand library


async def test_demand_library(running: Running) -> None:
    c, admin = running.client, running.admin()
    body = {"unit_id": "unit-1", "enterprise": "某机械厂", "title": "焊接工艺改进", "description": "焊缝气孔率高"}
    created = await c.post("/demands", json=body, headers=admin)
    assert created.status_code == 201, created.text
    demand_id = created.json()["id"]
    assert (created.json()["status"], created.json()["status_label"]) == ("open", "待对接")
    problem(await c.post("/demands", json={**body, "unit_id": "unit-2"}, headers=admin), 403, "not_unit_admin")
    problem(await c.post("/demands", json={**body, "title": ""}, headers=admin), 422, "activity_invalid")

    matched = await c.patch(f"/demands/{demand_id}", json={"status": "matched"}, headers=admin)
    assert matched.json()["status"] == "matched"
    assert (await c.patch(f"/demands/{demand_id}", json={"status": "solved"}, headers=admin)).status_code == 200
    problem(
        await c.patch(f"/demands/{demand_id}", json={"status": "open"}, headers=admin), 409, "invalid_demand_transition"
    )
    problem(await c.patch("/demands/none", json={"status": "open"}, headers=admin), 404, "demand_not_found")
    listed = (await c.get("/demands", params={"unit_id": "unit-1", "status": "solved"}, headers=admin)).json()
    assert demand_id in [d["id"] for d in listed["items"]]
    # the library is the admins' (issue 14): another unit's admin and a volunteer see nothing of it
    for other in (running.admin("unit-2"), running.volunteer("d-v")):
        assert (await c.get("/demands", params={"unit_id": "unit-1"}, headers=other)).json()["total"] == 0
        problem(await c.get(f"/demands/{demand_id}", headers=other), 404, "demand_not_found")

    # An activity names the demands it addresses.
    activity_id = await new_activity(running, publish=False, line_of_work="enterprise_park", demand_ids=[demand_id])
    assert (await c.get(f"/activities/{activity_id}", headers=admin)).json()["demand_ids"] == [demand_id]

    events = await running.events(demand_id, DEMANDS)
    assert [e.data.model_dump()["status"] for e in events] == ["open", "matched", "solved"]
    assert events[0].data.model_dump()["enterprise"] == "某机械厂"


# ---------------------------------------------------------------- a process dying in the middle


async def _age_claims(running: Running, activity_id: str) -> None:
    """Let the claims of the activity's sign-ups grow old, as if their process had died long ago."""
    past = datetime.now(UTC) - timedelta(hours=1)
    await running.service.db[SIGNUPS].update_many(
        {"activity_id": activity_id, "claim": {"$exists": True}}, {"$set": {"claim.at": past}}
    )


async def test_a_sign_up_decided_by_a_process_that_died_is_completed(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    activity_id = await new_activity(running, capacity=1)
    for v in ("d-1", "d-2"):
        await running.add_volunteer(v)

    async def die(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died right after the decision was committed")

    with monkeypatch.context() as patched:
        patched.setattr(running.store, "apply", die)
        with contextlib.suppress(RuntimeError):  # the request fails (500) or the process is gone
            await sign_up(running, activity_id, "d-1")
    # The place is taken (the decision is the activity's write): the next sign-up waits.
    assert (await sign_up(running, activity_id, "d-2")).json()["status"] == "waitlisted"
    # Once the dead process's claim is old, the volunteer's next request finds the sign-up completed.
    await _age_claims(running, activity_id)
    problem(await sign_up(running, activity_id, "d-1"), 409, "already_signed_up")
    listing = (await running.client.get(f"/activities/{activity_id}/signups", headers=running.admin())).json()
    assert [(s["volunteer_id"], s["status"], s["sequence"]) for s in listing["items"]] == [
        ("d-1", "confirmed", 1),
        ("d-2", "waitlisted", 2),
    ]
    assert (listing["counts"]["confirmed"], listing["counts"]["waitlisted"]) == (1, 1)
    events = await running.events(activity_id, ACTIVITIES)
    signed = [e.data.model_dump()["volunteer_id"] for e in events if e.type.endswith("volunteer_signed_up.v1")]
    assert sorted(signed) == ["d-1", "d-2"], "each sign-up announced once"


async def test_a_sign_up_a_dead_process_never_decided_is_forgotten(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    activity_id = await new_activity(running, capacity=1)
    await running.add_volunteer("n-1")

    async def die(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died before deciding")

    with monkeypatch.context() as patched:
        patched.setattr(running.store, "commit", die)
        with contextlib.suppress(RuntimeError):
            await sign_up(running, activity_id, "n-1")
    await _age_claims(running, activity_id)
    # The repair sweep (any replica, one at a time) gives the claim up: the place is still free, and the volunteer
    # signs up as if nothing had happened.
    await repair(running.store)
    assert await running.service.db[SIGNUPS].count_documents({"activity_id": activity_id}) == 0
    signed = await sign_up(running, activity_id, "n-1")
    assert (signed.json()["status"], signed.json()["sequence"]) == ("confirmed", 1)
    counts = (await running.client.get(f"/activities/{activity_id}", headers=running.admin())).json()["signup_counts"]
    assert counts["confirmed"] == 1


# ---------------------------------------------------------------- scope (issue 14): the shared rule


async def test_scope_reaches_down_the_tree_never_across(running: Running) -> None:
    """An admin manages the activities of its unit and of every unit below it (the service's copy of the tree,
    ``scope_units``, is what the consumer keeps); another unit's sign-ups, attendance and code are 404; an admin
    acts only for volunteers of its scope, and a roster names in full only those."""
    c = running.client
    copy = running.store.db[SCOPE_UNITS]
    for unit_id, ancestors in (("unit-1", ["top"]), ("sub-1", ["top", "unit-1"]), ("unit-2", ["top"])):
        await copy.update_one({"_id": unit_id}, {"$set": {"ancestors": ancestors, "version": 1}}, upsert=True)
    city, beside, below = running.admin("unit-1"), running.admin("unit-2"), running.admin("sub-1")
    activity_id = await new_activity(running, unit_id="sub-1")  # created and published by unit-1's admin
    for reader in (city, below):
        assert (await c.get(f"/activities/{activity_id}/signups", headers=reader)).status_code == 200
    for path in ("signups", "attendance", "checkin-code"):
        problem(await c.get(f"/activities/{activity_id}/{path}", headers=beside), 404, "activity_not_found")
    problem(await c.post(f"/activities/{activity_id}/start", headers=beside), 403, "not_unit_admin")
    problem(await c.post(f"/activities/{activity_id}/publish", headers=below), 409, "invalid_transition")

    await running.add_volunteer("near", units=("sub-1",))
    await running.add_volunteer("far", units=("unit-2",))
    problem(
        await c.post(f"/activities/{activity_id}/signups", json={"volunteer_id": "far"}, headers=city),
        403,
        "volunteer_out_of_scope",
    )
    r = await c.post(f"/activities/{activity_id}/signups", json={"volunteer_id": "near"}, headers=city)
    assert r.status_code == 201 and r.json()["display_name"] == "志愿者near", r.text
    assert (await sign_up(running, activity_id, "far")).status_code == 201  # by themself: welcome
    roster = (await c.get(f"/activities/{activity_id}/signups", headers=city)).json()["items"]
    assert {i["volunteer_id"]: i["display_name"] for i in roster} == {"near": "志愿者near", "far": "志****r"}
    full = (await c.get(f"/activities/{activity_id}/signups", headers=running.province())).json()["items"]
    assert {i["display_name"] for i in full} == {"志愿者near", "志愿者far"}
    correction = {"hours": "1", "reason": "补录"}
    problem(
        await c.post(f"/activities/{activity_id}/attendance/far/correction", json=correction, headers=city),
        403,
        "volunteer_out_of_scope",
    )
    checkin = {"volunteer_id": "far"}
    problem(
        await c.post(f"/activities/{activity_id}/checkin", json=checkin, headers=city), 403, "volunteer_out_of_scope"
    )
    # the organiser may cancel a sign-up to its activity; the answer names only whom it may know
    cancelled = await c.delete(f"/activities/{activity_id}/signups/far", headers=city)
    assert cancelled.status_code == 200 and cancelled.json()["display_name"] == "志****r", cancelled.text
    # a volunteer the service has not heard of yet: refused as unknown (try again), not as out of scope
    unknown = await c.post(f"/activities/{activity_id}/signups", json={"volunteer_id": "not-yet"}, headers=city)
    problem(unknown, 422, "volunteer_unknown")


async def test_demands_reach_the_units_that_can_serve_them(running: Running) -> None:
    """A demand is seen by the admins of its unit and of every unit above it, and by those of the units below it
    (a city's demands reach its county teams); never beside."""
    c = running.client
    copy = running.store.db[SCOPE_UNITS]
    for unit_id, ancestors in (("d-city", ["top"]), ("d-county", ["top", "d-city"]), ("d-beside", ["top"])):
        await copy.update_one({"_id": unit_id}, {"$set": {"ancestors": ancestors, "version": 1}}, upsert=True)
    body = {"enterprise": "某企业", "title": "难题", "description": "说明"}
    made = {}
    for unit_id in ("d-city", "d-county", "d-beside"):
        r = await c.post("/demands", json={**body, "unit_id": unit_id}, headers=running.admin(unit_id))
        assert r.status_code == 201, r.text
        made[unit_id] = r.json()["id"]

    async def seen(unit_id: str) -> set[str]:
        items = (await c.get("/demands", params={"limit": 100}, headers=running.admin(unit_id))).json()["items"]
        return {d["unit_id"] for d in items} & set(made)

    assert await seen("d-city") == {"d-city", "d-county"}
    assert await seen("d-county") == {"d-city", "d-county"}
    assert await seen("d-beside") == {"d-beside"}
    assert (await c.get(f"/demands/{made['d-city']}", headers=running.admin("d-county"))).status_code == 200
    problem(await c.get(f"/demands/{made['d-beside']}", headers=running.admin("d-city")), 404, "demand_not_found")
    listed = await c.get("/demands", params={"unit_id": "d-beside"}, headers=running.admin("d-city"))
    assert listed.json()["total"] == 0


# ---------------------------------------------------------------- the typed answers write what the untyped ones did


async def test_answers_keep_their_shape_times_in_utc_with_z_and_optional_keys_left_out(running: Running) -> None:
    c, admin = running.client, running.admin()
    created = await c.post("/activities", json=draft(), headers=admin)
    body = created.json()
    assert body["starts_at"].endswith("Z") and body["created_at"].endswith("Z"), body
    assert body["cancel_reason"] is None and body["publicity"] is None  # always there, null when unset
    assert not {"published_at", "total_hours", "participants", "my_signup"} & set(body)
    not_an_object = await c.post("/activities", json=[1], headers=admin)
    assert not_an_object.status_code == 422
    assert not_an_object.json()["errors"] == [{"field": "", "message": "应为对象", "type": "dict_type"}]
