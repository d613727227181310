"""Finding activities on the in-memory port: keyword, a unit and everything below it, a city, skill, theme, line of
work and dates, the three sorts, paging, and a volunteer's activities open to them first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.activities.domain import ActivitySort
from services.activities.usecases import activities, search, signups
from services.activities.usecases.batches import SignUpBatches
from services.activities.usecases.repair import repair
from shared.identity import Identity
from tests.activities.usecases.conftest import PROVINCE, STARTS, T0, at, details, volunteer
from tests.activities.usecases.memory import MemoryStorage

# The province corps; two city detachments; a county team under each; a sub-team under the first county team.
TREE = {
    "corps": [],
    "sjz": ["corps"],
    "ts": ["corps"],
    "sjz-yuhua": ["corps", "sjz"],
    "ts-lubei": ["corps", "ts"],
    "yuhua-school": ["corps", "sjz", "sjz-yuhua"],
}
CITIES = {"sjz": "shijiazhuang", "sjz-yuhua": "shijiazhuang", "yuhua-school": "shijiazhuang"}
CITIES |= {"ts": "tangshan", "ts-lubei": "tangshan"}


@pytest.fixture
def tree(storage: MemoryStorage) -> MemoryStorage:
    storage.units = {u: list(a) for u, a in TREE.items()}
    storage.cities = dict(CITIES)
    return storage


async def add(
    storage: MemoryStorage, title: str, unit_id: str, days: int = 1, publish: bool = True, **more: Any
) -> str:
    """An activity of ``unit_id`` starting ``days`` after tomorrow's start, published unless said otherwise."""
    starts = STARTS + timedelta(days=days)
    more.setdefault("signup_closes_at", starts)
    data = details(title=title, unit_id=unit_id, starts_at=starts, ends_at=starts + timedelta(hours=3), **more)
    record = await activities.create(storage, data, PROVINCE)
    if publish:
        await activities.publish(storage, record.activity.id, PROVINCE)
    return record.activity.id


async def titles(
    storage: MemoryStorage, who: Identity = PROVINCE, offset: int = 0, limit: int = 50, **ask: Any
) -> list[str]:
    found = await search.find(storage, search.Listing(**ask), who, offset, limit)
    return [r.activity.title for r in found.records]


async def test_a_keyword_finds_its_words_in_the_title_the_description_or_the_place(tree: MemoryStorage) -> None:
    await add(tree, "社区应急救护培训", "sjz", description="心肺复苏讲解", place="东苑社区服务中心")
    await add(tree, "青少年科普讲座", "ts", days=2, description="航天知识与应急常识", place="路北区图书馆")
    await add(tree, "农业技术下乡", "ts", days=3, description="果树修剪", place="滦南县")
    assert await titles(tree, keyword="应急") == ["社区应急救护培训", "青少年科普讲座"]
    assert await titles(tree, keyword="心肺复苏") == ["社区应急救护培训"]  # longer than a term: checked whole
    assert await titles(tree, keyword="图书馆") == ["青少年科普讲座"]  # the place
    assert await titles(tree, keyword="应急 图书馆") == ["青少年科普讲座"]  # every word
    assert await titles(tree, keyword="应急讲座") == []  # the words as written, not their terms apart
    assert await titles(tree, keyword="科") == ["青少年科普讲座"]  # one character


async def test_a_unit_and_everything_below_it_or_a_city(tree: MemoryStorage) -> None:
    await add(tree, "总队活动", "corps")
    await add(tree, "石家庄支队活动", "sjz", days=2)
    await add(tree, "裕华区活动", "sjz-yuhua", days=3)
    await add(tree, "裕华学校分队活动", "yuhua-school", days=4)
    await add(tree, "唐山活动", "ts-lubei", days=5)
    assert await titles(tree, under="sjz-yuhua") == ["裕华区活动", "裕华学校分队活动"]
    assert await titles(tree, under="sjz") == ["石家庄支队活动", "裕华区活动", "裕华学校分队活动"]
    assert len(await titles(tree, under="corps")) == 5
    assert await titles(tree, city="tangshan") == ["唐山活动"]
    assert await titles(tree, city="shijiazhuang", under="sjz-yuhua") == ["裕华区活动", "裕华学校分队活动"]
    assert await titles(tree, city="tangshan", under="sjz") == []  # both hold
    assert await titles(tree, city="xiongan") == []  # no unit there
    assert await titles(tree, unit_id="sjz") == ["石家庄支队活动"]  # unit_id: that unit only, as before


async def test_skill_theme_line_of_work_and_dates(tree: MemoryStorage) -> None:
    await add(tree, "急救培训", "sjz", skills_wanted=["急救", "讲解"], themes=["poverty_health"])
    await add(tree, "企业技术诊断", "sjz", days=8, line_of_work="enterprise_park", themes=["enterprise_innovation"])
    await add(tree, "乡村果树修剪", "ts", days=15, line_of_work="rural_revitalization", skills_wanted=["果树栽培"])
    assert await titles(tree, skill="急救") == ["急救培训"]
    assert await titles(tree, skill="急") == []  # a whole skill
    assert await titles(tree, theme="enterprise_innovation") == ["企业技术诊断"]
    assert await titles(tree, line_of_work="rural_revitalization") == ["乡村果树修剪"]
    week = STARTS + timedelta(days=5)
    assert await titles(tree, starts_from=week, starts_before=week + timedelta(days=7)) == ["企业技术诊断"]


async def test_sorted_by_start_by_newest_published_or_nearest(tree: MemoryStorage) -> None:
    await add(
        tree,
        "已经结束",
        "sjz",
        days=-3,
        signup_opens_at=T0 - timedelta(days=9),
        signup_closes_at=T0 - timedelta(days=3),
    )
    at(T0 + timedelta(hours=1))
    await add(tree, "后开始先发布", "sjz", days=9)
    sooner = await add(tree, "先开始后发布", "sjz", days=2, publish=False)
    at(T0 + timedelta(hours=2))
    await activities.publish(tree, sooner, PROVINCE)
    await add(tree, "草稿", "sjz", days=3, publish=False)
    assert await titles(tree, status="published") == ["已经结束", "先开始后发布", "后开始先发布"]
    newest = await titles(tree, status="published", sort=ActivitySort.PUBLISHED)
    assert newest == ["先开始后发布", "后开始先发布", "已经结束"]
    assert await titles(tree, status="published", sort=ActivitySort.NEAREST) == ["先开始后发布", "后开始先发布"]
    # Newest published first puts the drafts (never published) last.
    assert (await titles(tree, sort=ActivitySort.PUBLISHED))[-1] == "草稿"


@pytest.mark.parametrize("limit", [1, 2, 3, 10])
async def test_a_volunteer_sees_the_activities_open_to_them_first_over_every_page(
    tree: MemoryStorage, batches: SignUpBatches, limit: int
) -> None:
    await tree.apply_volunteer("v", 1, {"status": "active", "unit_ids": ["sjz-yuhua"], "display_name": "志愿者v"})
    await add(tree, "唐山：开放但不是本人单位", "ts", days=1)
    await add(tree, "下级分队：不是本人单位", "yuhua-school", days=2)
    await add(tree, "本队：尚未开始报名", "sjz-yuhua", days=3, signup_opens_at=T0 + timedelta(days=1))
    taken = await add(tree, "总队：已报名", "corps", days=4)
    await signups.sign_up(tree, batches, taken, volunteer("v"), None)
    await add(tree, "本队：可报名", "sjz-yuhua", days=5)
    await add(tree, "市支队：可报名", "sjz", days=6)
    await add(tree, "总队：可报名", "corps", days=7)
    expected = ["本队：可报名", "市支队：可报名", "总队：可报名"]
    expected += ["唐山：开放但不是本人单位", "下级分队：不是本人单位", "本队：尚未开始报名", "总队：已报名"]
    pages: list[str] = []
    opened: set[str] = set()
    for offset in range(0, 7, limit):
        found = await search.find(tree, search.Listing(), volunteer("v"), offset, limit)
        assert found.total == 7
        pages += [r.activity.title for r in found.records]
        opened |= {r.activity.title for r in found.records if r.activity.id in found.open_ids}
    assert pages == expected
    assert opened == set(expected[:3])
    # Asked not to, or as an administrator, the same activities in the order asked.
    plain = await titles(tree, volunteer("v"), open_first=False)
    assert plain[:2] == ["唐山：开放但不是本人单位", "下级分队：不是本人单位"] and len(plain) == 7
    assert (await titles(tree))[:2] == plain[:2]


async def test_open_first_keeps_to_the_search(tree: MemoryStorage) -> None:
    await tree.apply_volunteer("v", 1, {"status": "active", "unit_ids": ["sjz-yuhua"], "display_name": "志愿者v"})
    await add(tree, "急救：唐山", "ts", days=1)
    await add(tree, "急救：本队", "sjz-yuhua", days=2)
    await add(tree, "讲座：本队", "sjz-yuhua", days=3)
    found = await search.find(tree, search.Listing(keyword="急救"), volunteer("v"), 0, 10)
    assert [r.activity.title for r in found.records] == ["急救：本队", "急救：唐山"] and found.total == 2
    assert await titles(tree, volunteer("v"), keyword="急救", city="tangshan") == ["急救：唐山"]
    # A volunteer the copy does not know yet (no units), or no longer active, sees the listing in the order asked.
    assert await titles(tree, volunteer("w"), keyword="急救") == ["急救：唐山", "急救：本队"]
    await tree.apply_volunteer("v", 2, {"status": "inactive"})
    assert await titles(tree, volunteer("v"), keyword="急救") == ["急救：唐山", "急救：本队"]


async def test_drafts_are_found_only_by_those_who_manage_them(tree: MemoryStorage) -> None:
    await add(tree, "裕华草稿", "sjz-yuhua", publish=False)
    await add(tree, "唐山草稿", "ts", days=2, publish=False)
    yuhua = Identity(subject="a", role="unit_admin", unit_id="sjz-yuhua")
    city = Identity(subject="b", role="unit_admin", unit_id="sjz")
    assert await titles(tree, yuhua, keyword="草稿") == ["裕华草稿"]
    assert await titles(tree, city, keyword="草稿") == ["裕华草稿"]
    assert await titles(tree, keyword="草稿") == ["裕华草稿", "唐山草稿"]
    assert await titles(tree, volunteer("v"), keyword="草稿") == []


async def test_activities_written_before_search_are_found_after_the_sweep_once(tree: MemoryStorage) -> None:
    old = await add(tree, "社区科普讲座", "sjz")
    revised = await add(tree, "乡村讲座", "sjz", days=2)
    tree.terms.clear()  # as written before activities had terms
    assert await titles(tree, keyword="讲座") == []
    tree.terms[revised] = ["果树"]  # a revision wrote terms meanwhile: they are kept
    assert await repair(tree) == 2
    assert await titles(tree, keyword="讲座") == ["社区科普讲座"]
    assert await titles(tree, keyword="果树") == []  # the word is not in its texts (checked whole)
    assert tree.terms[revised] == ["果树"] and old in tree.terms
    assert await repair(tree) == 0  # done once
