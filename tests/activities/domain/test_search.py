"""Finding activities, the pure rules: the terms an activity is found by, a keyword's words, when sign-up is open."""

from __future__ import annotations

from datetime import timedelta

from services.activities.domain import ActivitySort, keyword_words, lookup_term, mentions, search_terms, signup_open
from services.activities.domain.search import DESCRIPTION_CHARS
from tests.activities.domain.support import T0


def test_an_activity_is_found_by_every_part_of_its_title_place_and_description() -> None:
    terms = search_terms("应急救护", "讲解心肺复苏", "东苑社区")
    for part in ("应", "应急", "救护", "心肺", "复苏", "东苑", "社区"):
        assert part in terms
    assert "护讲" not in terms  # the title and the description are separate texts
    assert terms == sorted(set(terms))


def test_latin_words_are_found_whatever_their_case_and_split_at_spaces() -> None:
    terms = search_terms("AI 科普", "Python", "石家庄")
    assert {"ai", "py", "科普"} <= set(terms)
    assert "i " not in terms and "i科" not in terms


def test_only_the_beginning_of_a_long_description_is_indexed() -> None:
    description = "甲" * DESCRIPTION_CHARS + "乙丙"
    terms = search_terms("讲座", description, "礼堂")
    assert "甲" in terms and "乙" not in terms


def test_a_keyword_is_words_each_looked_up_by_its_first_term() -> None:
    assert keyword_words("  应急救护   社区 社区 ") == ("应急救护", "社区")
    assert keyword_words(None) == () and keyword_words("   ") == ()
    assert lookup_term("应急救护") == "应急" and lookup_term("科") == "科"
    assert mentions("救护", ["社区应急救护培训"]) and not mentions("救援", ["社区应急救护培训"])
    assert mentions("ai", ["AI 科普"])


def test_sign_up_is_open_while_published_or_under_way_inside_the_window() -> None:
    opens, closes = T0 - timedelta(days=1), T0
    assert signup_open("published", opens, closes, T0 - timedelta(hours=1))
    assert signup_open("ongoing", opens, closes, T0 - timedelta(hours=1))
    assert not signup_open("published", opens, closes, closes)  # the window closes at its end
    assert not signup_open("published", opens, closes, opens - timedelta(seconds=1))
    for status in ("draft", "completed", "cancelled"):
        assert not signup_open(status, opens, closes, T0 - timedelta(hours=1))


def test_every_sort_has_a_chinese_label() -> None:
    assert [s.value for s in ActivitySort] == ["start", "published", "nearest"]
    assert all(s.label for s in ActivitySort)
