"""The registry's storage on MongoDB (any number of replicas): the storage port of the use cases.

``units`` and ``volunteers`` are the aggregates, written through :mod:`shared.aggregates`: a read-decide-write is a
conditional write on the version read (decided again after a concurrent change), its events staged in the same write
(the outbox). A volunteer's ``id_hash`` (keyed hash of the ID-card number: one person once) and ``_id`` (the platform
number) are kept unique by unique indexes. A unit's name is reserved while the unit is live by a ``unit_names``
document (``_id`` = the name, plus ``#province_corps`` for the one corps) written in the same transaction as the
unit: a name moves (a rename) and is freed (a rejection). (A unique index on a field of the unit that changes value
would say the same on MongoDB; SecantusDB 0.5.3 keeps the old value's key in a unique index after an update,
measured, so a freed name would stay taken there. Inserts and deletes are exact on both.) ``counters`` hands out
platform numbers by one atomic ``$inc``. Listings and searches are indexed queries (:mod:`.search`).

ID-card numbers are stored only encrypted (``id_cipher``) and masked (``id_masked``); never logged, never in an event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.registry.adapters.search import VOCABULARY, VolunteerQuery, vocabulary_entries, vocabulary_filter
from services.registry.domain.errors import CorpsExistsError, DuplicateNameError
from services.registry.domain.records import CORPS_KEY, HIDDEN, search_fields
from services.registry.domain.volunteers import format_platform_number
from services.registry.usecases.ports import (
    DecideUnit,
    DecideVolunteer,
    Doc,
    IdCipher,
    Page,
    PersonTaken,
    UnitFilter,
    VolunteerFilter,
)
from shared import clock
from shared.aggregates import DEFAULT_ATTEMPTS, Aggregates, Contended, backoff, in_transaction
from shared.contracts.envelope import Envelope
from shared.messaging.outbox import Outbox, Transaction
from shared.storage import Indexes

log = logging.getLogger("stvs.registry.store")

UNITS = "units"
VOLUNTEERS = "volunteers"
UNIT_NAMES = "unit_names"
UNIT_MOVES = "unit_moves"  # a move's propagation: state and cursor, resumed at start (usecases/moves.py)
COUNTERS = "counters"
MAX_PAGE = 200
BACKFILL_BATCH = 500
LOOKUP_CHUNK = 2_000  # keyed hashes per indexed lookup ({id_hash: {$in: [...]}})
# the in-memory directory's stored cards and the keyed-hash lookup documents (now the unique id_hash index)
RETIRED_COLLECTIONS = ("volunteer_cards", "volunteer_cards_state", "id_hashes")
DUPLICATE_KEY = 11000
# written by a 附件2 import not yet committed (adapters/import_log.py): left out of every read
PENDING_IMPORT = "_import"
NOT_PENDING = {PENDING_IMPORT: {"$exists": False}}
_PRESENT = {"$exists": True}  # partial unique index: old documents get their key from the backfill
_UNIT_ORDER = [("registered_at", 1), ("_id", 1)]


class _Moved(Exception):
    """The unit changed between the transaction's read and its write: run it again."""


def indexes() -> Indexes:
    """Declared at start-up: what keeps names and persons unique, and what listings and searches read."""
    ix = Indexes()
    ix.add(UNITS, "ancestors", "registered_at", "_id")
    ix.add(UNITS, "parent_id", "registered_at", "_id")
    ix.add(UNITS, "registered_at", "_id")
    ix.add(UNIT_MOVES, "state", "created_at")
    # one person once (old documents get their id_hash by the start-up backfill)
    ix.add(VOLUNTEERS, "id_hash", unique=True, partial={"id_hash": _PRESENT})
    ix.add(VOLUNTEERS, "scope_units", "_id")
    ix.add(VOLUNTEERS, "name_terms", "_id")
    ix.add(VOLUNTEERS, "skills", "_id")
    ix.add(VOLUNTEERS, "title", "_id")
    ix.add(VOLUNTEERS, "professional_field", "_id")
    ix.add(VOCABULARY, "field", "value")
    return ix


def unit_query(query: UnitFilter) -> dict[str, Any]:
    """A unit listing as one indexed filter."""
    filters: list[dict[str, Any]] = []
    if query.nothing:
        filters.append({"_id": "#none"})
    elif query.within is not None:
        filters.append({"$or": [{"_id": query.within}, {"ancestors": query.within}]})
    for key in ("kind", "city", "status", "parent_id", "name"):
        value = getattr(query, key)
        if value is not None:
            filters.append({key: value})
    if query.below is not None:  # the unit itself and everything below it
        filters.append({"$or": [{"_id": query.below}, {"ancestors": query.below}]})
    return {"$and": filters} if len(filters) > 1 else (filters[0] if filters else {})


class MongoRegistry:
    """The storage port on one service database; every write stages its events in the same document write, and
    none relies on this process being the only one."""

    def __init__(self, outbox: Outbox, cipher: IdCipher, *, year: int) -> None:
        self.db = outbox.db
        self.outbox = outbox
        self.cipher = cipher
        self.year = year
        self.units = Aggregates(outbox, UNITS)
        self.volunteers = Aggregates(outbox, VOLUNTEERS)

    # -- units ------------------------------------------------------------------------------------------
    async def unit(self, unit_id: str) -> Doc | None:
        doc: Doc | None = await self.db[UNITS].find_one({"_id": unit_id}, HIDDEN)
        return doc

    async def units_by_id(self, unit_ids: Iterable[str]) -> list[Doc]:
        wanted = list(unit_ids)
        found = {d["_id"]: d async for d in self.db[UNITS].find({"_id": {"$in": wanted}}, HIDDEN)}
        return [found[u] for u in wanted if u in found]

    async def unit_id_by_name(self, name: str) -> str | None:
        doc = await self.db[UNIT_NAMES].find_one({"_id": name})
        return None if doc is None else str(doc["unit_id"])

    async def corps_exists(self) -> bool:
        return await self.db[UNIT_NAMES].find_one({"_id": CORPS_KEY}) is not None

    async def _reserve_names(self, unit_id: str, keys: Sequence[str], tx: Transaction) -> None:
        """Reserve names (and the corps key) for a unit inside a transaction; a taken one aborts it."""
        for key in keys:
            try:
                await self.db[UNIT_NAMES].insert_one(
                    {"_id": key, "unit_id": unit_id, "at": clock.now()}, session=tx.session
                )
            except DuplicateKeyError:
                if key == CORPS_KEY:
                    raise CorpsExistsError() from None
                raise DuplicateNameError(key) from None

    async def create_units(self, docs_events: Sequence[tuple[Doc, Sequence[Envelope[Any]]]]) -> None:
        async def work(tx: Transaction) -> None:  # the units and their name reservations, or none
            for doc, _ in docs_events:
                corps = doc["kind"] == "province_corps"
                await self._reserve_names(doc["_id"], [doc["name"], CORPS_KEY] if corps else [doc["name"]], tx)
            if len(docs_events) == 1:
                doc, events = docs_events[0]
                await self.units.create(doc, events, tx=tx)
            else:
                await self.outbox.insert_many(UNITS, [(d, list(e)) for d, e in docs_events], tx=tx)

        try:
            await in_transaction(self.outbox, work)
        except (BulkWriteError, DuplicateKeyError):
            raise DuplicateNameError(docs_events[0][0]["name"]) from None

    async def change_unit(self, unit_id: str, decide: DecideUnit) -> Doc | None:
        """A unit's read-decide-write together with its name reservations, in one transaction. A concurrent change
        of the unit is a write conflict: the transaction is run again on the fresh document."""
        return await self._change_unit(unit_id, decide, None)

    async def move_unit(self, unit_id: str, decide: DecideUnit, job: Doc) -> Doc | None:
        return await self._change_unit(unit_id, decide, job)

    async def _change_unit(self, unit_id: str, decide: DecideUnit, job: Doc | None) -> Doc | None:
        async def work(tx: Transaction) -> Doc | None:
            doc = await self.units.get(unit_id, tx)
            decided = await decide(doc)
            if decided is None:
                return None
            write, reserve, free = decided
            assert doc is not None  # decide refuses a unit that does not exist
            await self._reserve_names(unit_id, reserve, tx)
            for key in free:
                await self.db[UNIT_NAMES].delete_one({"_id": key, "unit_id": unit_id}, session=tx.session)
            if not await self.units.write(doc, write, tx=tx):
                raise _Moved()
            if job is not None:
                await self.db[UNIT_MOVES].insert_one(job, session=tx.session)
            return write.result

        for attempt in range(DEFAULT_ATTEMPTS):
            try:
                return await in_transaction(self.outbox, work)
            except _Moved:
                await backoff(attempt)
        raise Contended(UNITS, unit_id, DEFAULT_ATTEMPTS)

    async def units_below(self, unit_id: str, after: str | None, limit: int) -> list[Doc]:
        query: dict[str, Any] = {"ancestors": unit_id}
        if after is not None:
            query["_id"] = {"$gt": after}
        return [d async for d in self.db[UNITS].find(query, HIDDEN).sort("_id", 1).limit(limit)]

    async def volunteers_below(self, unit_id: str, after: str | None, limit: int) -> list[Doc]:
        query: dict[str, Any] = {"scope_units": unit_id}
        if after is not None:
            query["_id"] = {"$gt": after}
        fields = {"memberships": 1, "version": 1, "scope_units": 1, "unit_ids": 1, PENDING_IMPORT: 1}
        return [d async for d in self.db[VOLUNTEERS].find(query, fields).sort("_id", 1).limit(limit)]

    async def open_moves(self, idle_since: datetime | None = None) -> list[Doc]:
        query: dict[str, Any] = {"state": {"$in": ["units", "volunteers"]}}
        if idle_since is not None:
            query["updated_at"] = {"$lt": idle_since}
        cursor = self.db[UNIT_MOVES].find(query).sort("created_at", 1)
        return [d async for d in cursor]

    async def save_move(self, move_id: str, fields: Mapping[str, Any]) -> None:
        await self.db[UNIT_MOVES].update_one({"_id": move_id}, {"$set": dict(fields)})

    async def list_units(self, query: UnitFilter, skip: int, limit: int) -> Page:
        return await self._page(UNITS, unit_query(query), skip, limit, sort=_UNIT_ORDER)

    async def subtree(self, unit_id: str | None) -> list[Doc]:
        query: dict[str, Any] = {"ancestors": unit_id} if unit_id is not None else {}
        cursor = self.db[UNITS].find(query, {"_outbox": 0, "_outbox_n": 0}).sort(_UNIT_ORDER)
        return [d async for d in cursor]

    async def _page(self, collection: str, query: Mapping[str, Any], skip: int, limit: int, sort: Any) -> Page:
        """One page (find, sorted, skip/limit) and the total (count_documents), asked of the same index at once."""
        limit = max(1, min(limit, MAX_PAGE))
        skip = max(0, skip)
        col = self.db[collection]

        async def page() -> list[Doc]:
            return [doc async for doc in col.find(dict(query), HIDDEN).sort(sort).skip(skip).limit(limit)]

        items, total = await asyncio.gather(page(), col.count_documents(dict(query)))
        return Page(items, total, skip, limit)

    # -- volunteers -------------------------------------------------------------------------------------
    async def next_platform_numbers(self, n: int) -> list[str]:
        """``n`` fresh platform numbers (HB + year + sequence); a block for a bulk import. One atomic ``$inc``."""
        counters = self.db[COUNTERS]
        key = f"volunteer:{self.year}"
        for attempt in range(3):
            try:
                doc = await counters.find_one_and_update(
                    {"_id": key}, {"$inc": {"seq": n}}, upsert=True, return_document=ReturnDocument.AFTER
                )
                break
            except DuplicateKeyError:  # two first upserts at once: the other one created it, $inc it again
                if attempt == 2:
                    raise
        assert doc is not None  # an upsert returns the document after it
        last = int(doc["seq"])
        return [format_platform_number(self.year, seq) for seq in range(last - n + 1, last + 1)]

    async def volunteer(self, volunteer_id: str) -> Doc | None:
        doc: Doc | None = await self.db[VOLUNTEERS].find_one({"_id": volunteer_id, **NOT_PENDING}, HIDDEN)
        return doc

    async def id_cipher(self, volunteer_id: str) -> str | None:
        doc = await self.db[VOLUNTEERS].find_one({"_id": volunteer_id, **NOT_PENDING}, {"id_cipher": 1})
        return None if doc is None else doc.get("id_cipher")

    async def holder_record(self, volunteer_id: str) -> Doc | None:
        projection = {"memberships": 1, "platform_number": 1, "scope_units": 1, "account": 1}
        doc: Doc | None = await self.db[VOLUNTEERS].find_one({"_id": volunteer_id}, projection)
        return doc

    async def holder(self, id_hash: str) -> str | None:
        doc = await self.db[VOLUNTEERS].find_one({"id_hash": id_hash}, {"_id": 1})
        return None if doc is None else str(doc["_id"])

    async def holders(self, id_hashes: Sequence[str]) -> dict[str, Doc]:
        wanted = list(dict.fromkeys(id_hashes))
        volunteers = self.db[VOLUNTEERS]
        projection = {"id_cipher": 0, "_outbox": 0, "_outbox_n": 0, "name_terms": 0}

        async def chunk(part: Sequence[str]) -> list[Doc]:
            return [doc async for doc in volunteers.find({"id_hash": {"$in": list(part)}}, projection)]

        found = await asyncio.gather(
            *(chunk(wanted[start : start + LOOKUP_CHUNK]) for start in range(0, len(wanted), LOOKUP_CHUNK))
        )
        return {doc["id_hash"]: doc for docs in found for doc in docs}

    async def create_volunteer(self, doc: Doc, events: Sequence[Envelope[Any]]) -> None:
        try:  # the unique id_hash index keeps one person once, whichever replica registers them
            await self.volunteers.create(doc, events)
        except DuplicateKeyError:
            raise PersonTaken() from None

    async def change_volunteer(self, volunteer_id: str, decide: DecideVolunteer) -> Doc | None:
        def visible(doc: Doc | None) -> Any:  # a volunteer of an import not yet committed does not exist yet
            return decide(None if doc is not None and PENDING_IMPORT in doc else doc)

        result: Doc | None = await self.volunteers.change(volunteer_id, visible)
        return result

    async def remember_vocabulary(self, docs: Iterable[Mapping[str, Any]]) -> None:
        entries = vocabulary_entries(docs)
        if not entries:
            return
        try:
            await self.db[VOCABULARY].insert_many(entries, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    async def search_volunteers(self, query: VolunteerFilter, skip: int, limit: int) -> Page:
        asked = VolunteerQuery.of(
            unit=query.unit,
            scope_unit=query.within,
            name=query.name,
            professional_field=query.professional_field,
            title=query.title,
            skill=query.skill,
        )
        vocabulary = {
            field: [str(d["value"]) async for d in self.db[VOCABULARY].find(vocabulary_filter(field, text))]
            for field, text in asked.vocabulary_asks.items()
        }
        found = {**asked.filter(vocabulary), **NOT_PENDING}
        return await self._page(VOLUNTEERS, found, skip, limit, sort=[("_id", 1)])

    async def volunteers_in(self, unit_id: str | None) -> list[Doc]:
        query: dict[str, Any] = {"scope_units": unit_id, **NOT_PENDING} if unit_id is not None else dict(NOT_PENDING)
        cursor = self.db[VOLUNTEERS].find(query, {"_outbox": 0, "_outbox_n": 0}).sort("_id", 1)
        return [doc async for doc in cursor]

    # -- maintenance ------------------------------------------------------------------------------------
    async def backfill(self) -> int:
        """Give volunteers written before the indexed fields existed their ``id_hash``, ``name_terms`` and
        vocabulary, then drop the retired collections. Idempotent (any replica may run it at start); each write is
        conditional on the version read, so a concurrent change is never overwritten (the next batch reads it
        again). Returns how many documents it completed."""
        done = 0
        volunteers = self.db[VOLUNTEERS]
        fields = {"name": 1, "id_cipher": 1, "title": 1, "professional_field": 1, "version": 1}
        while True:
            batch = await volunteers.find({"name_terms": {"$exists": False}}, fields).limit(BACKFILL_BATCH).to_list()
            if not batch:
                for retired in RETIRED_COLLECTIONS:  # what the single-process registry kept; nothing reads them
                    await self.db.drop_collection(retired)
                return done
            await self.remember_vocabulary(batch)
            progress = 0
            for doc in batch:
                progress += await self._backfill_one(doc)
            done += progress
            if not progress:  # every one changed meanwhile, again and again: leave them to the next start
                return done

    async def _backfill_one(self, doc: Doc) -> int:
        volunteers = self.db[VOLUNTEERS]
        sets = search_fields(doc)
        if doc.get("id_cipher"):
            sets["id_hash"] = self.cipher.hash(self.cipher.decrypt(doc["id_cipher"]))
        where = {"_id": doc["_id"], "version": doc.get("version")}
        try:
            result = await volunteers.update_one(where, {"$set": sets})
        except DuplicateKeyError:
            log.warning("volunteer %s is a second record of a registered person", doc["_id"])
            sets.pop("id_hash")
            result = await volunteers.update_one(where, {"$set": sets})
        return int(result.modified_count)


async def backfill_once(store: MongoRegistry) -> None:
    """Documents written before the indexed fields existed get them (once; idempotent on every start), retried with
    a growing pause while the database is away."""
    delay = 0.5
    while True:
        try:
            done = await store.backfill()
            if done:
                log.info("registry backfill: %d documents given their index keys", done)
            return
        except Exception:
            log.warning("registry backfill failed; retrying in %.1fs", delay, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
