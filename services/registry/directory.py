"""The volunteer directory: what volunteer listings and searches are answered from.

FerretDB v1 pushes no filter but ``{_id: value}`` down to SQLite, so a listing of a unit's members read from the
collection decodes every volunteer document twice (page and count): 4 s at 10,000 volunteers, over two minutes at
50,000 (the services' 30 s socket timeout turned that into a 503). The registry instead keeps, in memory, one small
card per volunteer (the units it is listed under and the searchable fields, nothing personal beyond the name) and
reads only the documents of the page it answers, by ``_id`` (``make bench ONLY=registry_import`` times the
listings over 50,000 volunteers).

The cards are also stored (``volunteer_cards``, by ``_id``) so that a restart reads them in seconds rather than
scanning the volunteers (~25–90 s at 50,000); every volunteer write of this process, the only writer of the
volunteers (the registry's per-document locks already require one process), updates both. The volunteers' own
scan still runs after each start, in the background, and mends what a crash left between a volunteer's write and
its card's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.storage import Doc, doc_locks

log = logging.getLogger("stvs.registry.directory")

CARD_FIELDS = {"scope_units": 1, "name": 1, "professional_field": 1, "title": 1, "skills": 1}
CARDS = "volunteer_cards"  # one stored card per volunteer, by _id
STATE = "volunteer_cards_state"  # {_id: "cards", complete: true} once the volunteers' scan completed
CARD_CHUNK = 1_000
RESTORE_INTERVAL_S = 5.0
DUPLICATE_KEY = 11000
T = TypeVar("T")


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
    """The cards in memory: what a listing is answered from (no I/O here; :class:`DirectoryKeeper` stores them)."""

    def __init__(self) -> None:
        self._cards: dict[str, Card] = {}
        self._by_unit: dict[str, set[str]] = {}
        self._shared: dict[Any, Any] = {}
        self._loading = False
        self._touched: set[str] = set()  # written while the scan runs: the scan's copy is older

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

    def card_of(self, vid: str) -> Card | None:
        return self._cards.get(vid)

    def ids(self) -> list[str]:
        return list(self._cards)

    async def load(self, collection: AsyncCollection[Doc], *, prune: bool = False) -> int:
        """Fill in the cards from one scan of ``collection`` (stored cards, or the volunteers themselves); writes
        meanwhile win over what it read. ``prune``: the scan is the whole truth, so a card it did not meet (and
        nobody wrote meanwhile) goes. Returns how many documents it read."""
        self._loading = True
        self._touched = set()
        met: set[str] = set()
        try:
            async for doc in collection.find({}, CARD_FIELDS, batch_size=2_000):
                vid = str(doc["_id"])
                met.add(vid)
                if vid not in self._touched:
                    self._set(vid, Card.of(doc, self._shared))
            if prune:
                for vid in [v for v in self._cards if v not in met and v not in self._touched]:
                    self._drop(vid)
        finally:
            self._loading = False
            self._touched = set()
        return len(met)

    # -- answering
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


class DirectoryKeeper:
    """Keeps the directory filled and its cards stored, so that a restart reads small cards instead of volunteers.

    Every volunteer write of the registry goes through :meth:`saved` / :meth:`saved_new` (memory, then the stored
    card). At start-up :meth:`keep` reads the stored cards (seconds) and answers listings from them, then scans the
    volunteers themselves in the background, which the memory then follows, and mends every stored card that
    differs (a crash between a volunteer's write and its card's), under the volunteer's document lock. Until that
    scan has completed once (a new deployment, or lost cards), listings wait for it.
    """

    def __init__(self, db: AsyncDatabase[Doc], volunteers: str) -> None:
        self.volunteers = db[volunteers]
        self.cards = db[CARDS]
        self.state = db[STATE]
        self.directory = VolunteerDirectory()
        self.ready = asyncio.Event()  # listings may be answered
        self.reconciled = asyncio.Event()  # the volunteers' own scan has completed (this start)
        self.mended = 0  # stored cards the last scan found wrong, missing or left over
        self._unstored: set[str] = set()  # cards whose store failed: stored again every few seconds
        self._new: list[str] = []  # new volunteers (a bulk registration) whose cards are inserted in bulk
        self._wake = asyncio.Event()

    # -- writes
    async def saved(self, doc: Mapping[str, Any]) -> None:
        """After a volunteer's write (its lock held by the caller, or a new volunteer): its card, kept and stored.

        Never raises: the volunteer's write has succeeded, and a card that could not be stored is stored later.
        """
        self.directory.put(doc)
        vid = str(doc["_id"])
        try:
            await self.cards.replace_one({"_id": vid}, _stored(vid, Card.of(doc, {})), upsert=True)
        except Exception as exc:
            self._unstored.add(vid)
            log.warning("volunteer card not stored (%s); stored again later", type(exc).__name__)

    def saved_new(self, docs: Sequence[Mapping[str, Any]]) -> None:
        """After a bulk registration: the new volunteers are listed at once; their cards are stored in bulk in the
        background (the import's answer does not wait for 50,000 more inserts)."""
        for doc in docs:
            self.directory.put(doc)
        self._new.extend(str(d["_id"]) for d in docs)
        self._wake.set()

    @property
    def pending(self) -> int:
        """Cards kept in memory but not stored yet."""
        return len(self._new) + len(self._unstored)

    def forget(self, ids: Iterable[str]) -> None:
        """Volunteers taken back before their cards were stored (a failed import)."""
        self.directory.remove(ids)

    # -- start-up
    async def keep(self) -> None:
        """The start-up (stored cards, then the volunteers' scan), and storing the cards left to store."""
        await asyncio.gather(self._start_up(), self._store_loop())

    async def _store_loop(self) -> None:
        while True:
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), RESTORE_INTERVAL_S)
                self._wake.clear()
                await self.store_pending()
            except asyncio.CancelledError:
                # a graceful stop: store what is pending while the database still answers (briefly)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.store_pending(), 5.0)
                raise

    async def store_pending(self) -> None:
        """Insert the new volunteers' cards in bulk (as they are now), then store those whose store failed."""
        new, self._new = self._new, []
        for start in range(0, len(new), CARD_CHUNK):
            chunk = new[start : start + CARD_CHUNK]
            try:
                await self._insert_cards(chunk)
            except Exception as exc:
                self._unstored.update(chunk)
                self._new.extend(new[start + CARD_CHUNK :])
                log.warning("volunteer cards not stored (%s); stored again later", type(exc).__name__)
                return
        for vid in list(self._unstored):
            try:
                await self._mend(vid)
            except Exception as exc:
                log.warning("volunteer card still not stored (%s)", type(exc).__name__)
                return
            self._unstored.discard(vid)

    async def _start_up(self) -> None:
        started = time.monotonic()
        if await _retrying("stored cards", self._load_cards):
            self.ready.set()
            log.info(
                "volunteer directory ready from stored cards: %d volunteers in %.1fs",
                len(self.directory),
                time.monotonic() - started,
            )
        await _retrying("volunteers", self._reconcile)
        self.reconciled.set()
        self.ready.set()
        log.info(
            "volunteer directory checked against the volunteers: %d, %d stored cards mended, %.1fs",
            len(self.directory),
            self.mended,
            time.monotonic() - started,
        )

    async def _load_cards(self) -> bool:
        state = await self.state.find_one({"_id": "cards"})
        await self.directory.load(self.cards)
        return bool(state and state.get("complete"))

    async def _reconcile(self) -> None:
        await self.directory.load(self.volunteers, prune=True)  # the memory follows the volunteers
        mended = 0
        stored: set[str] = set()
        async for doc in self.cards.find({}, batch_size=2_000):
            vid = str(doc["_id"])
            stored.add(vid)
            if self.directory.card_of(vid) != Card.of(doc, {}):
                mended += await self._mend(vid)
        missing = [vid for vid in self.directory.ids() if vid not in stored]  # all of them at a first start
        for start in range(0, len(missing), CARD_CHUNK):
            mended += await self._insert_cards(missing[start : start + CARD_CHUNK])
        await self.state.replace_one({"_id": "cards"}, {"_id": "cards", "complete": True}, upsert=True)
        self.mended = mended

    async def _insert_cards(self, vids: Sequence[str]) -> int:
        """Insert these volunteers' cards as the memory has them now; returns how many were inserted. A duplicate
        key means a writer stored the newer card meanwhile; a card refused otherwise is stored again later."""
        docs = [_stored(vid, card) for vid in vids if (card := self.directory.card_of(vid)) is not None]
        if not docs:
            return 0
        try:
            return len((await self.cards.insert_many(docs, ordered=False)).inserted_ids)
        except BulkWriteError as exc:
            failed = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
            self._unstored.update(docs[e["index"]]["_id"] for e in failed)
            return int(exc.details.get("nInserted", 0))

    async def _mend(self, vid: str) -> int:
        """The stored card as the memory has it now (under the lock the volunteer's writers hold)."""
        async with doc_locks.hold(self.volunteers, vid):
            card = self.directory.card_of(vid)
            if card is None:
                return (await self.cards.delete_one({"_id": vid})).deleted_count
            await self.cards.replace_one({"_id": vid}, _stored(vid, card), upsert=True)
            return 1


def _stored(vid: str, card: Card) -> Doc:
    return {
        "_id": vid,
        "scope_units": sorted(card.scope_units),
        "name": card.name,
        "professional_field": card.professional_field,
        "title": card.title,
        "skills": sorted(card.skills),
    }


async def _retrying(what: str, step: Callable[[], Awaitable[T]]) -> T:
    delay = 0.5
    while True:
        try:
            return await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "volunteer directory: reading the %s failed (%s); retry in %.0fs", what, type(exc).__name__, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
