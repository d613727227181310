"""Volunteer listings and searches as indexed MongoDB queries (pure: no I/O here).

What ``GET /volunteers`` asks, and how each condition is answered by an index of ``volunteers``:

- ``unit_id`` (the unit and every unit below it): ``scope_units`` holds, on each volunteer, every unit at or above
  one of its open (active or pending) memberships; index ``{scope_units: 1, _id: 1}`` (multikey; the page is in
  ``_id`` = platform-number order, which that index gives for one unit).
- ``name`` (a part of the name): ``name_terms`` holds every part of the name up to :data:`TERM_CHARS` characters;
  index ``{name_terms: 1, _id: 1}``. A text that long or shorter is one exact key; a longer one is looked up by its
  first :data:`TERM_CHARS` characters and checked whole with a regular expression on the documents found.
- ``title`` and ``professional_field`` (a part of the text): few distinct values (a few hundred titles and fields
  province-wide), kept in the small ``vocabulary`` collection (one document per value, written before any volunteer
  carries it). The text is matched against the vocabulary (an unanchored regular expression over those few
  documents, not indexed) and the volunteers are asked by ``{title: {$in: values}}`` on index ``{title: 1, _id: 1}``
  (likewise ``professional_field``).
- ``skill`` (a whole skill): index ``{skills: 1, _id: 1}`` (multikey).

Totals come from ``count_documents`` on the same filter. The conditions are written in the order of their usual
selectivity (name, skill, unit, title, field): a planner that trials plans (mongod) does not care, one that takes
the first indexed predicate is steered to the narrowest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.registry.domain.records import TERM_CHARS

VOCABULARY = "vocabulary"
VOCABULARY_FIELDS = ("title", "professional_field")


def vocabulary_entries(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The vocabulary documents the values of these volunteers need (each once)."""
    seen: dict[str, dict[str, Any]] = {}
    for doc in docs:
        for field in VOCABULARY_FIELDS:
            value = doc.get(field)
            if value:
                key = f"{field}:{value}"
                seen.setdefault(key, {"_id": key, "field": field, "value": value})
    return list(seen.values())


def vocabulary_filter(field: str, text: str) -> dict[str, Any]:
    """The vocabulary entries of ``field`` whose value contains ``text``."""
    return {"field": field, "value": {"$regex": re.escape(text)}}


def _clean(text: str | None) -> str | None:
    return (text or "").strip() or None


@dataclass(frozen=True)
class VolunteerQuery:
    """All given conditions hold: listed under ``unit`` (and the asker's ``scope_unit``); the texts are parts of
    the name, title and field; ``skill`` is one whole skill."""

    unit: str | None = None
    scope_unit: str | None = None
    name: str | None = None
    professional_field: str | None = None
    title: str | None = None
    skill: str | None = None

    @classmethod
    def of(cls, **given: str | None) -> VolunteerQuery:
        return cls(**{k: _clean(v) for k, v in given.items()})

    @property
    def vocabulary_asks(self) -> dict[str, str]:
        """The texts to look up in the vocabulary first: field → text."""
        asks = {"title": self.title, "professional_field": self.professional_field}
        return {k: v for k, v in asks.items() if v}

    def filter(self, vocabulary: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        """The MongoDB filter; ``vocabulary`` gives, for each of :attr:`vocabulary_asks`, the stored values that
        contain its text."""
        vocabulary = vocabulary or {}
        conditions: list[dict[str, Any]] = []
        if self.name:
            conditions.append({"name_terms": self.name[:TERM_CHARS]})
            if len(self.name) > TERM_CHARS:
                conditions.append({"name": {"$regex": re.escape(self.name)}})
        if self.skill:
            conditions.append({"skills": self.skill})
        units = list(dict.fromkeys(u for u in (self.unit, self.scope_unit) if u))
        conditions += [{"scope_units": u} for u in units]
        for field, _text in self.vocabulary_asks.items():
            conditions.append({field: {"$in": sorted(vocabulary.get(field, ()))}})
        if not conditions:
            return {}
        if len(conditions) == 1:
            return conditions[0]
        return {"$and": conditions}

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """The rule itself, on one document (what the filter must find)."""
        return (
            all(u in (doc.get("scope_units") or ()) for u in (self.unit, self.scope_unit) if u)
            and (not self.name or self.name in (doc.get("name") or ""))
            and (not self.professional_field or self.professional_field in (doc.get("professional_field") or ""))
            and (not self.title or self.title in (doc.get("title") or ""))
            and (not self.skill or self.skill in (doc.get("skills") or ()))
        )
