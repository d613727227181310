"""Finding activities: the keyword terms an activity carries, the words a keyword is made of, the sort orders and
which activities are open to a volunteer — pure rules, no I/O.

- **Keyword** (``q``): a part of the title, the description or the place. Every activity has its terms
  (:func:`search_terms`): each run of up to :data:`TERM_CHARS` characters of its title, its place and the first
  :data:`DESCRIPTION_CHARS` characters of its description (lower-cased, words split at white space). A keyword is
  split at white space into words, all of which must be found; a word is looked up by its first term (an indexed
  equality) and, when longer than a term, checked whole in the texts. A word further into a description than
  :data:`DESCRIPTION_CHARS` characters is not found (the terms of a 5,000-character text would weigh on every
  write of them).
- **Sort**: ``start`` (start time, earliest first), ``published`` (newest published first), ``nearest`` (the
  activities not yet over, the soonest first: those already finished are left out).
- **Open to a volunteer** (an active one): sign-up open now (published or under way, the window open), not already
  signed up (pending, confirmed or waitlisted), and organised by one of the volunteer's units or a unit above one of
  them — DOMAIN §1–2: a unit's work reaches everything below it, so a county team's member is one of the city
  detachment's and the province corps' volunteers too, never of a unit beside or below their own. A place or the
  waitlist is always left while the window is open (the waitlist has no limit), so the window decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from .values import ActivityStatus

TERM_CHARS = 2
DESCRIPTION_CHARS = 500
SIGNABLE = frozenset({ActivityStatus.PUBLISHED, ActivityStatus.ONGOING})
_SPACE = re.compile(r"\s+")


class ActivitySort(StrEnum):
    START = "start"
    PUBLISHED = "published"
    NEAREST = "nearest"

    @property
    def label(self) -> str:
        return _SORT_LABELS[self]


_SORT_LABELS = {
    ActivitySort.START: "按开始时间",
    ActivitySort.PUBLISHED: "按发布时间（最新在前）",
    ActivitySort.NEAREST: "最近开始（未结束的活动，最早开始在前）",
}


def keyword_words(keyword: str | None) -> tuple[str, ...]:
    """The words of a keyword (lower-cased, split at white space, each once, in order)."""
    words = _SPACE.split((keyword or "").strip().lower())
    return tuple(dict.fromkeys(w for w in words if w))


def word_terms(word: str) -> list[str]:
    """Every run of up to :data:`TERM_CHARS` characters of one word."""
    return [word[i:j] for i in range(len(word)) for j in range(i + 1, min(len(word), i + TERM_CHARS) + 1)]


def search_terms(title: str, description: str, place: str) -> list[str]:
    """The terms an activity is found by (sorted, each once)."""
    found: set[str] = set()
    for text in (title, description[:DESCRIPTION_CHARS], place):
        for word in keyword_words(text):
            found.update(word_terms(word))
    return sorted(found)


def lookup_term(word: str) -> str:
    """The term a word is looked up by: its first :data:`TERM_CHARS` characters."""
    return word[:TERM_CHARS]


def mentions(word: str, texts: Iterable[str]) -> bool:
    """The rule itself: the word is in one of the texts (case aside)."""
    return any(word in text.lower() for text in texts)


def signup_open(status: str, opens_at: datetime, closes_at: datetime, now: datetime) -> bool:
    """Sign-up is open now: published or under way, and inside the window."""
    return status in SIGNABLE and opens_at <= now < closes_at
