"""The storage port of the activities' use cases: what they need of storage, in their own terms.

A record is one stored activity, sign-up, volunteer copy or demand as a mapping of its fields (the shapes are in
:mod:`.records`). A change of sign-ups is taken in three steps, each one atomic write, so that any number of replicas
may run: **claim** each sign-up record it changes (one holder at a time), **commit** the decision on the activity in
ONE conditional write (its :class:`Premise` checked by the storage itself), then **finish**: copy each change into
its sign-up record with its events. ``adapters.mongo`` implements the port on MongoDB; the use-case tests use an
in-memory one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from services.activities.domain import Places, SignUpStatus
from shared.contracts.envelope import Envelope
from shared.identity import Identity
from shared.scope import Reach

Record = dict[str, Any]


@dataclass
class Claim:
    """A sign-up record held by this operation: nobody else changes it until the claim is applied or released."""

    activity_id: str
    volunteer_id: str
    token: str
    at: datetime
    doc: Record  # the record as claimed: stable while the claim is held (no ``status``: no sign-up yet)

    @property
    def status(self) -> SignUpStatus | None:
        raw = self.doc.get("status")
        return None if raw is None else SignUpStatus(raw)


@dataclass
class Change:
    """What a decision writes into one claimed sign-up record, with the events that announce it (``sequence``: it
    takes the next order of arrival)."""

    claim: Claim
    fields: Record
    events: Sequence[Envelope[Any]] = ()
    sequence: bool = False


@dataclass
class Committed:
    """The activity's counters right after a commit, and each changed sign-up's fields as committed."""

    doc: Record
    fields: dict[str, Record] = field(default_factory=dict)

    def count(self, status: SignUpStatus) -> int:
        return int((self.doc.get("counts") or {}).get(status.value, 0))


@dataclass(frozen=True)
class Premise:
    """What must still hold of the activity when a decision is written: fields (dotted paths) unchanged since the
    read (its version, the roster's version, a counter, the totals...), and a condition on its places."""

    unchanged: Mapping[str, Any]
    places: Places | None = None


@dataclass(frozen=True)
class ActivityQuery:
    """A listing of activities; every given condition holds. ``drafts_of``: the units whose drafts the caller may
    see (None: every unit's). ``units_in``: the organising unit is one of these (a subtree, a city's units, a
    volunteer's own units and those above). ``words``: each is in the title, description or place (looked up by
    its first term). ``signup_open_at``: sign-up is open at that moment. ``ends_after``: not over by then.
    ``exclude``: these activities are left out; ``ids_in``: only these (the ones a keyword's terms found).
    ``sort``: the field and direction (then ``_id``)."""

    unit_id: str | None = None
    status: str | None = None
    line_of_work: str | None = None
    theme: str | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    drafts_of: frozenset[str] | None = None
    units_in: frozenset[str] | None = None
    words: tuple[str, ...] = ()
    skill: str | None = None
    signup_open_at: datetime | None = None
    ends_after: datetime | None = None
    exclude: frozenset[str] = frozenset()
    ids_in: frozenset[str] | None = None
    sort: tuple[str, int] = ("starts_at", 1)


@dataclass(frozen=True)
class DemandQuery:
    """A listing of demands. ``unit_ids``: the units whose demands are listed (None: all)."""

    unit_ids: frozenset[str] | None = None
    status: str | None = None


Decide = Callable[[Mapping[str, Any], Record | None], tuple[Change, SignUpStatus | None, SignUpStatus]]
"""One sign-up's decision on the activity as counted so far and its volunteer's local copy: the change, its
status before (None: a new sign-up) and after. Raises a refusal."""

DecideDemand = Callable[[Record | None], tuple[Record, Sequence[Envelope[Any]]]]
"""A demand's change on the demand as read: the fields to set and the events; raises a refusal."""


class Storage(Protocol):
    """Activities, sign-ups (claim → commit → finish), the local copies (volunteers, the unit tree), demands."""

    # -- activities and demands
    async def activity(self, activity_id: str, *, pending: bool = True) -> Record | None: ...

    async def insert_activity(self, record: Record) -> None: ...

    async def save_activity(
        self, activity_id: str, changes: Mapping[str, Any], events: Sequence[Envelope[Any]], premise: Premise
    ) -> bool: ...

    async def find_activities(self, query: ActivityQuery, offset: int, limit: int) -> tuple[int, list[Record]]: ...

    async def save_terms(self, activity_id: str, terms: Sequence[str], *, only_new: bool = False) -> None: ...

    async def activities_after(self, after: str | None, limit: int) -> list[Record]: ...

    async def migrated(self, name: str) -> bool: ...

    async def mark_migrated(self, name: str) -> None: ...

    async def with_terms(self, terms: Sequence[str]) -> frozenset[str]: ...

    async def units_below(self, unit_id: str) -> frozenset[str]: ...

    async def city_units(self, city: str) -> frozenset[str]: ...

    async def signed_up(self, volunteer_id: str, activity_ids: Sequence[str]) -> frozenset[str]: ...

    async def demand(self, demand_id: str) -> Record | None: ...

    async def insert_demand(self, record: Record, events: Sequence[Envelope[Any]]) -> None: ...

    async def change_demand(self, demand_id: str, decide: DecideDemand) -> None: ...

    async def find_demands(self, query: DemandQuery, offset: int, limit: int) -> tuple[int, list[Record]]: ...

    # -- the local copies: who the caller reaches, volunteers
    async def reach(self, identity: Identity) -> Reach: ...

    async def unit_ancestors(self, unit_id: str) -> list[str]: ...

    async def volunteers(self, volunteer_ids: Sequence[str]) -> dict[str, Record]: ...

    async def apply_volunteer(self, volunteer_id: str, version: int, change: Mapping[str, Any]) -> bool: ...

    # -- sign-ups: claim → commit → finish
    async def claim(self, activity_id: str, volunteer_id: str) -> Claim: ...

    async def release(self, claim: Claim) -> None: ...

    async def claim_waitlist_head(self, activity: Record) -> Claim | Literal["none", "retry"]: ...

    async def commit(
        self,
        activity_id: str,
        changes: Sequence[Change],
        *,
        premise: Premise,
        inc: Mapping[str, int] | None = None,
        sets: Mapping[str, Any] | None = None,
    ) -> Committed | None: ...

    async def finish(self, committed: Committed, changes: Sequence[Change]) -> None: ...

    async def roster(self, activity: Record) -> list[Record]: ...

    async def signup(self, activity: Record, volunteer_id: str) -> Record | None: ...

    # -- repair: claims of dead processes, places owed to a waitlist
    async def repair_turn(self) -> bool: ...

    async def settle_stale_claims(self) -> int: ...

    async def activities_owing_places(self) -> list[str]: ...
