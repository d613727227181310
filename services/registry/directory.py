"""The volunteer directory: what volunteer listings and searches are answered from.

FerretDB v1 pushes no filter but ``{_id: value}`` down to SQLite, so a listing of a unit's members read from the
collection decodes every volunteer document twice (page and count): 4 s at 10,000 volunteers, measured. The
registry instead keeps, in memory, one small card per volunteer (the units it is listed under and the searchable
fields, nothing personal beyond the name) and reads only the documents of the page it answers, by ``_id``.

The cards are built at start-up by one scan (in the background; until it ends, searches read the collection as
before) and kept current by every write of this process, which is the only writer of the volunteers (the
registry's per-document locks already require one process). A write during the scan wins over what the scan
read. 50,000 volunteers take ~17 MB; listing all of them takes ~2 ms, a search by name among them ~40 ms.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from shared.storage import Doc

log = logging.getLogger("stvs.registry.directory")

CARD_FIELDS = {"scope_units": 1, "name": 1, "professional_field": 1, "title": 1, "skills": 1}


@dataclass(frozen=True, slots=True)
class Card:
    scope_units: frozenset[str]
    name: str
    professional_field: str
    title: str
    skills: frozenset[str]

    @classmethod
    def of(cls, doc: Mapping[str, Any], shared: dict[Any, Any]) -> Card:
        """The card of ``doc``; values many volunteers have alike (their units, field, title, skills) are
        shared through ``shared`` rather than held once per volunteer."""

        def one(value: Any) -> Any:
            return shared.setdefault(value, value)

        return cls(
            scope_units=one(frozenset(doc.get("scope_units") or ())),
            name=doc.get("name") or "",
            professional_field=one(doc.get("professional_field") or ""),
            title=one(doc.get("title") or ""),
            skills=one(frozenset(doc.get("skills") or ())),
        )


@dataclass(frozen=True)
class Query:
    """All given conditions hold: listed under every unit of ``units``; text fields contain the given text."""

    units: tuple[str, ...] = ()
    name: str | None = None
    professional_field: str | None = None
    title: str | None = None
    skill: str | None = None

    @property
    def by_text(self) -> bool:
        return bool(self.name or self.professional_field or self.title or self.skill)

    def matches(self, card: Card) -> bool:
        return (
            all(u in card.scope_units for u in self.units)
            and (not self.name or self.name in card.name)
            and (not self.professional_field or self.professional_field in card.professional_field)
            and (not self.title or self.title in card.title)
            and (not self.skill or self.skill in card.skills)
        )


class VolunteerDirectory:
    def __init__(self) -> None:
        self._cards: dict[str, Card] = {}
        self._by_unit: dict[str, set[str]] = {}
        self._shared: dict[Any, Any] = {}
        self._loading = False
        self._touched: set[str] = set()  # written while the scan runs: the scan's copy is older
        self.ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._cards)

    # -- keeping it current
    def put(self, doc: Mapping[str, Any]) -> None:
        """The volunteer as just written (the whole document, or at least its card fields)."""
        vid = str(doc["_id"])
        if self._loading:
            self._touched.add(vid)
        self._set(vid, Card.of(doc, self._shared))

    def remove(self, ids: Iterable[str]) -> None:
        for vid in ids:
            if self._loading:
                self._touched.add(vid)
            self._drop(vid)

    def _set(self, vid: str, card: Card) -> None:
        self._drop(vid)
        self._cards[vid] = card
        for unit in card.scope_units:
            self._by_unit.setdefault(unit, set()).add(vid)

    def _drop(self, vid: str) -> None:
        old = self._cards.pop(vid, None)
        if old is None:
            return
        for unit in old.scope_units:
            members = self._by_unit.get(unit)
            if members is not None:
                members.discard(vid)
                if not members:
                    del self._by_unit[unit]

    async def load(self, collection: AsyncCollection[Doc]) -> None:
        """Build the cards from one scan of the collection; writes meanwhile win over what it read."""
        started = time.monotonic()
        self._loading = True
        self._touched = set()
        try:
            async for doc in collection.find({}, CARD_FIELDS, batch_size=2_000):
                vid = str(doc["_id"])
                if vid not in self._touched:
                    self._set(vid, Card.of(doc, self._shared))
        finally:
            self._loading = False
            self._touched = set()
        self.ready.set()
        log.info("volunteer directory ready: %d volunteers in %.1fs", len(self._cards), time.monotonic() - started)

    async def keep_loaded(self, collection: AsyncCollection[Doc]) -> None:
        """The start-up scan, tried again until it succeeds (the database may not answer yet)."""
        delay = 0.5
        while not self.ready.is_set():
            try:
                await self.load(collection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("volunteer directory scan failed (%s); retrying in %.0fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # -- answering
    def search(self, query: Query) -> list[str]:
        """The ids of the matching volunteers, in ``_id`` order (the collection's listing order)."""
        if query.units:
            smallest = min((self._by_unit.get(u, set()) for u in query.units), key=len)
            candidates: Iterable[str] = smallest
        else:
            candidates = self._cards
        if len(query.units) <= 1 and not query.by_text:
            return sorted(candidates)  # the members of one unit, or everyone
        cards = self._cards
        return sorted(vid for vid in candidates if query.matches(cards[vid]))
