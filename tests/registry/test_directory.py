"""The volunteer directory's own rules, without I/O: what a listing finds, and writes during the start-up scan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from services.registry.directory import Query, VolunteerDirectory


def vol(
    vid: str, *units: str, name: str = "张三", field: str = "作物栽培", title: str = "副教授", skills: Any = ()
) -> Any:
    return {
        "_id": vid,
        "scope_units": list(units),
        "name": name,
        "professional_field": field,
        "title": title,
        "skills": list(skills),
    }


def test_a_listing_is_every_match_in_id_order() -> None:
    d = VolunteerDirectory()
    d.put(vol("HB3", "corps", "sjz", "county", name="李四"))
    d.put(vol("HB1", "corps", "sjz", skills=["果树修剪"]))
    d.put(vol("HB2", "corps", "ts", field="临床医学", title="教授"))
    assert d.search(Query()) == ["HB1", "HB2", "HB3"]
    assert d.search(Query(units=("sjz",))) == ["HB1", "HB3"]
    assert d.search(Query(units=("corps", "county"))) == ["HB3"]
    assert d.search(Query(units=("nowhere",))) == []
    assert d.search(Query(name="李")) == ["HB3"]
    assert d.search(Query(professional_field="医学")) == ["HB2"], "a part of the field matches"
    assert d.search(Query(title="副教授")) == ["HB1", "HB3"]
    assert d.search(Query(skill="果树修剪")) == ["HB1"]
    assert d.search(Query(skill="果树")) == [], "a skill matches whole"
    assert d.search(Query(units=("sjz",), name="张")) == ["HB1"]


def test_a_write_replaces_the_card_and_a_removal_forgets_it() -> None:
    d = VolunteerDirectory()
    d.put(vol("HB1", "corps", "sjz", "county"))
    d.put(vol("HB1", "corps", "ts"))  # left the county team, joined 唐山
    assert d.search(Query(units=("county",))) == []
    assert d.search(Query(units=("sjz",))) == []
    assert d.search(Query(units=("ts",))) == ["HB1"]
    d.put(vol("HB2", "corps", "ts", name=None))  # type: ignore[arg-type]  # a missing field matches no text
    assert d.search(Query(name="张")) == ["HB1"]
    d.remove(["HB1", "HB-never"])
    assert d.search(Query(units=("ts",))) == ["HB2"]
    assert len(d) == 1


class ScanOf:
    """A collection whose scan returns ``docs`` and lets the test write between two documents of it."""

    def __init__(self, docs: list[Any], meanwhile: Callable[[int], None], fail_at: int | None = None) -> None:
        self.docs, self.meanwhile, self.fail_at = docs, meanwhile, fail_at

    def find(self, *_: Any, **__: Any) -> AsyncIterator[Any]:
        async def scan() -> AsyncIterator[Any]:
            for i, doc in enumerate(self.docs):
                if i == self.fail_at:
                    raise ConnectionError("the database went away")
                self.meanwhile(i)
                yield doc

        return scan()


async def test_writes_during_the_start_up_scan_win_over_what_it_read() -> None:
    d = VolunteerDirectory()
    stale = [vol("HB1", "corps", "sjz"), vol("HB2", "corps", "sjz"), vol("HB3", "corps", "sjz")]

    def meanwhile(i: int) -> None:
        if i == 0:
            d.put(vol("HB2", "corps", "ts"))  # HB2 moves to 唐山 before the scan reaches it
            d.remove(["HB3"])  # and HB3's registration is taken back
        if i == 2:
            d.put(vol("HB4", "corps", "sjz"))  # a new registration the scan never sees

    assert await d.load(ScanOf(stale, meanwhile)) == 3  # type: ignore[arg-type]
    assert d.search(Query(units=("sjz",))) == ["HB1", "HB4"]
    assert d.search(Query(units=("ts",))) == ["HB2"]
    # after the scan a write is simply applied
    d.put(vol("HB1", "corps", "ts"))
    assert d.search(Query(units=("ts",))) == ["HB1", "HB2"]


async def test_a_scan_that_is_the_whole_truth_drops_the_cards_it_did_not_meet() -> None:
    d = VolunteerDirectory()
    d.put(vol("HB1", "corps"))
    d.put(vol("HB2", "corps"))  # from a stored card; the volunteer itself is gone

    def meanwhile(i: int) -> None:
        d.put(vol("HB9", "corps"))  # registered while the scan runs: not met, but kept

    assert await d.load(ScanOf([vol("HB1", "corps", "sjz")], meanwhile), prune=True) == 1  # type: ignore[arg-type]
    assert d.search(Query()) == ["HB1", "HB9"]
    assert d.search(Query(units=("sjz",))) == ["HB1"]
