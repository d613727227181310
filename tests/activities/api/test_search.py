"""Finding activities through the activities API on the real Kafka and MongoDB-protocol server: every condition,
the sorts, paging, a volunteer's activities open to them first (and marked so), and every query read through an
index (the server's own query planner, ``explain``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson.codec_options import CodecOptions, DatetimeConversion

from services.activities.adapters.expressions import activities_filter
from services.activities.adapters.mongo import ACTIVITIES, ACTIVITY_TERMS, MIGRATIONS, SIGNUPS, signup_id
from services.activities.usecases.ports import ActivityQuery
from services.activities.usecases.repair import backfill_terms
from shared.unit_paths import SCOPE_UNITS
from tests.activities.conftest import Running, draft

NOW = datetime.now(UTC)
TREE = {  # unit → (ancestors, city)
    "s-corps": ([], None),
    "s-sjz": (["s-corps"], "shijiazhuang"),
    "s-yuhua": (["s-corps", "s-sjz"], "shijiazhuang"),
    "s-school": (["s-corps", "s-sjz", "s-yuhua"], "shijiazhuang"),
    "s-ts": (["s-corps"], "tangshan"),
}


async def seed_tree(running: Running) -> None:
    copy = running.store.db[SCOPE_UNITS]
    for unit_id, (ancestors, city) in TREE.items():
        fields = {"ancestors": ancestors, "city": city, "version": 1}
        await copy.update_one({"_id": unit_id}, {"$set": fields}, upsert=True)


async def add(running: Running, title: str, unit_id: str, days: int, *, publish: bool = True, **more: Any) -> str:
    starts = NOW + timedelta(days=days)
    more.setdefault("skills_wanted", [])
    body = draft(title=title, unit_id=unit_id, starts=starts, **more)
    created = await running.client.post("/activities", json=body, headers=running.province())
    assert created.status_code == 201, created.text
    activity_id: str = created.json()["id"]
    if publish:
        published = await running.client.post(f"/activities/{activity_id}/publish", headers=running.province())
        assert published.status_code == 200, published.text
    return activity_id


async def listing(running: Running, headers: Mapping[str, str], **params: Any) -> dict[str, Any]:
    got = await running.client.get("/activities", params=params, headers=dict(headers))
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def titles(page: Mapping[str, Any]) -> list[str]:
    return [a["title"] for a in page["items"]]


@pytest.fixture(scope="module")
async def seeded(running: Running) -> Running:
    await seed_tree(running)
    await running.add_volunteer("s-v", units=("s-yuhua",))
    await add(running, "唐山青少年科普讲座", "s-ts", 1, description="航天知识与应急常识", place="路北区图书馆")
    await add(running, "分队社区急救演练", "s-school", 2, skills_wanted=["急救"], place="裕华区实验学校")
    await add(
        running,
        "企业技术诊断",
        "s-sjz",
        3,
        line_of_work="enterprise_park",
        themes=["enterprise_innovation"],
        description="为园区企业解决工艺难题",
        skills_wanted=["机械设计"],
    )
    taken = await add(running, "总队科技周启动仪式", "s-corps", 4, themes=["national_key_event"])
    assert (await running.client.post(f"/activities/{taken}/signups", headers=running.volunteer("s-v"))).is_success
    await add(running, "裕华区农村妇女健康讲座", "s-yuhua", 5, themes=["women_youth"], place="东苑街道")
    await add(running, "尚未开始报名的讲座", "s-yuhua", 6, signup_opens_at=(NOW + timedelta(days=1)).isoformat())
    await add(running, "裕华区草稿", "s-yuhua", 7, publish=False)
    return running


async def test_every_condition_of_a_search(seeded: Running) -> None:
    province = seeded.province()
    assert titles(await listing(seeded, province, q="讲座")) == [
        "唐山青少年科普讲座",
        "裕华区农村妇女健康讲座",
        "尚未开始报名的讲座",
    ]
    assert titles(await listing(seeded, province, q="图书馆")) == ["唐山青少年科普讲座"]  # the place
    assert titles(await listing(seeded, province, q="工艺难题")) == ["企业技术诊断"]  # the description
    assert titles(await listing(seeded, province, q="讲座 妇女")) == ["裕华区农村妇女健康讲座"]  # every word
    assert titles(await listing(seeded, province, q="不存在的词")) == []
    assert titles(await listing(seeded, province, under="s-yuhua", status="published")) == [
        "分队社区急救演练",
        "裕华区农村妇女健康讲座",
        "尚未开始报名的讲座",
    ]
    assert titles(await listing(seeded, province, city="tangshan")) == ["唐山青少年科普讲座"]
    assert len(titles(await listing(seeded, province, city="shijiazhuang"))) == 5  # the draft included
    assert titles(await listing(seeded, province, skill="急救")) == ["分队社区急救演练"]
    assert titles(await listing(seeded, province, theme="national_key_event")) == ["总队科技周启动仪式"]
    assert titles(await listing(seeded, province, line_of_work="enterprise_park")) == ["企业技术诊断"]
    window = {"from": (NOW + timedelta(days=2)).isoformat(), "to": (NOW + timedelta(days=4)).isoformat()}
    assert titles(await listing(seeded, province, **window)) == ["分队社区急救演练", "企业技术诊断"]
    newest = await listing(seeded, province, status="published", sort="published")
    assert titles(newest)[0] == "尚未开始报名的讲座" and titles(newest)[-1] == "唐山青少年科普讲座"
    page = await listing(seeded, province, status="published", limit=2, offset=2)
    assert (page["total"], titles(page)) == (6, ["企业技术诊断", "总队科技周启动仪式"])
    assert "open_to_me" not in page["items"][0]  # only a volunteer's listing says so


async def test_a_volunteer_sees_what_is_open_to_them_first(seeded: Running) -> None:
    mine = seeded.volunteer("s-v")
    whole = await listing(seeded, mine)
    assert titles(whole) == [
        "企业技术诊断",  # the city detachment above their county team
        "裕华区农村妇女健康讲座",  # their own county team
        "唐山青少年科普讲座",  # another city: not theirs
        "分队社区急救演练",  # a sub-team below theirs: not theirs
        "总队科技周启动仪式",  # already signed up
        "尚未开始报名的讲座",  # sign-up not open yet
    ]
    assert [a["open_to_me"] for a in whole["items"]] == [True, True, False, False, False, False]
    assert whole["total"] == 6
    paged = [t for offset in range(0, 6, 4) for t in titles(await listing(seeded, mine, limit=4, offset=offset))]
    assert paged == titles(whole)
    found = await listing(seeded, mine, q="讲座")
    assert titles(found) == ["裕华区农村妇女健康讲座", "唐山青少年科普讲座", "尚未开始报名的讲座"]
    plain = await listing(seeded, mine, open_first="false")
    assert titles(plain)[0] == "唐山青少年科普讲座" and "open_to_me" not in plain["items"][0]


async def test_a_bad_city_or_sort_is_refused_in_chinese(seeded: Running) -> None:
    for params in ({"city": "beijing"}, {"sort": "random"}):
        got = await seeded.client.get("/activities", params=params, headers=seeded.volunteer("s-v"))
        assert got.status_code == 422, got.text
        assert got.json()["code"] == "validation" and "校验" in got.json()["detail"]


async def test_older_activities_get_their_terms_once(seeded: Running) -> None:
    db = seeded.store.db
    await db[ACTIVITY_TERMS].delete_many({})  # as before activities had terms
    await db[MIGRATIONS].delete_many({})
    province = seeded.province()
    assert titles(await listing(seeded, province, q="图书馆")) == []
    assert await backfill_terms(seeded.store) == 7
    assert titles(await listing(seeded, province, q="图书馆")) == ["唐山青少年科普讲座"]
    assert await backfill_terms(seeded.store) == 0


def plan_stages(plan: Any, out: list[str]) -> list[str]:
    if isinstance(plan, Mapping):
        if "stage" in plan:
            out.append(str(plan["stage"]))
        for value in plan.values():
            plan_stages(value, out)
    elif isinstance(plan, list):
        for value in plan:
            plan_stages(value, out)
    return out


async def test_every_search_reads_an_index(seeded: Running) -> None:
    """The plan the server reports (mongod's planning rules) for each query a search makes: an index is read, the
    collection is never scanned (its empty listing walks the index of its order)."""
    db = seeded.store.db
    codec: CodecOptions[dict[str, Any]] = CodecOptions(
        tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO
    )
    units = frozenset({"s-yuhua", "s-sjz"})
    queries = [
        ActivityQuery(),
        ActivityQuery(status="published"),
        ActivityQuery(ids_in=frozenset({"a", "b"}), words=("科普讲座",), status="published"),
        ActivityQuery(units_in=units, status="published", sort=("published_at", -1)),
        ActivityQuery(drafts_of=units),
        ActivityQuery(drafts_of=frozenset(), line_of_work="community_school"),
        ActivityQuery(skill="急救", theme="poverty_health", status="published"),
        ActivityQuery(theme="women_youth"),
        ActivityQuery(starts_from=NOW, starts_before=NOW + timedelta(days=3)),
        ActivityQuery(status="published", ends_after=NOW),
        ActivityQuery(units_in=units, status="published", signup_open_at=NOW, exclude=frozenset({"x"})),
    ]
    for query in queries:
        filter_ = activities_filter(query)
        sort = {query.sort[0]: query.sort[1], "_id": query.sort[1]}
        for command in ({"find": ACTIVITIES, "filter": filter_, "sort": sort}, {"count": ACTIVITIES, "query": filter_}):
            explained = await db.command({"explain": command, "verbosity": "queryPlanner"}, codec_options=codec)
            stages = plan_stages(explained["queryPlanner"]["winningPlan"], [])
            assert "COLLSCAN" not in stages, (command, stages)
            assert filter_ == {} or any(s in ("IXSCAN", "COUNT_SCAN") for s in stages), (command, stages)
    others: list[tuple[str, dict[str, Any]]] = [
        (ACTIVITY_TERMS, {"terms": {"$all": ["讲座", "妇女"]}}),
        (SCOPE_UNITS, {"$or": [{"_id": "s-sjz"}, {"ancestors": "s-sjz"}]}),
        (SCOPE_UNITS, {"city": "shijiazhuang"}),
        (ACTIVITIES, {"_id": {"$gt": "a"}}),  # the once-only pass writing the terms of older activities
        (SIGNUPS, {"_id": {"$in": [signup_id("a", "s-v"), signup_id("b", "s-v")]}}),
    ]
    for collection, other in others:
        explained = await db.command({"explain": {"find": collection, "filter": other}, "verbosity": "queryPlanner"})
        assert "COLLSCAN" not in plan_stages(explained["queryPlanner"]["winningPlan"], []), (collection, other)
