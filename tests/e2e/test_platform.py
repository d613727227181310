"""End-to-end: the whole platform driven only through the gateway, as its users would (issue 8, "End-to-end").

The five services run as real subprocesses (``python -m services.<name>``) on free loopback ports against the
session's Kafka and MongoDB-protocol server, in a fresh namespace. The province admin seeds the hierarchy, a city
detachment's admin imports volunteers from the 附件2 spreadsheet and publishes an activity; the volunteers sign
themselves up and check in with the activity's code, as themselves; the activity completes; then the hours, the
quarter's compliance, the deadline reminders, the volunteer's own record and a certificate that a third party
verifies without an account must all show it.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import signal
import socket
import sys
import time
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest

from infra.local.runner import REPO_ROOT
from shared.clock import Clock, anchored
from shared.identity import HEADER, Identity, sign_identity
from shared.messaging.topics import ensure_topics
from tests.fixtures import eventually, make_settings
from tests.registry.helpers import CITY_LEADERS, CONTACT, id_number

SERVICES = ("registry", "activities", "reporting", "notifier", "gateway")
SHANGHAI = ZoneInfo("Asia/Shanghai")
WAIT_S = 30.0
STOP_GRACE_S = 20.0
ADMIN = ("province", "province-pass-1")
CITY_ADMIN = ("sjz_admin", "sjz-admin-pass-1")
VOLUNTEER_PASSWORD = "volunteer-pass-1"
# The platform runs on a set clock, never on the day the test runs: a Friday morning in late May 2026, when the May
# monthly report (due June 5) is 7 days away — so its reminder is due — and the activity falls in the second quarter.
PROGRAMME_START = datetime(2026, 5, 29, 10, 0, tzinfo=SHANGHAI)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Platform:
    api: str  # http://127.0.0.1:<gateway port>/api/v1
    urls: dict[str, str]  # every process's own base URL (internal: only the gateway should call them)
    logs: Path
    processes: dict[str, Process]
    clock: Clock  # the programme time every process of this platform reads

    def tail(self, lines: int = 30) -> str:
        out = []
        for name in self.processes:
            text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {name} (exit {self.processes[name].returncode}) ---\n" + "\n".join(text))
        return "\n".join(out)


async def stop(processes: dict[str, Process]) -> None:
    """SIGTERM everything at once, then kill what has not exited after the grace period."""
    for proc in processes.values():
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in processes.values():
        try:
            await asyncio.wait_for(proc.wait(), timeout=max(deadline - time.monotonic(), 0.1))
        except TimeoutError:
            proc.kill()
            await asyncio.wait_for(proc.wait(), timeout=5)


async def wait_healthy(name: str, url: str, proc: Process, logs: Path, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                log = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{name} exited with {proc.returncode} before it was healthy:\n{log}")
            try:
                if (await client.get(url + "/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{name} not healthy at {url}/healthz within {timeout_s}s")


@pytest.fixture(scope="module")
async def platform(infra: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    settings = make_settings(infra)
    await ensure_topics(settings, partitions=3)
    logs = tmp_path_factory.mktemp("e2e-logs")
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STVS_", "OTEL_"))}
    clock = anchored(PROGRAMME_START)
    env.update(
        STVS_KAFKA_BOOTSTRAP=infra.kafka_bootstrap,
        STVS_MONGO_URL=infra.mongo_url,
        STVS_NAMESPACE=settings.namespace,
        STVS_INTERNAL_TOKEN=f"e2e-internal-token-{settings.namespace}-{os.getpid():08d}",  # ≥ 32 bytes
        STVS_HTTP_HOST="127.0.0.1",
        STVS_REGISTRY_URL=urls["registry"],
        STVS_ACTIVITIES_URL=urls["activities"],
        STVS_REPORTING_URL=urls["reporting"],
        STVS_NOTIFIER_URL=urls["notifier"],
        STVS_CAMPAIGN_YEAR=str(PROGRAMME_START.year),
        STVS_CLOCK_START=PROGRAMME_START.isoformat(),
        STVS_CLOCK_ANCHOR=(clock.anchor or datetime.now(UTC)).isoformat(),
        STVS_SCHEDULER_INTERVAL_S="1",
        STVS_MISSED_DIGEST_SETTLE_S="1",
        STVS_SMTP_PORT=str(free_ports(1)[0]),  # nothing listens: e-mails stay queued, nothing leaves the machine
        STVS_CONSUMER_BACKOFF_MS="20",
        STVS_OUTBOX_SWEEP_INTERVAL_S="5",
        STVS_OUTBOX_SWEEP_GRACE_S="1",
        STVS_SIGNIN_RATE_PER_MIN="100",
        PYTHONUNBUFFERED="1",
    )
    processes: dict[str, Process] = {}
    try:
        for name in SERVICES:
            with (logs / f"{name}.log").open("wb") as log:
                processes[name] = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    f"services.{name}",
                    cwd=REPO_ROOT,
                    env={**env, "STVS_HTTP_PORT": str(ports[name])},
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                )
            # one at a time, each healthy (bounded wait) before the next starts: five interpreters importing at
            # once on a small, busy machine can take longer than the bound
            await wait_healthy(name, urls[name], processes[name], logs)
        create_admin = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "services.gateway.create_admin", "--username", ADMIN[0], "--password", ADMIN[1]),
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(create_admin.communicate(), timeout=WAIT_S)
        assert create_admin.returncode == 0, output.decode(errors="replace")
        yield Platform(api=urls["gateway"] + "/api/v1", urls=urls, logs=logs, processes=processes, clock=clock)
    finally:
        await stop(processes)


async def signin(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    r = await client.post("/auth/signin", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    return r.json() if r.headers.get("content-type", "").startswith(("application/json", "application/problem")) else r


def fill_volunteers(template: bytes, rows: list[dict[str, str]]) -> bytes:
    """The downloaded 附件2 template with its example row replaced by ``rows`` (every cell as text)."""
    book = openpyxl.load_workbook(io.BytesIO(template))
    sheet = book["科技志愿者集体注册信息表"]
    headers = [c.value for c in sheet[1]]
    sheet.delete_rows(2, sheet.max_row)
    for r, row in enumerate(rows, start=2):
        for header, value in row.items():
            cell = sheet.cell(row=r, column=headers.index(header) + 1, value=value)
            cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


PEOPLE: list[dict[str, Any]] = [
    {"姓名": "张科普", "性别": "男", "seq": 11, "职称": "高级农艺师", "职称级别": "副高级", "专业领域": "作物栽培"},
    {"姓名": "李健康", "性别": "女", "seq": 12, "职称": "主任医师", "职称级别": "正高级", "专业领域": "临床医学"},
    {"姓名": "王机械", "性别": "男", "seq": 13, "职称": "工程师", "职称级别": "中级", "专业领域": "机械工程"},
]


def volunteer_rows() -> list[dict[str, str]]:
    rows = []
    for p in PEOPLE:
        seq = int(p["seq"])
        rows.append(
            {
                "姓名": str(p["姓名"]),
                "性别": str(p["性别"]),
                "身份证号码": id_number(seq, male=p["性别"] == "男"),
                "手机号码": f"139{seq:08d}",
                "电子邮箱": f"v{seq}@example.com",
                "工作单位": "石家庄市农林科学研究院",
                "职称": str(p["职称"]),
                "职称级别": str(p["职称级别"]),
                "学历": "大学本科",
                "专业领域": str(p["专业领域"]),
                "政治面貌": "群众",
                "技能特长": "科普讲解、技术咨询",
                "服务领域": "进社区进学校",
            }
        )
    return rows


async def test_platform_end_to_end(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.api, timeout=WAIT_S) as client:
        try:
            await scenario(client, platform.clock)
            await around_the_gateway(platform)
        except BaseException:
            print(platform.tail())  # shown by pytest on failure
            raise


async def around_the_gateway(platform: Platform) -> None:
    """The services refuse a call that does not come through the gateway with a valid identity."""
    province = Identity(subject="x", role="province_admin")
    async with httpx.AsyncClient(timeout=WAIT_S) as client:
        for service, path in (("registry", "/units"), ("activities", "/activities"), ("reporting", "/compliance")):
            target = f"{path}?unit_id=u"
            forged = sign_identity(
                province, "not-the-internal-token-of-this-platform", service=service, method="GET", target=target
            )
            for headers in ({}, {HEADER: forged}):
                r = await client.get(platform.urls[service] + path, headers=headers, params={"unit_id": "u"})
                assert r.status_code == 401, (service, r.status_code, r.text)
                assert r.headers["content-type"] == "application/problem+json"


async def scenario(client: httpx.AsyncClient, clock: Clock) -> None:
    # ---- the province admin seeds the hierarchy and the city admin's account
    province = await signin(client, *ADMIN)
    assert ok(await client.get("/auth/me", headers=province))["role"] == "province_admin"
    corps = ok(
        await client.post(
            "/units",
            headers=province,
            json={
                "kind": "province_corps",
                "leaders": [{"name": "张总队", "role": "总队长"}, {"name": "王副总", "role": "副总队长"}],
                "phone": "0311-85012345",
                "address": "石家庄市桥西区",
                "contact": {**CONTACT, "email": "office@example.com"},
            },
        ),
        201,
    )
    assert corps["status"] == "active", corps
    city = ok(
        await client.post(
            "/units",
            headers=province,
            json={
                "kind": "city_detachment",
                "base": "石家庄市",
                "parent_id": corps["id"],
                "city": "shijiazhuang",
                "leaders": CITY_LEADERS,
                "phone": "0311-80010000",
                "declared_members": 300,
                "contact": CONTACT,
            },
        ),
        201,
    )
    assert city["name"] == "石家庄市科技志愿者支队", city
    assert city["status"] == "active" and city["parent_id"] == corps["id"], city
    assert city["contact"]["name"] == CONTACT["name"] and len(city["leaders"]) == len(CITY_LEADERS)
    city_id = city["id"]
    account = ok(
        await client.post(
            "/accounts",
            headers=province,
            json={
                "username": CITY_ADMIN[0],
                "password": CITY_ADMIN[1],
                "role": "unit_admin",
                "unit_id": city_id,
                "display_name": "石家庄市支队管理员",
            },
        ),
        201,
    )
    assert account["account"]["unit_id"] == city_id

    # ---- the city admin: the gateway learns the city from the registry's events, then scopes the admin to it
    admin = await signin(client, *CITY_ADMIN)

    async def sees_city() -> bool:
        return (await client.get(f"/units/{city_id}", headers=admin)).status_code == 200

    await eventually(sees_city, timeout_s=WAIT_S, interval_s=0.2)
    assert (await client.get(f"/units/{corps['id']}", headers=admin)).status_code == 404  # above its scope

    # ---- collective registration from the 附件2 spreadsheet: template, dry run, import
    template = await client.get("/forms/volunteers/template", headers=admin)
    ok(template)
    assert template.headers["content-type"].startswith("application/vnd.openxmlformats")
    filled = fill_volunteers(template.content, volunteer_rows())
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    async def upload(dry_run: bool) -> Any:
        files = {"file": ("附件2.xlsx", filled, xlsx)}
        params = {"dry_run": str(dry_run).lower()}
        return ok(await client.post("/forms/volunteers/import", headers=admin, params=params, files=files))

    dry = await upload(True)
    assert (dry["dry_run"], dry["total_rows"], dry["created"], dry["errors"]) == (True, 3, 3, []), dry
    assert ok(await client.get("/volunteers", headers=admin, params={"unit_id": city_id}))["total"] == 0
    real = await upload(False)
    assert (real["dry_run"], real["created"], real["errors"]) == (False, 3, []), real
    found = ok(await client.get("/volunteers", headers=admin, params={"unit_id": city_id}))
    assert found["total"] == 3, found
    volunteers = {v["name"]: v for v in found["items"]}
    assert set(volunteers) == {p["姓名"] for p in PEOPLE}
    for v in volunteers.values():
        assert v["unit_ids"] == [city_id] and v["platform_number"].startswith("HB"), v
        assert "*" in v["id_number_masked"]
    ids = [volunteers[str(p["姓名"])]["id"] for p in PEOPLE]

    # ---- an activity of the city: create, publish
    # it starts in a few minutes: a volunteer who checks in early with the code is counted from the start
    now = clock.now().replace(microsecond=0)
    starts_at, ends_at = now + timedelta(minutes=10), now + timedelta(hours=2, minutes=10)
    activity = ok(
        await client.post(
            "/activities",
            headers=admin,
            json={
                "title": "科技助力社区健康讲座",
                "description": "面向社区居民的健康科普讲座与义诊咨询",
                "unit_id": city_id,
                "line_of_work": "community_school",
                "themes": ["poverty_health"],
                "target_groups": ["社区居民"],
                "place": "长安区某社区活动中心",
                "county": "长安区",
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
                "capacity": 10,
                "signup_opens_at": (now - timedelta(hours=3)).isoformat(),
                "signup_closes_at": (now + timedelta(minutes=5)).isoformat(),
            },
        ),
        201,
    )
    assert activity["status"] == "draft"
    aid = activity["id"]
    assert ok(await client.post(f"/activities/{aid}/publish", headers=admin))["status"] == "published"

    # ---- volunteer accounts (the gateway must know the volunteer is in the admin's scope first)
    logins = {vid: f"volunteer_{i}" for i, vid in enumerate(ids)}

    async def create_volunteer_account(vid: str) -> Any:
        body = {"username": logins[vid], "password": VOLUNTEER_PASSWORD, "role": "volunteer", "volunteer_id": vid}
        r = await client.post("/accounts", headers=admin, json=body)
        return r.json() if r.status_code == 201 else None

    people: dict[str, dict[str, str]] = {}
    for vid in ids:
        made = await eventually(functools.partial(create_volunteer_account, vid), timeout_s=WAIT_S, interval_s=0.3)
        assert made["account"]["volunteer_id"] == vid
        people[vid] = await signin(client, logins[vid], VOLUNTEER_PASSWORD)
    volunteer = people[ids[0]]
    assert ok(await client.get(f"/volunteers/{ids[0]}", headers=volunteer))["name"] == "张科普"
    assert (await client.get(f"/volunteers/{ids[1]}", headers=volunteer)).status_code == 404
    listed = ok(await client.get("/activities", headers=volunteer))
    assert aid in [a["id"] for a in listed["items"]], listed

    # ---- sign-ups: each volunteer signs itself up (the activities service knows them from registry events)
    async def sign_up(vid: str) -> Any:
        r = await client.post(f"/activities/{aid}/signups", headers=people[vid], json={})
        if r.status_code == 422 and r.json().get("code") in ("volunteer_unknown", "volunteer_inactive"):
            return None
        return ok(r, 201)

    for vid in ids:
        entry = await eventually(functools.partial(sign_up, vid), timeout_s=WAIT_S, interval_s=0.3)
        assert entry["status"] == "confirmed" and entry["volunteer_id"] == vid and entry["by"] == "volunteer", entry
    # nobody signs up or cancels for someone else
    r = await client.post(f"/activities/{aid}/signups", headers=volunteer, json={"volunteer_id": ids[1]})
    assert r.status_code == 403, r.text
    assert (await client.delete(f"/activities/{aid}/signups/{ids[1]}", headers=volunteer)).status_code == 403
    roster = ok(await client.get(f"/activities/{aid}/signups", headers=admin))
    assert roster["counts"]["confirmed"] == 3
    assert (await client.get(f"/activities/{aid}/signups", headers=volunteer)).status_code == 404
    mine = ok(await client.get(f"/activities/{aid}", headers=volunteer))
    assert mine["my_signup"]["status"] == "confirmed", mine

    # ---- the activity runs: the volunteers scan the activity's code (the QR shown on site) to check in; the
    # first two forget to check out (counted until the end), the third leaves at once and the admin records the
    # 1.5 hours served (补录, with a reason)
    code = ok(await client.get(f"/activities/{aid}/checkin-code", headers=admin))["code"]
    assert (await client.get(f"/activities/{aid}/checkin-code", headers=volunteer)).status_code == 404
    wrong = await client.post(f"/activities/{aid}/checkin", headers=volunteer, json={"code": code[:-1] + "x"})
    assert wrong.status_code == 403, wrong.text
    for vid in ids:
        checked = ok(await client.post(f"/activities/{aid}/checkin", headers=people[vid], json={"code": code}))
        assert checked["volunteer_id"] == vid and checked["check_in"], checked
    assert ok(await client.post(f"/activities/{aid}/start", headers=admin))["status"] == "ongoing"
    left = ok(await client.post(f"/activities/{aid}/checkout", headers=people[ids[2]], json={"code": code}))
    assert float(left["hours"]) == 0.0, left
    fixed = ok(
        await client.post(
            f"/activities/{aid}/attendance/{ids[2]}/correction",
            headers=admin,
            json={"hours": "1.5", "reason": "开讲前到场布置，签退时误扫，按实际服务补录"},
        )
    )
    assert float(fixed["hours"]) == 1.5, fixed
    attendance = ok(await client.get(f"/activities/{aid}/attendance", headers=admin))
    assert float(attendance["total_hours"]) == 5.5, attendance
    completed = ok(await client.post(f"/activities/{aid}/complete", headers=admin))
    assert completed["status"] == "completed" and completed["completed_at"], completed
    # The publicity after the activity says how many people were served (corrected once: the count follows).
    for served in (120, 86):
        ok(
            await client.post(
                f"/activities/{aid}/publicity",
                headers=admin,
                json={"summary": "为社区居民讲解防汛与应急科普知识", "people_served": served},
            )
        )

    # ---- reporting: hours, the volunteer's record and the quarter's compliance
    local_start = starts_at.astimezone(SHANGHAI)
    year, quarter = local_start.year, (local_start.month - 1) // 3 + 1

    async def unit_hours() -> Any:
        r = await client.get(f"/stats/units/{city_id}", headers=admin, params={"year": year})
        stats = r.json() if r.status_code == 200 else {}
        own = stats.get("own") or {}
        counted = own.get("hours") == 5.5 and own.get("activities") == 1 and own.get("people_served") == 86
        return stats if counted else None

    stats = await eventually(unit_hours, timeout_s=WAIT_S, interval_s=0.3)
    assert stats["own"]["participations"] == 3, stats
    assert stats["own"]["volunteers"] == 3, stats

    province_view = ok(await client.get(f"/stats/units/{corps['id']}", headers=province, params={"year": year}))
    assert province_view["rollup"]["hours"] == 5.5 and province_view["rollup"]["activities"] == 1, province_view

    async def volunteer_record() -> Any:
        r = await client.get(f"/stats/volunteers/{ids[2]}", headers=admin)
        return r.json() if r.status_code == 200 and r.json().get("hours") == 1.5 else None

    record = await eventually(volunteer_record, timeout_s=WAIT_S, interval_s=0.3)
    assert record["activities"] == 1 and record["unit_ids"] == [city_id], record

    compliance = ok(
        await client.get("/compliance", headers=admin, params={"unit_id": city_id, "year": year, "quarter": quarter})
    )
    row = next(u for u in compliance["units"] if u["unit_id"] == city_id)
    rules = {r["rule"]: r for r in row["rules"]}
    assert rules[f"activity-Q{quarter}"]["status"] == "met", rules[f"activity-Q{quarter}"]
    assert rules[f"activity-Q{quarter}"]["gap"] == 0
    yearly = ok(await client.get("/compliance", headers=admin, params={"unit_id": city_id, "year": year}))
    theme = {r["rule"]: r for r in yearly["units"][0]["rules"]}.get("theme-poverty_health")
    assert theme is not None and theme["status"] == "met", yearly

    # ---- notifier: the city's obligations (contact given; this quarter's activity done), the campaign calendar,
    # and the reminders of what is still open
    async def obligations_closed() -> Any:
        r = await client.get(f"/obligations/{city_id}", headers=admin)
        if r.status_code != 200:
            return None
        state = {(o["deadline_id"], o["kind"]): o for o in r.json()["obligations"]}
        quarter_done = state.get((f"quarter-{year}-Q{quarter}", "quarterly_activity"))
        contact = state.get((f"registration-{year}", "contact_person"))
        return state if quarter_done and not quarter_done["open"] and contact and not contact["open"] else None

    await eventually(obligations_closed, timeout_s=WAIT_S, interval_s=0.5)
    deadlines = ok(await client.get("/deadlines", headers=admin, params={"year": year}))
    assert deadlines and all(d["reminders_at"] for d in deadlines), deadlines

    async def reminders() -> Any:
        r = await client.get("/notifications", headers=admin)
        items = r.json()["items"] if r.status_code == 200 else []
        return [n for n in items if n["unit_id"] == city_id and n["kind"] == "deadline_approaching"] or None

    notices = await eventually(reminders, timeout_s=WAIT_S, interval_s=0.5)
    assert all(n["recipient"] == f"unit:{city_id}" and n["subject"] for n in notices), notices
    assert notices[0]["channel"] == "email" and notices[0]["address"] == CONTACT["email"], notices[0]

    # ---- the volunteer's own view: its hours, its inbox (nobody else's), not another volunteer's record
    own = ok(await client.get(f"/stats/volunteers/{ids[0]}", headers=volunteer))
    assert own["hours"] == 2.0 and own["activities"] == 1, own
    assert (await client.get(f"/stats/volunteers/{ids[1]}", headers=volunteer)).status_code == 404
    inbox = ok(await client.get("/notifications", headers=volunteer))
    assert all(n["recipient"] == f"volunteer:{ids[0]}" for n in inbox["items"]), inbox
    other = await client.get("/notifications", headers=volunteer, params={"recipient": f"volunteer:{ids[1]}"})
    assert other.status_code == 404

    # ---- the service-record certificate: issued as PDF (by the admin, and by the volunteer for itself), verified
    # by its number — by a signed-in admin, and by a third party without an account
    pdf = await client.get(f"/certificates/volunteers/{ids[0]}.pdf", headers=admin)
    ok(pdf)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF"), pdf.headers
    number = pdf.headers["x-certificate-number"]
    verified = ok(await client.get(f"/certificates/{number}", headers=province))
    assert verified["valid"] is True and verified["hours"] == 2.0 and verified["activities"] == 1, verified
    assert verified["platform_number"] == volunteers["张科普"]["platform_number"]
    assert verified["issuing_unit_name"] == "石家庄市科技志愿者支队"
    forged = number[:-1] + ("0" if number[-1] != "0" else "1")
    assert (await client.get(f"/certificates/{forged}", headers=province)).status_code == 404

    mine_pdf = await client.get(f"/certificates/volunteers/{ids[0]}.pdf", headers=volunteer)
    ok(mine_pdf)
    assert mine_pdf.content.startswith(b"%PDF")
    assert (await client.get(f"/certificates/volunteers/{ids[1]}.pdf", headers=volunteer)).status_code == 404
    public = ok(await client.get(f"/public/certificates/{mine_pdf.headers['x-certificate-number']}"))
    assert public == {
        "valid": True,
        "number": mine_pdf.headers["x-certificate-number"],
        "platform_number": volunteers["张科普"]["platform_number"],
        "name_masked": "张*普",
        "hours": 2.0,
        "issuing_unit_name": "石家庄市科技志愿者支队",
        "issued_at": public["issued_at"],
    }, public
    assert public["issued_at"]
    assert ok(await client.get(f"/public/certificates/{forged}")) == {
        "valid": False,
        "number": forged,
        "platform_number": None,
        "name_masked": None,
        "hours": None,
        "issuing_unit_name": None,
        "issued_at": None,
    }
