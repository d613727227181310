"""The ports the use cases depend on: storage of the read models and of this service's own records, the registry,
and the renderers of documents. `adapters/` implements them on MongoDB, HTTP, xlsxwriter, reportlab and SVG; the
use-case tests implement them in memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from services.reporting.domain.projection import Decision, Membership, Record, UnitVersion
from shared.contracts.envelope import Envelope
from shared.identity import Identity


class ProjectionWrite(Protocol):
    """One chunk's transaction: read what deciding needs (in its snapshot), then save the decision whole."""

    async def applied(self, event_ids: Sequence[str]) -> set[str]: ...

    async def memberships(self, volunteer_ids: Sequence[str]) -> dict[str, Membership]: ...

    async def unit_versions(self, unit_ids: Sequence[str]) -> dict[str, UnitVersion]: ...

    async def save(self, decision: Decision) -> None: ...


class ProjectionStore(Protocol):
    """The read models as the projection writes them."""

    async def in_transaction(self, work: Callable[[ProjectionWrite], Awaitable[None]]) -> None:
        """Run ``work`` all or nothing, again on a fresh snapshot when another writer got there first."""
        ...

    async def drop(self) -> None:
        """Forget every projection (a replay rebuilds them)."""
        ...


class ReadModels(Protocol):
    """The read models as the queries read them (records as :mod:`..domain.projection` describes them)."""

    async def province_id(self) -> str | None: ...

    async def unit(self, unit_id: str) -> Record | None: ...

    async def all_units(self) -> dict[str, Record]:
        """Every unit with a snapshot, by id."""
        ...

    async def subtree_units(self, root_id: str) -> dict[str, Record]:
        """The unit and every unit below it, those with a snapshot, by id."""
        ...

    async def year_figures(self, year: int, unit_ids: Sequence[str] | None) -> dict[str, Record]:
        """``unit_stats`` of these units (None: every unit) for the year, by unit id."""
        ...

    async def month_figures(self, month: str, unit_ids: Sequence[str] | None) -> dict[str, Record]:
        """``month_stats`` of these units (None: every unit) for the month, by unit id."""
        ...

    async def volunteer(self, volunteer_id: str) -> tuple[Record | None, Record]:
        """The volunteer's membership record (None: not registered yet) and its hours record (empty: none)."""
        ...


class AlreadyRecorded(Exception):
    """A record with this id exists already."""


class SubmissionStore(Protocol):
    """Submitted reports (this service's own records; the event goes out with the record, through the outbox)."""

    async def add(self, doc: Record, event: Envelope[Any]) -> None:
        """Store a submission and its event together; :class:`AlreadyRecorded` if it was submitted before."""
        ...

    async def get(self, submission_id: str) -> Record | None: ...

    async def update(self, submission_id: str, expected: Record, fields: Record, event: Envelope[Any]) -> bool:
        """Set ``fields`` with the event, if the record still has the ``expected`` values (None: the field is
        absent); False when it changed in between (nothing written, no event)."""
        ...

    async def of_period(self, kind: str, period: str, unit_ids: Sequence[str] | None) -> dict[str, Record]:
        """The reports of one kind and period of these units (None: of every unit), by unit id."""
        ...


class CertificateStore(Protocol):
    async def add(self, certificate: Record) -> None: ...

    async def get(self, number: str) -> Record | None: ...


class Registry(Protocol):
    """The registry service, asked as the caller (it decides by its own rules whether the caller may see this)."""

    async def masked_id_number(self, identity: Identity, volunteer_id: str) -> str: ...


class Documents(Protocol):
    """Renderers of the service's documents."""

    def compliance_xlsx(self, table: Mapping[str, Any]) -> bytes: ...

    def monthly_xlsx(self, report: Mapping[str, Any]) -> bytes: ...

    def certificate_pdf(self, certificate: Mapping[str, Any]) -> bytes: ...

    def headcount_svg(self, rows: Sequence[Mapping[str, Any]]) -> str: ...

    def quota_heatmap_svg(self, rows: Sequence[Mapping[str, Any]], quarters: Sequence[int], year: int) -> str: ...
