"""What the registry's use cases need from the outside, as typing protocols: the storage port (implemented on
MongoDB by :mod:`services.registry.adapters.mongo`, in memory by the use-case tests) and the ID-number cipher.

Records are the plain documents of :mod:`services.registry.domain.records`. A change is decided on the record read
and written conditionally on its version, its events in the same write (:class:`shared.aggregates.Write`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.aggregates import Write
from shared.contracts.envelope import Envelope
from shared.identity import Identity

Doc = dict[str, Any]

UnitDecision = tuple[Write[Doc], Sequence[str], Sequence[str]]
"""A unit's change: the write, the names to reserve, the names to free (in one transaction with the write)."""

DecideUnit = Callable[[Doc | None], Awaitable[UnitDecision | None]]
Build = Callable[[Sequence[Any]], list[tuple[Doc, Envelope[Any]]]]
"""Builds the records (and their one event each) of a chunk of an import's jobs."""

DecideVolunteer = Callable[[Doc | None], "Write[Doc] | Awaitable[Write[Doc] | None] | None"]


class PersonTaken(Exception):
    """The store refused a second record of a person (the keyed hash of the ID-card number is unique)."""


class NumberTaken(Exception):
    """The store refused a record whose platform number is taken."""


@dataclass
class Page:
    items: list[Doc]
    total: int
    skip: int
    limit: int


@dataclass(frozen=True)
class UnitFilter:
    """Which units a listing reads; ``within`` limits it to a unit and those below (a unit admin's reach),
    ``nothing`` to none at all (a caller who reaches no unit)."""

    kind: str | None = None
    city: str | None = None
    status: str | None = None
    parent_id: str | None = None
    name: str | None = None
    below: str | None = None
    within: str | None = None
    nothing: bool = False


@dataclass(frozen=True)
class VolunteerFilter:
    """What a volunteer search asks (see :mod:`services.registry.adapters.search`); ``within`` as for units."""

    unit: str | None = None
    within: str | None = None
    name: str | None = None
    professional_field: str | None = None
    title: str | None = None
    skill: str | None = None


class IdCipher(Protocol):
    """Encrypts, hashes and masks ID-card numbers (:class:`services.registry.adapters.crypto.IdNumberCipher`)."""

    def encrypt(self, number: str) -> str: ...

    def decrypt(self, token: str) -> str: ...

    def hash(self, number: str) -> str: ...

    def mask(self, number: str) -> str: ...


class IdLookupLedger(Protocol):
    """Counts and records the answers "registered in another unit" an account gets, and records exports of
    personal data (:mod:`services.registry.adapters.lookups`)."""

    async def charge(self, identity: Identity, count: int, *, purpose: str, unit_id: str | None) -> None:
        """QuotaExceededError when the day's answers would exceed the limit (recorded as refused)."""
        ...

    async def record_export(
        self, identity: Identity, *, form: str, unit_id: str | None, full_ids: bool, reason: str | None, rows: int
    ) -> None: ...


class RegistryStore(Protocol):
    """Units, their name reservations, volunteers and the platform-number counter."""

    async def unit(self, unit_id: str) -> Doc | None:
        """A unit's record (without the hidden fields), or None."""
        ...

    async def units_by_id(self, unit_ids: Iterable[str]) -> list[Doc]:
        """The records of these units that exist (without the hidden fields)."""
        ...

    async def unit_id_by_name(self, name: str) -> str | None:
        """The live (not rejected) unit of this name, by its name reservation."""
        ...

    async def corps_exists(self) -> bool: ...

    async def create_units(self, docs_events: Sequence[tuple[Doc, Sequence[Envelope[Any]]]]) -> None:
        """New units with their events and their name reservations (the name, and the corps key for the corps), all
        in one transaction; DuplicateNameError or CorpsExistsError when a reservation is taken."""
        ...

    async def change_unit(self, unit_id: str, decide: DecideUnit) -> Doc | None:
        """Read, decide, write with the name reservations, decided again after a concurrent change."""
        ...

    async def move_unit(self, unit_id: str, decide: DecideUnit, job: Doc) -> Doc | None:
        """``change_unit`` whose write also stores ``job`` (a move's propagation record) in the same transaction."""
        ...

    async def units_below(self, unit_id: str, after: str | None, limit: int) -> list[Doc]:
        """Up to ``limit`` units with ``unit_id`` among their ancestors, by id, after the id ``after``."""
        ...

    async def volunteers_below(self, unit_id: str, after: str | None, limit: int) -> list[Doc]:
        """Up to ``limit`` volunteers with ``unit_id`` in their scope (on a membership's path), by id, after
        ``after``; ``_id``, ``version`` and ``memberships`` at least."""
        ...

    async def open_moves(self, idle_since: datetime | None = None) -> list[Doc]:
        """The moves whose propagation has not finished (and, when ``idle_since`` is given, has recorded no progress
        since then), oldest first."""
        ...

    async def save_move(self, move_id: str, fields: Mapping[str, Any]) -> None:
        """Record a move's progress (its state and cursor)."""
        ...

    async def list_units(self, query: UnitFilter, skip: int, limit: int) -> Page: ...

    async def subtree(self, unit_id: str | None) -> list[Doc]:
        """Every unit below ``unit_id`` (every unit when None), in registration order."""
        ...

    async def next_platform_numbers(self, n: int) -> list[str]: ...

    async def volunteer(self, volunteer_id: str) -> Doc | None:
        """A registered volunteer (not one of an import under way), without the hidden fields."""
        ...

    async def id_cipher(self, volunteer_id: str) -> str | None:
        """The encrypted ID-card number of a volunteer."""
        ...

    async def holder_record(self, volunteer_id: str) -> Doc | None:
        """What a refusal of a second registration may tell of the volunteer holding an ID number (also one of an
        import under way): ``memberships``, ``platform_number``, ``scope_units``, ``account``."""
        ...

    async def holder(self, id_hash: str) -> str | None:
        """The volunteer registered under this keyed hash."""
        ...

    async def holders(self, id_hashes: Sequence[str]) -> dict[str, Doc]:
        """The registered holder of each keyed hash that is taken."""
        ...

    async def create_volunteer(self, doc: Doc, events: Sequence[Envelope[Any]]) -> None:
        """A new volunteer with its events; PersonTaken when the person is registered already."""
        ...

    async def change_volunteer(self, volunteer_id: str, decide: DecideVolunteer) -> Doc | None:
        """Read, decide, write conditionally on the version read (a volunteer of an import under way is None)."""
        ...

    async def remember_vocabulary(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """The titles and fields these volunteers carry, kept for searches; before the volunteers are written."""
        ...

    async def search_volunteers(self, query: VolunteerFilter, skip: int, limit: int) -> Page: ...

    async def volunteers_in(self, unit_id: str | None) -> list[Doc]:
        """Every registered volunteer at or below ``unit_id`` (all when None), with the ciphertext, by number."""
        ...


class VolunteerImports(Protocol):
    """Writes a 附件2 import's volunteers all or nothing, across a crash too
    (:mod:`services.registry.adapters.import_log`)."""

    async def insert_all(
        self,
        owner: str,
        jobs: Sequence[Any],
        build: Build,
        *,
        import_id: str | None = None,
        stored: Callable[[int], None] | None = None,
    ) -> list[Any]:
        """Build (in chunks, off the event loop) and write every volunteer with its one event, then commit them
        together; ImportConflictError or UnavailableError when they cannot all be written. ``import_id`` names the
        import (a job's id), ``stored`` hears each chunk written; returns the ids written."""
        ...

    async def state(self, import_id: str) -> str | None:
        """running, committed, done or aborted; None when no import of this id began."""
        ...

    async def cancel(self, import_id: str, *, only_if_dead: bool = False) -> str | None:
        """Abort an import not committed yet (only when its writer is dead, if so asked); its state afterwards."""
        ...

    async def unpublished(self, ids: Sequence[Any]) -> int:
        """How many of these records still hold an event not yet published."""
        ...


class ImportJobStore(Protocol):
    """The records of upload jobs, readable by every replica (:mod:`services.registry.adapters.import_jobs`)."""

    async def create(self, doc: Doc) -> None: ...

    async def get(self, job_id: str) -> Doc | None: ...

    async def update(self, job_id: str, fields: Mapping[str, Any], *, unless_finished: bool = True) -> bool:
        """Set these fields (and renew the lease); False when the job has finished meanwhile."""
        ...

    async def request_cancel(self, job_id: str) -> Doc | None:
        """Mark a job not finished as to be cancelled; the record afterwards (None when unknown)."""
        ...

    async def save_problems(self, job_id: str, problems: Sequence[Mapping[str, Any]]) -> None: ...

    async def problems(self, job_id: str) -> list[Doc]: ...

    async def save_file(self, job_id: str, data: bytes) -> None:
        """The marked copy of a failed upload."""
        ...

    async def file(self, job_id: str) -> bytes | None: ...

    async def abandoned(self) -> list[Doc]:
        """Jobs not finished whose owner stopped renewing their lease."""
        ...
