"""Finding activities (``GET /activities``): keyword, a unit and everything below it, a city, dates, theme, line of
work and skill, paged and sorted; a volunteer sees the activities open to them first.

The listing is one query of the storage port (:class:`ActivityQuery`, indexed in ``adapters.mongo``); a keyword
first finds the activities that have the first term of each of its words (:meth:`Storage.with_terms`). For a
volunteer the page is two queries laid end to end: the activities open to them (:func:`open_to`: sign-up open now,
not yet signed up, organised by one of their units or a unit above — at most :data:`OPEN_FIRST_MAX`, in the order
asked), then every other match in the same order. The total counts both; paging runs over the whole sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.activities.domain import ActivitySort, keyword_words, mentions, signup_open
from services.activities.domain.search import SIGNABLE, lookup_term
from shared import clock
from shared.identity import Identity

from .ports import ActivityQuery, Record, Storage
from .records import ActivityRecord, activity_record
from .scope import drafts_visible

OPEN_FIRST_MAX = 100  # open activities put first; beyond these, the others come in the order asked
_SORTS: dict[ActivitySort, tuple[str, int]] = {
    ActivitySort.START: ("starts_at", 1),
    ActivitySort.PUBLISHED: ("published_at", -1),
    ActivitySort.NEAREST: ("starts_at", 1),
}


@dataclass(frozen=True)
class Listing:
    """What a listing asks for (the caller's reach decides which drafts it shows). ``unit_id``: that unit only;
    ``under``: a unit and every unit below it; ``city``: the units of a city (a code of ``shared.programme``);
    ``keyword``: words in the title, description or place; ``skill``: one of the skills the activity asks for."""

    unit_id: str | None = None
    status: str | None = None
    line_of_work: str | None = None
    theme: str | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    keyword: str | None = None
    under: str | None = None
    city: str | None = None
    skill: str | None = None
    sort: ActivitySort = ActivitySort.START
    open_first: bool = True


@dataclass(frozen=True)
class Found:
    """A page of the listing, its total, and which activities of the page are open to the calling volunteer."""

    total: int
    records: list[ActivityRecord]
    open_ids: frozenset[str] = frozenset()


async def units_asked(storage: Storage, listing: Listing) -> frozenset[str] | None:
    """The organising units a listing is limited to (None: any unit)."""
    units: frozenset[str] | None = None
    if listing.under:
        units = await storage.units_below(listing.under)
    if listing.city:
        city = await storage.city_units(listing.city)
        units = city if units is None else units & city
    return units


async def query_of(storage: Storage, listing: Listing, identity: Identity) -> ActivityQuery | None:
    """The storage query of a listing for this caller; None when nothing can match. A volunteer's listing without a
    status is of published activities; drafts only for the admins of the organising unit or above."""
    status = listing.status
    if status is None and identity.role == "volunteer":
        status = "published"
    drafts = drafts_visible(await storage.reach(identity), listing.unit_id, listing.status)
    units = await units_asked(storage, listing)
    words = keyword_words(listing.keyword)
    ids = await storage.with_terms(sorted({lookup_term(w) for w in words})) if words else None
    if drafts == "none" or (units is not None and not units) or (ids is not None and not ids):
        return None
    return ActivityQuery(
        ids_in=ids,
        unit_id=listing.unit_id,
        status=status,
        line_of_work=listing.line_of_work,
        theme=listing.theme,
        starts_from=listing.starts_from,
        starts_before=listing.starts_before,
        drafts_of=drafts,
        units_in=units,
        words=words,
        skill=(listing.skill or "").strip() or None,
        ends_after=clock.now() if listing.sort is ActivitySort.NEAREST else None,
        sort=_SORTS[listing.sort],
    )


async def volunteer_units(storage: Storage, volunteer_id: str) -> frozenset[str]:
    """The volunteer's units and every unit above them (from the local copies); none while the volunteer is not
    active (sign-up refuses them)."""
    copy = (await storage.volunteers([volunteer_id])).get(volunteer_id) or {}
    if copy.get("status") != "active":
        return frozenset()
    found: set[str] = set()
    for unit in copy.get("unit_ids") or []:
        found |= {unit, *await storage.unit_ancestors(unit)}
    return frozenset(found)


async def open_to(storage: Storage, query: ActivityQuery, volunteer_id: str) -> list[Record]:
    """The activities of the listing open to the volunteer, in the listing's order (at most OPEN_FIRST_MAX)."""
    if query.status is not None and query.status not in SIGNABLE:
        return []
    theirs = await volunteer_units(storage, volunteer_id)
    units = theirs if query.units_in is None else theirs & query.units_in
    if not units:
        return []
    open_query = replace(query, units_in=units, signup_open_at=clock.now())
    _, docs = await storage.find_activities(open_query, 0, OPEN_FIRST_MAX)
    taken = await storage.signed_up(volunteer_id, [d["_id"] for d in docs])
    return [d for d in docs if d["_id"] not in taken]


async def find(storage: Storage, listing: Listing, identity: Identity, offset: int, limit: int) -> Found:
    """A page of the listing; for a volunteer (``open_first``) the activities open to them come first."""
    query = await query_of(storage, listing, identity)
    if query is None:
        return Found(0, [])
    first: list[Record] = []
    if identity.role == "volunteer" and identity.volunteer_id and listing.open_first:
        first = await open_to(storage, query, identity.volunteer_id)
    if not first:
        total, docs = await storage.find_activities(query, offset, limit)
        return Found(total, [activity_record(d) for d in docs])
    ids = frozenset(d["_id"] for d in first)
    page = first[offset : offset + limit]
    wanted = limit - len(page)
    rest_total, rest = await storage.find_activities(
        replace(query, exclude=ids), max(0, offset - len(first)), max(wanted, 1)
    )
    docs = page + rest[:wanted]
    return Found(len(first) + rest_total, [activity_record(d) for d in docs], frozenset(d["_id"] for d in page))


# ---- the rule itself, on one stored activity (what the storage's query must find; the in-memory storage uses it)


def matches(query: ActivityQuery, doc: Mapping[str, Any]) -> bool:
    """Whether the stored activity ``doc`` is one the query asks for."""
    equal = {"unit_id": query.unit_id, "status": query.status, "line_of_work": query.line_of_work}
    if any(v is not None and doc.get(k) != v for k, v in equal.items()):
        return False
    texts = (doc.get("title", ""), doc.get("description", ""), doc.get("place", ""))
    checks = (
        query.ids_in is None or doc["_id"] in query.ids_in,
        all(mentions(w, texts) for w in query.words),
        query.skill is None or query.skill in (doc.get("skills_wanted") or ()),
        query.theme is None or query.theme in (doc.get("themes") or ()),
        query.units_in is None or doc.get("unit_id") in query.units_in,
        query.starts_from is None or doc["starts_at"] >= query.starts_from,
        query.starts_before is None or doc["starts_at"] < query.starts_before,
        query.ends_after is None or doc["ends_at"] > query.ends_after,
        query.signup_open_at is None
        or signup_open(doc["status"], doc["signup_opens_at"], doc["signup_closes_at"], query.signup_open_at),
        query.drafts_of is None or doc["status"] != "draft" or doc["unit_id"] in query.drafts_of,
        doc["_id"] not in query.exclude,
    )
    return all(checks)


def sort_key(query: ActivityQuery, doc: Mapping[str, Any]) -> tuple[Any, ...]:
    """The order of the listing (ascending; a descending sort reverses it), missing values lowest."""
    value = doc.get(query.sort[0])
    return (value is not None, value if value is not None else 0, doc["_id"])
