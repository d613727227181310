"""The listing rules without I/O: the indexed filter finds exactly what the API promises (a part of the name, title
or field; a whole skill; the unit and everything below it), whatever the texts."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.registry.adapters.search import VolunteerQuery, vocabulary_entries, vocabulary_filter
from services.registry.domain.records import TERM_CHARS, name_terms, search_fields


def holds(doc: dict[str, Any], condition: dict[str, Any]) -> bool:
    """MongoDB's meaning of the few operators the filter uses ($and, equality on a value or an array, $in,
    $regex), for the tests."""
    if "$and" in condition:
        return all(holds(doc, c) for c in condition["$and"])
    if len(condition) > 1:  # several fields: all of them
        return all(holds(doc, {k: v}) for k, v in condition.items())
    ((field, want),) = condition.items()
    have = doc.get(field)
    values = have if isinstance(have, list) else [have]
    if isinstance(want, dict) and "$in" in want:
        return any(v in want["$in"] for v in values)
    if isinstance(want, dict) and "$regex" in want:
        return any(isinstance(v, str) and re.search(want["$regex"], v) is not None for v in values)
    return want in values


def find(docs: list[dict[str, Any]], query: VolunteerQuery) -> list[str]:
    """The filter as the server runs it: the vocabulary first (a part of the title / field), then the volunteers."""
    vocabulary = vocabulary_entries(docs)
    found = {
        field: [e["value"] for e in vocabulary if holds(e, vocabulary_filter(field, text))]
        for field, text in query.vocabulary_asks.items()
    }
    condition = query.filter(found)
    return sorted(d["_id"] for d in docs if not condition or holds(d, condition))


def volunteer(vid: str, *units: str, name: str, field: str, title: str, skills: list[str]) -> dict[str, Any]:
    doc = {"_id": vid, "scope_units": list(units), "name": name, "professional_field": field, "title": title}
    return {**doc, "skills": skills, **search_fields(doc)}


PEOPLE = [
    volunteer("HB3", "corps", "sjz", "county", name="李四", field="作物栽培", title="副教授", skills=[]),
    volunteer("HB1", "corps", "sjz", name="张三", field="作物栽培", title="副教授", skills=["果树修剪"]),
    volunteer("HB2", "corps", "ts", name="欧阳娜娜", field="临床医学", title="教授", skills=["急救"]),
]


def test_a_listing_is_every_match_in_platform_number_order() -> None:
    assert find(PEOPLE, VolunteerQuery.of()) == ["HB1", "HB2", "HB3"]
    assert find(PEOPLE, VolunteerQuery.of(unit="sjz")) == ["HB1", "HB3"]
    assert find(PEOPLE, VolunteerQuery.of(unit="county", scope_unit="corps")) == ["HB3"]
    assert find(PEOPLE, VolunteerQuery.of(unit="nowhere")) == []
    assert find(PEOPLE, VolunteerQuery.of(name="李")) == ["HB3"]
    assert find(PEOPLE, VolunteerQuery.of(name="阳娜娜")) == ["HB2"], "a part of the name, not its start"
    assert find(PEOPLE, VolunteerQuery.of(name="欧阳娜娜")) == ["HB2"], "longer than a term: checked whole"
    assert find(PEOPLE, VolunteerQuery.of(name="欧阳娜娜娜")) == []
    assert find(PEOPLE, VolunteerQuery.of(professional_field="医学")) == ["HB2"], "a part of the field matches"
    assert find(PEOPLE, VolunteerQuery.of(title="教授")) == ["HB1", "HB2", "HB3"]
    assert find(PEOPLE, VolunteerQuery.of(title="副教授")) == ["HB1", "HB3"]
    assert find(PEOPLE, VolunteerQuery.of(title="研究员")) == []
    assert find(PEOPLE, VolunteerQuery.of(skill="果树修剪")) == ["HB1"]
    assert find(PEOPLE, VolunteerQuery.of(skill="果树")) == [], "a skill matches whole"
    assert find(PEOPLE, VolunteerQuery.of(unit="sjz", name=" 张 ")) == ["HB1"], "texts are trimmed"


def test_the_filter_leads_with_the_narrowest_indexed_condition() -> None:
    query = VolunteerQuery.of(unit="sjz", name="张三丰收", skill="急救", title="教授")
    conditions = query.filter({"title": ["教授", "副教授"]})["$and"]
    assert conditions[0] == {"name_terms": "张三丰"[:TERM_CHARS]}
    assert conditions[1] == {"name": {"$regex": "张三丰收"}}
    assert conditions[2:] == [{"skills": "急救"}, {"scope_units": "sjz"}, {"title": {"$in": ["副教授", "教授"]}}]
    assert VolunteerQuery.of(name="a.b").filter() == {"name_terms": "a.b"}
    assert VolunteerQuery.of(name="a.b*c").filter()["$and"][1] == {"name": {"$regex": re.escape("a.b*c")}}


def test_name_terms_are_every_short_part_once() -> None:
    assert name_terms("张三丰") == sorted({"张", "三", "丰", "张三", "三丰", "张三丰"})
    assert name_terms("aaaa") == ["a", "aa", "aaa"]
    assert name_terms(None) == [] and name_terms("") == []
    assert max(len(t) for t in name_terms("欧阳娜娜娜娜")) == TERM_CHARS


text = st.text(alphabet="张三李四欧阳a.*(", min_size=0, max_size=6)


@given(
    people=st.lists(
        st.tuples(text, text, text, st.lists(st.sampled_from(["果树修剪", "急救", "果树"]), max_size=2)),
        max_size=8,
    ),
    name=text,
    title=text,
    field=text,
    skill=st.sampled_from(["", "果树修剪", "果树"]),
)
def test_the_filter_finds_exactly_what_the_rule_says(
    people: list[tuple[str, str, str, list[str]]], name: str, title: str, field: str, skill: str
) -> None:
    docs = [
        volunteer(f"HB{i:03d}", "corps", name=n, field=f, title=t, skills=s) for i, (n, t, f, s) in enumerate(people)
    ]
    query = VolunteerQuery.of(unit="corps", name=name, title=title, professional_field=field, skill=skill)
    assert find(docs, query) == sorted(d["_id"] for d in docs if query.matches(d))
