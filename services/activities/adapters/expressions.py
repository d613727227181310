"""The use cases' premises and queries in MongoDB's terms: filters and aggregation expressions (``$expr``), so that
the database itself decides whether a decision still holds when its write applies, whatever the number of replicas.
"""

from __future__ import annotations

import re
from typing import Any

from services.activities.domain import (
    ActivityStatus,
    BatchFits,
    NoPlaceFree,
    PlaceFree,
    PlaceLeft,
    Places,
    SignUpStatus,
    WithinCapacity,
)
from services.activities.domain.search import SIGNABLE, TERM_CHARS
from services.activities.usecases.ports import ActivityQuery, DemandQuery, Premise
from shared.messaging.outbox import OUTBOX, OUTBOX_N

CONFIRMED, WAITLISTED = SignUpStatus.CONFIRMED, SignUpStatus.WAITLISTED
PENDING = "pending"
CLAIM = "claim"
# Heavy or internal parts left out of what is read.
DECISION = {OUTBOX: 0, OUTBOX_N: 0}  # what a decision reads of an activity (its pending sign-up changes included)
LISTING_EXCLUDE = {PENDING: 0, OUTBOX: 0, OUTBOX_N: 0}
SIGNUP_EXCLUDE = {OUTBOX: 0, OUTBOX_N: 0}


def counted(status: SignUpStatus) -> dict[str, Any]:
    """Aggregation expression: the activity's counter of sign-ups in ``status``."""
    return {"$ifNull": [f"$counts.{status.value}", 0]}


PLACE_LEFT = {"$lt": [counted(CONFIRMED), "$capacity"]}
PLACE_FREE = {"$and": [PLACE_LEFT, {"$eq": [counted(WAITLISTED), 0]}]}  # a place nobody on the waitlist is owed


def batch_premise(confirmed: int, waitlisted: int) -> dict[str, Any] | None:
    """What must hold of the activity when ``confirmed`` newcomers take places and then ``waitlisted`` join the
    waitlist (decided in that order, first come first served): the same answers as on the counters read
    (:class:`BatchFits`)."""
    places_left = {"$subtract": ["$capacity", counted(CONFIRMED)]}
    nobody_waits = {"$eq": [counted(WAITLISTED), 0]}
    if confirmed and waitlisted:
        return {"$and": [{"$eq": [places_left, confirmed]}, nobody_waits]}
    if confirmed:
        return {"$and": [{"$gte": [places_left, confirmed]}, nobody_waits]}
    if waitlisted:
        return {"$not": [{"$and": [{"$gt": [places_left, 0]}, nobody_waits]}]}
    return None


def places_expr(places: Places | None) -> dict[str, Any] | None:
    """A condition on the activity's places as an aggregation expression (None: no condition)."""
    if places is None:
        return None
    if isinstance(places, PlaceFree):
        return PLACE_FREE
    if isinstance(places, NoPlaceFree):
        return {"$not": [PLACE_FREE]}
    if isinstance(places, PlaceLeft):
        return PLACE_LEFT
    if isinstance(places, WithinCapacity):
        return {"$lte": [counted(CONFIRMED), places.capacity]}
    assert isinstance(places, BatchFits)
    return batch_premise(places.confirmed, places.waitlisted)


def premise_filter(activity_id: str, premise: Premise) -> dict[str, Any]:
    """The filter of a conditional write on the activity: its id, the fields unchanged, the places' condition."""
    found: dict[str, Any] = {"_id": activity_id, **premise.unchanged}
    expr = places_expr(premise.places)
    if expr is not None:
        found["$expr"] = expr
    return found


NOT_DRAFT = sorted(s.value for s in ActivityStatus if s is not ActivityStatus.DRAFT)
SIGNABLE_VALUES = sorted(s.value for s in SIGNABLE)


def word_condition(word: str) -> dict[str, Any] | None:
    """A keyword word longer than a term: the word itself in one of the texts, checked on the activities its terms
    found (``ids_in``); a shorter one is its own term, nothing more to check."""
    if len(word) <= TERM_CHARS:
        return None
    pattern = {"$regex": re.escape(word), "$options": "i"}
    return {"$or": [{"title": pattern}, {"description": pattern}, {"place": pattern}]}


def _window(low: Any, high: Any) -> dict[str, Any]:
    return {k: v for k, v in (("$gte", low), ("$lt", high)) if v is not None}


def activities_filter(query: ActivityQuery) -> dict[str, Any]:
    """The listing's filter: every condition in one ``$and``, in the order of their usual selectivity (the
    activities a keyword's terms found, a skill, an exact unit, a set of units, theme, line of work, the dates, the
    status), so that a server that reads the first indexed condition (SecantusDB) reads the narrowest, and mongod's
    planner has an index for each. Drafts are asked by their units or by the other statuses named (``$in``), never
    by a negation."""
    conditions: list[dict[str, Any]] = []
    if query.ids_in is not None:
        conditions.append({"_id": {"$in": sorted(query.ids_in)}})
    for word in query.words:
        check = word_condition(word)
        if check is not None:
            conditions.append(check)
    if query.skill is not None:
        conditions.append({"skills_wanted": query.skill})
    if query.unit_id is not None:
        conditions.append({"unit_id": query.unit_id})
    if query.units_in is not None:
        conditions.append({"unit_id": {"$in": sorted(query.units_in)}})
    if query.theme is not None:
        conditions.append({"themes": query.theme})
    if query.line_of_work is not None:
        conditions.append({"line_of_work": query.line_of_work})
    if query.starts_from is not None or query.starts_before is not None:
        conditions.append({"starts_at": _window(query.starts_from, query.starts_before)})
    if query.ends_after is not None:
        conditions.append({"ends_at": {"$gt": query.ends_after}})
    if query.signup_open_at is not None:
        conditions.append({"signup_opens_at": {"$lte": query.signup_open_at}})
        conditions.append({"signup_closes_at": {"$gt": query.signup_open_at}})
        conditions.append({"status": {"$in": SIGNABLE_VALUES}})
    if query.status is not None:
        conditions.append({"status": query.status})
    if query.drafts_of is not None:
        published = {"status": {"$in": NOT_DRAFT}}
        if query.drafts_of:
            conditions.append({"$or": [{"unit_id": {"$in": sorted(query.drafts_of)}}, published]})
        else:
            conditions.append(published)
    if query.exclude:
        conditions.append({"_id": {"$nin": sorted(query.exclude)}})
    if not conditions:
        return {}
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def demands_filter(query: DemandQuery) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if query.unit_ids is not None:
        found["unit_id"] = {"$in": sorted(query.unit_ids)}
    if query.status is not None:
        found["status"] = query.status
    return found
