"""``python -m services.registry.demo``: seed a running platform with the corps, the 13 city detachments and
雄安新区, and sample units and volunteers of every kind (idempotent: run it again and nothing is duplicated).

Talks to the registry at ``STVS_REGISTRY_URL`` (default http://127.0.0.1:8001) as the province office, with an
identity signed by ``STVS_INTERNAL_TOKEN`` (the development default when unset). Sample people are fictitious;
their ID-card numbers are made up with valid check digits.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from services.registry.domain.fields import id_check_char
from shared.identity import Identity, SignedIdentity, acting_as
from shared.programme import CITY_LEVEL_AREAS
from shared.settings import DEV_SECRET

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
FIELDS = [
    ("作物栽培", "高级农艺师", "副高级", ["小麦高产栽培", "病虫害防治"], "助力乡村振兴"),
    ("临床医学", "主任医师", "正高级", ["健康科普", "慢病管理"], "进社区进学校"),
    ("机械工程", "高级工程师", "副高级", ["设备维护", "技术咨询"], "进企业进园区"),
    ("中学物理", "一级教师", "中级", ["科学实验", "青少年科普"], "进社区进学校"),
    ("畜牧兽医", "兽医师", "中级", ["疫病防控", "养殖技术"], "助力乡村振兴"),
]


def demo_id_number(seq: int, *, male: bool) -> str:
    """A made-up but valid ID-card number (石家庄 area code), distinct per ``seq``."""
    birth = date(1965, 1, 1) + timedelta(days=(seq * 37) % 12_000)
    order = (seq % 450) * 2 + (1 if male else 0)
    first17 = f"130102{birth:%Y%m%d}{order:03d}"
    return first17 + id_check_char(first17)


def city_leaders(short: str) -> list[dict[str, Any]]:
    return [
        {"name": f"{short[:1]}支队", "role": "支队长", "mobile": "13900000001"},
        {"name": "赵副甲", "role": "副支队长"},
        {"name": "钱副乙", "role": "副支队长"},
        {"name": "孙副丙", "role": "副支队长"},
        {"name": "李秘书", "role": "秘书长"},
    ]


@dataclass
class Seeded:
    units: dict[str, str] = field(default_factory=dict)  # name -> id
    created_units: int = 0
    created_volunteers: int = 0
    existing: int = 0


class Seeder:
    def __init__(self, client: httpx.AsyncClient, sign: Callable[[], dict[str, str]]) -> None:
        self.client = client
        self.sign = sign
        self.out = Seeded()

    async def unit(self, body: dict[str, Any]) -> str:
        r = await self.client.post("/units", json=body, headers=self.sign())
        if r.status_code == 201:
            self.out.created_units += 1
            unit: dict[str, Any] = r.json()
        elif r.status_code == 409:
            self.out.existing += 1
            name = body.get("name") or r.json().get("detail", "")
            if not body.get("name"):
                params = {"kind": body["kind"], "base": body.get("base", "")}
                if body.get("parent_id"):
                    params["parent_id"] = body["parent_id"]
                name = (await self.client.get("/units/suggest-name", params=params, headers=self.sign())).json()["name"]
            found = await self.client.get("/units", params={"name": name}, headers=self.sign())
            items = found.json()["items"]
            if not items:
                raise RuntimeError(f"cannot register or find unit {name}: {r.text}")
            unit = items[0]
        else:
            raise RuntimeError(f"registering {body.get('name') or body.get('base')} failed: {r.status_code} {r.text}")
        self.out.units[unit["name"]] = unit["id"]
        return str(unit["id"])

    async def volunteers(self, unit_id: str, start: int, count: int, employer: str) -> None:
        for seq in range(start, start + count):
            male = seq % 3 != 0
            field_, title, level, skills, area = FIELDS[seq % len(FIELDS)]
            body = {
                "name": SURNAMES[seq % len(SURNAMES)] + GIVEN[(seq * 7) % len(GIVEN)],
                "gender": "男" if male else "女",
                "id_number": demo_id_number(seq, male=male),
                "mobile": f"1380000{seq:04d}",
                "email": f"volunteer{seq}@example.com",
                "employer": employer,
                "title": title,
                "title_level": level,
                "education": "大学本科" if seq % 2 else "硕士研究生",
                "professional_field": field_,
                "political_status": "中共党员" if seq % 2 else "群众",
                "skills": skills,
                "service_areas": [area],
                "unit_id": unit_id,
            }
            r = await self.client.post("/volunteers", json=body, headers=self.sign())
            if r.status_code == 201:
                self.out.created_volunteers += 1
            elif r.status_code == 409:
                self.out.existing += 1
            else:
                raise RuntimeError(f"registering volunteer {seq} failed: {r.status_code} {r.text}")


CORPS: dict[str, Any] = {
    "kind": "province_corps",
    "leaders": [{"name": "张总队", "role": "总队长"}, {"name": "王副总", "role": "副总队长"}],
    "phone": "0311-85012345",
    "address": "石家庄市桥西区",
    "contact": {
        "name": "刘联络",
        "post": "总队工作办公室主任",
        "office_phone": "0311-85012345",
        "mobile": "13700000001",
        "email": "office@stvs.example.com",
    },
}

# (key, parent key, body): parents named by key ("corps", a city code, or an earlier key)
UNITS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "society",
        "corps",
        {
            "kind": "society_detachment",
            "base": "河北省农学会",
            "leaders": [{"name": "周会长", "role": "支队长"}, {"name": "吴秘书", "role": "副支队长"}],
            "phone": "0311-86000001",
        },
    ),
    (
        "university",
        "corps",
        {
            "kind": "university_detachment",
            "base": "河北农业大学",
            "city": "baoding",
            "leaders": [{"name": "郑校长", "role": "支队长"}],
            "phone": "0312-7520000",
        },
    ),
    (
        "enterprise",
        "corps",
        {
            "kind": "enterprise_detachment",
            "base": "河北科技企业集团",
            "leaders": [{"name": "冯总", "role": "支队长"}],
            "phone": "0311-86000002",
        },
    ),
    (
        "park",
        "shijiazhuang",
        {
            "kind": "enterprise_detachment",
            "base": "石家庄高新技术产业开发区",
            "leaders": [{"name": "陈主任", "role": "支队长"}],
            "phone": "0311-86000003",
        },
    ),
    (
        "county",
        "shijiazhuang",
        {
            "kind": "county_team",
            "base": "正定县",
            "leaders": [
                {"name": "褚队长", "role": "队长"},
                {"name": "卫副一", "role": "副队长"},
                {"name": "蒋副二", "role": "副队长"},
            ],
            "phone": "0311-88000001",
            "declared_members": 50,
        },
    ),
    (
        "sub_team",
        "university",
        {
            "kind": "sub_team",
            "base": "农学院",
            "leaders": [{"name": "沈老师", "role": "分队负责人"}],
            "phone": "0312-7520001",
        },
    ),
)

# (unit key, first sequence number, how many, employer)
VOLUNTEER_BATCHES: tuple[tuple[str, int, int, str], ...] = (
    ("county", 1, 12, "正定县农业农村局"),
    ("university", 101, 8, "河北农业大学"),
    ("sub_team", 201, 4, "河北农业大学农学院"),
    ("society", 301, 5, "河北省农林科学院"),
    ("park", 401, 4, "石家庄高新区某科技公司"),
    ("tangshan", 501, 4, "唐山市人民医院"),
)


async def seed(client: httpx.AsyncClient, sign: Callable[[], dict[str, str]]) -> Seeded:
    s = Seeder(client, sign)
    ids = {"corps": await s.unit(CORPS)}
    for i, city in enumerate(CITY_LEVEL_AREAS):
        ids[city.code] = await s.unit(
            {
                "kind": "city_detachment",
                "base": city.name,
                "parent_id": ids["corps"],
                "city": city.code,
                "leaders": city_leaders(city.short_name),
                "phone": f"0311-8{i + 1:03d}0000",
                "declared_members": 300,
            }
        )
    for key, parent, body in UNITS:
        ids[key] = await s.unit({**body, "parent_id": ids[parent]})
    for key, start, count, employer in VOLUNTEER_BATCHES:
        await s.volunteers(ids[key], start, count, employer)
    return s.out


def main() -> None:
    url = os.environ.get("STVS_REGISTRY_URL", "http://127.0.0.1:8001")
    secret = os.environ.get("STVS_INTERNAL_TOKEN", DEV_SECRET)

    def sign() -> dict[str, str]:
        identity = Identity(subject="demo:province-office", role="province_admin", display_name="省科协（演示）")
        return acting_as(identity)

    async def run() -> Seeded:
        async with httpx.AsyncClient(base_url=url, timeout=30, auth=SignedIdentity(secret, "registry")) as client:
            return await seed(client, sign)

    out = asyncio.run(run())
    print(
        f"registry demo data at {url}: {len(out.units)} units ({out.created_units} new), "
        f"{out.created_volunteers} new volunteers, {out.existing} already there"
    )


if __name__ == "__main__":
    main()
