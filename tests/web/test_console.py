"""The console in a browser, as its users would use it, against the whole running platform.

The province office signs in and sees its dashboard; a city detachment's admin registers a volunteer (a refused
ID-card number shown beside its field), imports 附件2 (the error table, then a clean dry run and the import),
publishes an activity and shows its check-in QR code; a volunteer on a 375 px phone finds the activity, signs up,
checks in with the code the QR code carries, and after completion sees its hours. Every page is screenshotted
(``.stvs/screenshots/``) and checked with axe-core: no serious or critical violation.
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
from datetime import timedelta
from typing import Any

import httpx
import openpyxl
from playwright.async_api import Browser, BrowserContext, Page, expect

from infra.local.fleet import Fleet
from tests.fixtures import eventually
from tests.registry.helpers import CITY_LEADERS, CONTACT, id_number
from tests.web.conftest import ADMIN, AXE, SCREENSHOTS

CITY_ADMIN = ("sjz_admin", "sjz-admin-pass-1")
VOLUNTEER = ("volunteer_zhang", "volunteer-pass-1")
WAIT_MS = 30_000
BAD_IMPACTS = {"serious", "critical"}
PEOPLE = [("张科普", "男", 11, "作物栽培"), ("李健康", "女", 12, "临床医学"), ("王机械", "男", 13, "机械工程")]

AXE_RUN = """async () => {
  const r = await axe.run(document, { resultTypes: ['violations'] });
  return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }));
}"""


class Pages:
    """Screenshots and the accessibility check of each page visited."""

    def __init__(self) -> None:
        self.violations: dict[str, list[dict[str, Any]]] = {}
        self.seen: list[str] = []

    async def check(self, page: Page, name: str) -> None:
        await page.wait_for_load_state("networkidle")
        await page.screenshot(path=SCREENSHOTS / f"{len(self.seen) + 1:02d}-{name}.png", full_page=True)
        await page.add_script_tag(path=str(AXE))
        found = [v for v in await page.evaluate(AXE_RUN) if v["impact"] in BAD_IMPACTS]
        if found:
            self.violations[name] = found
            print(f"axe {name}: {found}")
        self.seen.append(name)


async def sign_in(page: Page, base: str, who: tuple[str, str]) -> None:
    await page.goto(base + "/login")
    await page.locator("#signin-username").fill(who[0])
    await page.locator("#signin-password").fill(who[1])
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(re.compile(r"/(province|unit|me)"), timeout=WAIT_MS)


async def choose(page: Page, label: str, option: str) -> None:
    # the placeholder lies over the input: the click lands on it and bubbles to the select
    listbox = page.get_by_role("listbox", name=label)
    for _ in range(3):
        await page.get_by_role("combobox", name=label).click(force=True)
        try:
            await expect(listbox).to_be_visible(timeout=3000)
            break
        except AssertionError:
            continue
    await listbox.get_by_role("option", name=option, exact=True).click()
    await expect(listbox).to_be_hidden()


async def upload(page: Page, xlsx: bytes) -> None:
    files = [{"name": "附件2.xlsx", "mimeType": "application/octet-stream", "buffer": xlsx}]
    await page.get_by_test_id("import-file").set_input_files(files=files)  # type: ignore[arg-type]


async def send(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A request, repeated while the platform answers 503 (nothing was saved then: the shared database is busy)."""
    for _ in range(20):
        r = await client.request(method, url, **kwargs)
        if r.status_code != 503:
            return r
        await asyncio.sleep(1)
    return r


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    return r.json()


def filled_template(template: bytes, rows: list[dict[str, str]]) -> bytes:
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


def person_row(name: str, gender: str, seq: int, field: str) -> dict[str, str]:
    return {
        "姓名": name,
        "性别": gender,
        "身份证号码": id_number(seq, male=gender == "男"),
        "手机号码": f"139{seq:08d}",
        "电子邮箱": f"v{seq}@example.com",
        "工作单位": "石家庄市农林科学研究院",
        "职称": "工程师",
        "职称级别": "中级",
        "学历": "大学本科",
        "专业领域": field,
        "政治面貌": "群众",
        "技能特长": "科普讲解",
        "服务领域": "进社区进学校",
    }


async def seed(client: httpx.AsyncClient) -> dict[str, Any]:
    """What the province office did before this story: the corps, the Shijiazhuang detachment and its admin."""
    r = await send(client, "POST", "/auth/signin", json={"username": ADMIN[0], "password": ADMIN[1]})
    province = {"Authorization": f"Bearer {ok(r)['access_token']}"}
    corps = ok(
        await send(
            client,
            "POST",
            "/units",
            headers=province,
            json={"kind": "province_corps", "leaders": [{"name": "张总队", "role": "总队长"}], "contact": CONTACT},
        ),
        201,
    )
    city = ok(
        await send(
            client,
            "POST",
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
    body = {
        "username": CITY_ADMIN[0],
        "password": CITY_ADMIN[1],
        "role": "unit_admin",
        "unit_id": city["id"],
        "display_name": "石家庄市支队管理员",
    }
    ok(await send(client, "POST", "/accounts", headers=province, json=body), 201)
    return {"province": province, "corps": corps, "city": city}


async def test_the_console_end_to_end(console_fleet: Fleet, browser: Browser) -> None:
    base = console_fleet.url("gateway")
    pages = Pages()
    async with httpx.AsyncClient(base_url=console_fleet.api, timeout=30) as client:
        world = await seed(client)
        desktop = {"width": 1366, "height": 900}
        admin_ctx = await browser.new_context(viewport=desktop, locale="zh-CN", accept_downloads=True)
        try:
            page = await admin_ctx.new_page()
            await province_office(page, base, pages)
            await unit_admin(page, base, pages, world)
            activity_id, code = await running_activity(client, console_fleet, world)
            phone = await browser.new_context(
                viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True, locale="zh-CN"
            )
            try:
                await volunteer(phone, page, base, pages, activity_id, code)
            finally:
                await phone.close()
        finally:
            await admin_ctx.close()
    assert not pages.violations, f"axe-core: serious or critical violations: {pages.violations}"
    assert len(pages.seen) >= 20, pages.seen


async def province_office(page: Page, base: str, pages: Pages) -> None:
    # a wrong password is refused in Chinese, on the page
    await page.goto(base + "/login")
    await pages.check(page, "signin")
    await page.locator("#signin-username").fill(ADMIN[0])
    await page.locator("#signin-password").fill("wrong-password")
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误", timeout=WAIT_MS)

    await sign_in(page, base, ADMIN)
    await expect(page).to_have_url(re.compile(r"/province$"))
    tile = page.locator('[data-city="shijiazhuang"]')
    await expect(tile).to_contain_text("/ 300 人", timeout=WAIT_MS)
    await expect(page.locator('[data-city="xiongan"]')).to_contain_text("尚未注册支队")
    await expect(page.locator(".tiles > li")).to_have_count(14)
    await expect(page.get_by_role("img", name="全省各季度志愿服务时长柱状图").locator("svg")).to_be_visible(
        timeout=WAIT_MS
    )
    await pages.check(page, "province-dashboard")
    for path, name, text in (
        ("/province/calendar", "province-calendar", "截止事项"),
        ("/province/units", "province-units", "石家庄市科技志愿者支队"),
        ("/province/accounts", "province-accounts", "sjz_admin"),
        ("/unit", "province-unit-tree", "河北省科技志愿者总队"),
    ):
        await page.goto(base + path)
        await expect(page.locator("main")).to_contain_text(text, timeout=WAIT_MS)
        await pages.check(page, name)
    await page.get_by_role("button", name="退出登录").click()
    await page.wait_for_url(re.compile(r"/login"))


async def unit_admin(page: Page, base: str, pages: Pages, world: dict[str, Any]) -> None:
    await sign_in(page, base, CITY_ADMIN)
    await expect(page).to_have_url(re.compile(r"/unit$"))
    await expect(page.locator("main")).to_contain_text("石家庄市科技志愿者支队", timeout=WAIT_MS)
    await pages.check(page, "unit-home")

    # register one volunteer: the ID-card number's check digit is wrong, and the refusal sits beside that field
    await page.goto(base + "/unit/volunteers/new")
    await page.locator("#v-name").fill("赵农技")
    await choose(page, "性别", "男")
    good = id_number(21)
    await page.locator("#v-id").fill(good[:-1] + ("0" if good[-1] != "0" else "1"))
    await page.locator("#v-mobile").fill("13900000021")
    await page.locator("#v-employer").fill("正定县农业农村局")
    await choose(page, "职称级别", "副高级")
    await choose(page, "学历", "大学本科")
    await page.locator("#v-field").fill("果树栽培")
    await choose(page, "政治面貌", "群众")
    await page.get_by_role("button", name="提交注册").click()
    id_item = page.locator(".el-form-item").filter(has=page.locator("#v-id"))
    await expect(id_item.locator(".el-form-item__error")).to_contain_text("身份证", timeout=WAIT_MS)
    await pages.check(page, "volunteer-register-refused")
    await page.locator("#v-id").fill(good)
    await page.get_by_role("button", name="提交注册").click()
    await page.wait_for_url(re.compile(r"/unit/volunteers/[^/]+\?created=1"), timeout=WAIT_MS)
    await expect(page.locator("main")).to_contain_text("注册成功")
    masked = page.locator(".el-descriptions").get_by_text(re.compile(r"^\d{2}\*{16}$"))  # the province only
    await expect(masked).to_be_visible()
    assert good not in await page.content()
    await pages.check(page, "volunteer-detail")

    # 附件2: the template, a file with a bad row (the error table), then a clean dry run and the import
    await page.goto(base + "/unit/import")
    async with page.expect_download() as info:
        await page.get_by_role("button", name="① 下载空白模板").click()
    template = (await (await info.value).path()).read_bytes()
    rows = [person_row(*p) for p in PEOPLE]
    broken = [*rows[:2], {**rows[2], "手机号码": "12345"}]
    await upload(page, filled_template(template, broken))
    errors = page.get_by_test_id("import-errors")
    await expect(errors).to_contain_text("手机", timeout=WAIT_MS)
    await expect(errors.locator("tbody tr")).to_have_count(1)
    await expect(page.get_by_role("button", name="③ 确认导入")).to_have_count(0)
    await pages.check(page, "import-errors")
    await upload(page, filled_template(template, rows))
    await expect(page.get_by_role("status").first).to_contain_text("校验通过：共 3 行，将新增 3 人", timeout=WAIT_MS)
    await page.get_by_role("button", name="③ 确认导入").click()
    await expect(page.locator("main")).to_contain_text("导入完成：新增 3 人", timeout=WAIT_MS)
    await pages.check(page, "import-done")

    await page.goto(base + "/unit/volunteers")
    await expect(page.get_by_role("link", name="张科普")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("main")).to_contain_text("共 4 条")
    await page.get_by_role("textbox", name="按姓名搜索").fill("李健康")
    await page.get_by_role("button", name="搜索").click()
    await expect(page.locator(".el-table__body tbody tr")).to_have_count(1, timeout=WAIT_MS)
    await pages.check(page, "volunteers")

    # publish an activity with its line of work and themes; the QR code of its check-in
    await page.goto(base + "/unit/activities/new")
    await page.locator("#a-title").fill("果树修剪技术田间培训")
    await page.locator("#a-desc").fill("为果农讲解冬季修剪要点并现场示范")
    await page.locator("label.el-radio", has_text="助力乡村振兴").click()
    await page.locator("label.el-checkbox", has_text="农村妇女和青少年").click()
    await expect(page.get_by_role("checkbox", name="农村妇女和青少年")).to_be_checked()
    await page.locator("#a-county").fill("正定县")
    await page.locator("#a-place").fill("某村果园")
    await pages.check(page, "activity-publish-form")
    await page.get_by_role("button", name="发布", exact=True).click()
    await page.wait_for_url(re.compile(r"/unit/activities/[^/]+\?published=1"), timeout=WAIT_MS)
    await expect(page.locator("h1")).to_contain_text("已发布")
    await page.get_by_role("button", name="显示签到二维码").click()
    qr = page.get_by_test_id("checkin-qr")
    await expect(qr).to_be_visible(timeout=WAIT_MS)
    assert (await qr.evaluate("img => img.naturalWidth")) >= 200
    await pages.check(page, "activity-detail-qr")
    await page.goto(base + "/unit/activities")
    await expect(page.get_by_role("link", name="果树修剪技术田间培训")).to_be_visible(timeout=WAIT_MS)
    await pages.check(page, "activities")
    await page.goto(base + "/unit/notifications")
    await pages.check(page, "notifications")


async def running_activity(client: httpx.AsyncClient, fleet: Fleet, world: dict[str, Any]) -> tuple[str, str]:
    """An activity starting in ten minutes of programme time (so check-in is open), and 张科普's account."""
    r = await send(client, "POST", "/auth/signin", json={"username": CITY_ADMIN[0], "password": CITY_ADMIN[1]})
    admin = {"Authorization": f"Bearer {ok(r)['access_token']}"}
    now = fleet.clock.now().replace(microsecond=0)
    body = {
        "title": "科技助力社区健康讲座",
        "description": "面向社区居民的健康科普讲座与义诊咨询",
        "unit_id": world["city"]["id"],
        "line_of_work": "community_school",
        "themes": ["poverty_health"],
        "target_groups": ["社区居民"],
        "place": "长安区某社区活动中心",
        "county": "长安区",
        "starts_at": (now + timedelta(minutes=10)).isoformat(),
        "ends_at": (now + timedelta(hours=2, minutes=10)).isoformat(),
        "capacity": 1,
        "signup_opens_at": (now - timedelta(hours=3)).isoformat(),
        "signup_closes_at": (now + timedelta(minutes=5)).isoformat(),
    }
    activity = ok(await send(client, "POST", "/activities", headers=admin, json=body), 201)
    ok(await send(client, "POST", f"/activities/{activity['id']}/publish", headers=admin))
    code = ok(await send(client, "GET", f"/activities/{activity['id']}/checkin-code", headers=admin))["code"]
    found = ok(
        await send(
            client, "GET", "/volunteers", headers=admin, params={"unit_id": world["city"]["id"], "name": "张科普"}
        )
    )["items"][0]

    async def make_account() -> Any:
        account = {"username": VOLUNTEER[0], "password": VOLUNTEER[1], "role": "volunteer", "volunteer_id": found["id"]}
        r = await send(client, "POST", "/accounts", headers=admin, json=account)
        return r.status_code == 201

    await eventually(functools.partial(make_account), timeout_s=30, interval_s=0.3)
    return activity["id"], code


async def volunteer(phone: BrowserContext, admin_page: Page, base: str, pages: Pages, aid: str, code: str) -> None:
    page = await phone.new_page()
    await sign_in(page, base, VOLUNTEER)
    await expect(page).to_have_url(re.compile(r"/me$"))
    await expect(page.get_by_role("link", name=re.compile("科技助力社区健康讲座"))).to_be_visible(timeout=WAIT_MS)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await pages.check(page, "volunteer-activities")

    await page.get_by_role("link", name=re.compile("科技助力社区健康讲座")).click()
    await page.wait_for_url(re.compile(f"/me/activities/{aid}"))

    async def signed_up() -> bool:
        # the activities service learns of the imported volunteers from the registry's events
        await page.get_by_role("button", name=re.compile("我要报名|加入候补")).click()
        status = page.get_by_role("status")
        await expect(status.or_(page.get_by_role("alert"))).to_be_visible(timeout=WAIT_MS)
        return await status.count() > 0

    await eventually(signed_up, timeout_s=30, interval_s=1)
    await expect(page.locator("main")).to_contain_text("我的报名：报名成功", timeout=WAIT_MS)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await pages.check(page, "volunteer-signed-up")

    # the QR code carries this page's address with the code: scanning it is opening that address
    await page.goto(f"{base}/me/activities/{aid}?code={code}")
    await expect(page.locator("#checkin-code")).to_have_value(code, timeout=WAIT_MS)
    await page.get_by_role("button", name="签到", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("签到成功", timeout=WAIT_MS)
    await pages.check(page, "volunteer-checked-in")

    # the unit's admin starts and completes the activity in the console
    await admin_page.goto(f"{base}/unit/activities/{aid}")
    await admin_page.get_by_role("button", name="活动开始").click()
    await expect(admin_page.locator("h1")).to_contain_text("进行中", timeout=WAIT_MS)
    await admin_page.get_by_role("button", name="活动结束并汇总时长").click()
    await expect(admin_page.locator("h1")).to_contain_text("已结束", timeout=WAIT_MS)
    await admin_page.get_by_role("tab", name=re.compile("签到与时长")).click()
    await expect(admin_page.get_by_role("tabpanel")).to_contain_text("张科普")
    await pages.check(admin_page, "activity-completed")

    async def hours_shown() -> bool:
        await page.goto(base + "/me/hours")
        await page.wait_for_load_state("networkidle")
        return await page.get_by_test_id("my-hours").count() > 0

    await eventually(hours_shown, timeout_s=30, interval_s=1)
    assert float(await page.get_by_test_id("my-hours").inner_text()) > 0
    async with page.expect_download() as info:
        await page.get_by_role("button", name=re.compile("下载志愿服务记录证明")).click()
    assert (await (await info.value).path()).read_bytes().startswith(b"%PDF")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await pages.check(page, "volunteer-hours")
    await change_password(page, base, pages)


async def change_password(page: Page, base: str, pages: Pages) -> None:
    """The volunteer changes its password: every session ends, and the new password signs in."""
    await page.goto(base + "/password")
    await page.locator("#pw-old").fill("not-my-password")
    await page.locator("#pw-new").fill("volunteer-pass-2")
    await page.locator("#pw-again").fill("volunteer-pass-2")
    await page.get_by_role("button", name="确认修改").click()
    old_item = page.locator(".el-form-item").filter(has=page.locator("#pw-old"))
    await expect(old_item.locator(".el-form-item__error")).to_contain_text("原密码不正确", timeout=WAIT_MS)
    await pages.check(page, "password-refused")
    await page.locator("#pw-old").fill(VOLUNTEER[1])
    await page.get_by_role("button", name="确认修改").click()
    await expect(page.get_by_role("status")).to_contain_text("密码已修改", timeout=WAIT_MS)
    await page.wait_for_url(re.compile(r"/login"), timeout=WAIT_MS)
    await sign_in(page, base, (VOLUNTEER[0], "volunteer-pass-2"))
    await expect(page).to_have_url(re.compile(r"/me$"))
