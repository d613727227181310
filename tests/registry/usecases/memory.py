"""An in-memory double of the registry's ports (usecases/ports.py), so the use cases run without Kafka or a database.

It keeps the records as the MongoDB adapter does (plain documents, the name reservations, the keyed hashes unique)
and applies a decision's ``$set`` / ``$inc`` the way the server would; the events of every write are kept in
``events`` in order.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.registry.adapters.search import VolunteerQuery
from services.registry.domain.errors import (
    CorpsExistsError,
    DuplicateNameError,
    ImportConflictError,
    QuotaExceededError,
    UnavailableError,
)
from services.registry.domain.fields import mask_id_number
from services.registry.domain.records import CORPS_KEY, HIDDEN
from services.registry.domain.volunteers import format_platform_number
from services.registry.usecases.ports import (
    Build,
    DecideUnit,
    DecideVolunteer,
    Doc,
    Page,
    PersonTaken,
    UnitFilter,
    VolunteerFilter,
)
from shared.aggregates import Write
from shared.contracts.envelope import Envelope
from shared.identity import Identity


def apply(doc: Doc, update: Mapping[str, Any]) -> None:
    """``$set`` (dotted paths too) and ``$inc`` on a document, in place."""
    for path, value in update.get("$set", {}).items():
        *parents, last = path.split(".")
        target = doc
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = copy.deepcopy(value)
    for path, value in update.get("$inc", {}).items():
        doc[path] = doc.get(path, 0) + value


def visible(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in HIDDEN}


class MemoryRegistry:
    """The storage port in memory."""

    def __init__(self, *, year: int = 2026) -> None:
        self.year = year
        self.units: dict[str, Doc] = {}
        self.names: dict[str, str] = {}  # name (or the corps key) -> unit id
        self.volunteers: dict[str, Doc] = {}
        self.moves: dict[str, Doc] = {}
        self.vocabulary: set[tuple[str, str]] = set()
        self.events: list[Envelope[Any]] = []
        self.seq = 0

    # -- units
    async def unit(self, unit_id: str) -> Doc | None:
        doc = self.units.get(unit_id)
        return None if doc is None else visible(copy.deepcopy(doc))

    async def units_by_id(self, unit_ids: Iterable[str]) -> list[Doc]:
        return [visible(copy.deepcopy(self.units[u])) for u in unit_ids if u in self.units]

    async def unit_id_by_name(self, name: str) -> str | None:
        return self.names.get(name)

    async def corps_exists(self) -> bool:
        return CORPS_KEY in self.names

    def _reserve(self, unit_id: str, keys: Sequence[str]) -> None:
        for key in keys:
            if key in self.names:
                raise CorpsExistsError() if key == CORPS_KEY else DuplicateNameError(key)
        for key in keys:
            self.names[key] = unit_id

    async def create_units(self, docs_events: Sequence[tuple[Doc, Sequence[Envelope[Any]]]]) -> None:
        names = dict(self.names)
        try:
            for doc, _ in docs_events:
                corps = doc["kind"] == "province_corps"
                self._reserve(doc["_id"], [doc["name"], CORPS_KEY] if corps else [doc["name"]])
        except Exception:
            self.names = names  # the transaction aborts: no reservation stays
            raise
        for doc, events in docs_events:
            self.units[doc["_id"]] = copy.deepcopy({**doc, "version": doc.get("version", 1)})
            self.events.extend(events)

    async def change_unit(self, unit_id: str, decide: DecideUnit) -> Doc | None:
        current = self.units.get(unit_id)
        decided = await decide(copy.deepcopy(current))
        if decided is None:
            return None
        write, reserve, free = decided
        assert current is not None
        self._reserve(unit_id, reserve)
        for key in free:
            if self.names.get(key) == unit_id:
                del self.names[key]
        self._write(current, write)
        return write.result

    async def move_unit(self, unit_id: str, decide: DecideUnit, job: Doc) -> Doc | None:
        result = await self.change_unit(unit_id, decide)
        if result is not None:
            self.moves[job["_id"]] = copy.deepcopy(job)
        return result

    async def units_below(self, unit_id: str, after: str | None, limit: int) -> list[Doc]:
        found = sorted(
            (
                d
                for d in self.units.values()
                if unit_id in d.get("ancestors", []) and (after is None or d["_id"] > after)
            ),
            key=lambda d: str(d["_id"]),
        )
        return copy.deepcopy([visible(d) for d in found[:limit]])

    async def volunteers_below(self, unit_id: str, after: str | None, limit: int) -> list[Doc]:
        found = sorted(
            (
                v
                for v in self.volunteers.values()
                if unit_id in v.get("scope_units", []) and (after is None or v["_id"] > after)
            ),
            key=lambda v: str(v["_id"]),
        )
        return copy.deepcopy(found[:limit])

    async def open_moves(self, idle_since: datetime | None = None) -> list[Doc]:
        found = [
            m
            for m in self.moves.values()
            if m["state"] != "done" and (idle_since is None or m["updated_at"] < idle_since)
        ]
        return copy.deepcopy(sorted(found, key=lambda m: m["created_at"]))

    async def save_move(self, move_id: str, fields: Mapping[str, Any]) -> None:
        self.moves[move_id].update(copy.deepcopy(dict(fields)))

    def _write(self, doc: Doc, write: Write[Doc]) -> None:
        apply(doc, {**write.update, "$inc": {**write.update.get("$inc", {}), "version": 1}})
        self.events.extend(write.events)

    async def list_units(self, query: UnitFilter, skip: int, limit: int) -> Page:
        found = [visible(d) for d in self.units.values() if _unit_matches(d, query)]
        found.sort(key=lambda d: (d["registered_at"], d["_id"]))
        return Page(copy.deepcopy(found[skip : skip + limit]), len(found), skip, limit)

    async def subtree(self, unit_id: str | None) -> list[Doc]:
        found = [d for d in self.units.values() if unit_id is None or unit_id in d.get("ancestors", [])]
        return copy.deepcopy(sorted(found, key=lambda d: (d["registered_at"], d["_id"])))

    # -- volunteers
    async def next_platform_numbers(self, n: int) -> list[str]:
        self.seq += n
        return [format_platform_number(self.year, s) for s in range(self.seq - n + 1, self.seq + 1)]

    async def volunteer(self, volunteer_id: str) -> Doc | None:
        doc = self.volunteers.get(volunteer_id)
        return None if doc is None else visible(copy.deepcopy(doc))

    async def holder_record(self, volunteer_id: str) -> Doc | None:
        return await self.volunteer(volunteer_id)

    async def id_cipher(self, volunteer_id: str) -> str | None:
        doc = self.volunteers.get(volunteer_id)
        return None if doc is None else str(doc["id_cipher"])

    async def holder(self, id_hash: str) -> str | None:
        return next((v["_id"] for v in self.volunteers.values() if v.get("id_hash") == id_hash), None)

    async def holders(self, id_hashes: Sequence[str]) -> dict[str, Doc]:
        wanted = set(id_hashes)
        return {v["id_hash"]: copy.deepcopy(v) for v in self.volunteers.values() if v.get("id_hash") in wanted}

    async def create_volunteer(self, doc: Doc, events: Sequence[Envelope[Any]]) -> None:
        if await self.holder(doc["id_hash"]) is not None or doc["_id"] in self.volunteers:
            raise PersonTaken()
        self.volunteers[doc["_id"]] = copy.deepcopy(doc)
        self.events.extend(events)

    async def change_volunteer(self, volunteer_id: str, decide: DecideVolunteer) -> Doc | None:
        current = self.volunteers.get(volunteer_id)
        decided = decide(copy.deepcopy(current))
        write = await decided if inspect.isawaitable(decided) else decided
        if write is None:
            return None
        assert current is not None
        self._write(current, write)
        return write.result

    async def remember_vocabulary(self, docs: Iterable[Mapping[str, Any]]) -> None:
        for doc in docs:
            for field in ("title", "professional_field"):
                if doc.get(field):
                    self.vocabulary.add((field, doc[field]))

    async def search_volunteers(self, query: VolunteerFilter, skip: int, limit: int) -> Page:
        asked = VolunteerQuery.of(
            unit=query.unit,
            scope_unit=query.within,
            name=query.name,
            professional_field=query.professional_field,
            title=query.title,
            skill=query.skill,
        )
        found = sorted((visible(v) for v in self.volunteers.values() if asked.matches(v)), key=lambda d: d["_id"])
        return Page(copy.deepcopy(found[skip : skip + limit]), len(found), skip, limit)

    async def volunteers_in(self, unit_id: str | None) -> list[Doc]:
        found = [v for v in self.volunteers.values() if unit_id is None or unit_id in v.get("scope_units", [])]
        return copy.deepcopy(sorted(found, key=lambda d: d["_id"]))


def _unit_matches(doc: Doc, query: UnitFilter) -> bool:
    if query.nothing:
        return False
    for root in (query.within, query.below):
        if root is not None and root != doc["_id"] and root not in doc.get("ancestors", []):
            return False
    return all(
        getattr(query, key) is None or doc.get(key) == getattr(query, key)
        for key in ("kind", "city", "status", "parent_id", "name")
    )


class PlainCipher:
    """Reversible and recognisable: enough for the use cases, which never look inside."""

    def encrypt(self, number: str) -> str:
        return "enc:" + number

    def decrypt(self, token: str) -> str:
        return token.removeprefix("enc:")

    def hash(self, number: str) -> str:
        return "hash:" + number

    def mask(self, number: str) -> str:
        return mask_id_number(number)


class Ledger:
    """Counts the answers about ID numbers registered elsewhere, up to a daily limit."""

    def __init__(self, limit: int = 50) -> None:
        self.limit = limit
        self.charged: list[tuple[str, int, str]] = []
        self.exports: list[dict[str, Any]] = []

    async def charge(self, identity: Identity, count: int, *, purpose: str, unit_id: str | None) -> None:
        if count <= 0:
            return
        if sum(c for s, c, _ in self.charged if s == identity.subject) + count > self.limit:
            raise QuotaExceededError(self.limit)
        self.charged.append((identity.subject, count, purpose))

    async def record_export(
        self, identity: Identity, *, form: str, unit_id: str | None, full_ids: bool, reason: str | None, rows: int
    ) -> None:
        self.exports.append({"subject": identity.subject, "form": form, "full_ids": full_ids, "rows": rows})


class MemoryImports:
    """Writes an import's volunteers into the in-memory store, all or nothing."""

    def __init__(self, store: MemoryRegistry) -> None:
        self.store = store
        self.states: dict[str, str] = {}  # import id → running, done or aborted (as the import log says)

    async def insert_all(
        self,
        owner: str,
        jobs: Sequence[Any],
        build: Build,
        *,
        import_id: str | None = None,
        stored: Callable[[int], None] | None = None,
    ) -> list[Any]:
        if import_id is not None and self.states.get(import_id) == "aborted":
            raise UnavailableError("import_cancelled", "导入已取消，整个文件未导入")
        built = build(jobs)
        hashes = {v["id_hash"] for v in self.store.volunteers.values()}
        if any(doc["id_hash"] in hashes or doc["_id"] in self.store.volunteers for doc, _ in built):
            raise ImportConflictError("有志愿者在导入过程中已由其他操作注册，整个文件未导入，请重新上传")
        for doc, event in built:
            self.store.volunteers[doc["_id"]] = copy.deepcopy(doc)
            self.store.events.append(event)
        if stored is not None:
            stored(len(built))
        if import_id is not None:
            self.states[import_id] = "done"
        return [doc["_id"] for doc, _ in built]

    async def state(self, import_id: str) -> str | None:
        return self.states.get(import_id)

    async def cancel(self, import_id: str, *, only_if_dead: bool = False) -> str | None:
        if self.states.get(import_id) is None:  # not begun: it never will
            self.states[import_id] = "aborted"
        return self.states.get(import_id)

    async def unpublished(self, ids: Sequence[Any]) -> int:
        return 0


class MemoryJobs:
    """Upload jobs in memory (the port :class:`services.registry.usecases.ports.ImportJobStore`)."""

    def __init__(self, lease_s: float = 60.0) -> None:
        self.jobs: dict[str, Doc] = {}
        self.problem_lists: dict[str, list[Doc]] = {}
        self.files: dict[str, bytes] = {}
        self.lease = timedelta(seconds=lease_s)

    async def create(self, doc: Doc) -> None:
        self.jobs[doc["_id"]] = {**copy.deepcopy(doc), "lease_until": datetime.now(UTC) + self.lease}

    async def get(self, job_id: str) -> Doc | None:
        doc = self.jobs.get(job_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def update(self, job_id: str, fields: Mapping[str, Any], *, unless_finished: bool = True) -> bool:
        doc = self.jobs.get(job_id)
        if doc is None or (unless_finished and doc["state"] in ("succeeded", "failed", "cancelled")):
            return False
        doc.update(copy.deepcopy(dict(fields)), lease_until=datetime.now(UTC) + self.lease)
        return True

    async def request_cancel(self, job_id: str) -> Doc | None:
        doc = self.jobs.get(job_id)
        if doc is not None and doc["state"] not in ("succeeded", "failed", "cancelled"):
            doc["cancel_requested"] = True
        return await self.get(job_id)

    async def save_problems(self, job_id: str, problems: Sequence[Mapping[str, Any]]) -> None:
        self.problem_lists[job_id] = [dict(p) for p in problems]

    async def problems(self, job_id: str) -> list[Doc]:
        return list(self.problem_lists.get(job_id, []))

    async def save_file(self, job_id: str, data: bytes) -> None:
        self.files[job_id] = data

    async def file(self, job_id: str) -> bytes | None:
        return self.files.get(job_id)

    async def abandoned(self) -> list[Doc]:
        now = datetime.now(UTC)
        return [
            copy.deepcopy(d)
            for d in self.jobs.values()
            if d["state"] not in ("succeeded", "failed", "cancelled") and d["lease_until"] < now
        ]


__all__ = ["Ledger", "MemoryImports", "MemoryJobs", "MemoryRegistry", "PlainCipher", "apply"]
