"""The use cases' premises and queries in MongoDB's terms: filters and aggregation expressions (``$expr``), so that
the database itself decides whether a decision still holds when its write applies, whatever the number of replicas.
"""

from __future__ import annotations

from typing import Any

from services.activities.domain import (
    BatchFits,
    NoPlaceFree,
    PlaceFree,
    PlaceLeft,
    Places,
    SignUpStatus,
    WithinCapacity,
)
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


def activities_filter(query: ActivityQuery) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if query.unit_id is not None:
        found["unit_id"] = query.unit_id
    if query.status is not None:
        found["status"] = query.status
    if query.line_of_work is not None:
        found["line_of_work"] = query.line_of_work
    if query.theme is not None:
        found["themes"] = query.theme
    window: dict[str, Any] = {}
    if query.starts_from is not None:
        window["$gte"] = query.starts_from
    if query.starts_before is not None:
        window["$lt"] = query.starts_before
    if window:
        found["starts_at"] = window
    if query.drafts_of is not None:
        published = {"status": {"$ne": "draft"}}
        if query.drafts_of:
            found["$or"] = [{"unit_id": {"$in": sorted(query.drafts_of)}}, published]
        elif "status" in found:
            found["$and"] = [published]
        else:
            found.update(published)
    return found


def demands_filter(query: DemandQuery) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if query.unit_ids is not None:
        found["unit_id"] = {"$in": sorted(query.unit_ids)}
    if query.status is not None:
        found["status"] = query.status
    return found
