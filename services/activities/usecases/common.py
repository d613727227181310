"""The two ways the activities' use cases change state, over the storage port (no lock, no memory of this process):

- a change of the activity itself (publish, start, complete, cancel, revise, publicity) is read, decided by the rules
  in ``domain`` and written conditionally on the version it read (:func:`change_activity`), its events in the same
  write; a decision that depends on the sign-ups is also conditional on the roster's version;
- a change of sign-ups (sign-up, cancellation with the promotion it causes, approval, check-in/out, corrections) is
  decided by ONE conditional write on the activity (capacity, order of arrival, counters and events together) after
  claiming the sign-up records it changes, then applied to them (:func:`claimed_for`, :func:`commit_or_refuse`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.activities.domain import (
    Activity,
    ActivityError,
    ActivityNotFound,
    ActivityNotOpen,
    ActivityStatus,
    Places,
)
from shared import clock
from shared.aggregates import VERSION, Contended, backoff
from shared.contracts.envelope import Envelope
from shared.identity import Identity

from .ports import Change, Claim, Committed, Premise, Record, Storage
from .records import ROSTER_V, to_activity
from .scope import require_admin_of

ATTEMPTS = 32
RUNNING = (ActivityStatus.PUBLISHED.value, ActivityStatus.ONGOING.value)


@dataclass
class Decision:
    """A decision on the activity itself: its changed fields, events, and what else must still hold."""

    changes: dict[str, Any]
    events: list[Envelope[Any]] = field(default_factory=list)
    unchanged: dict[str, Any] = field(default_factory=dict)
    places: Places | None = None


@dataclass
class SignUpDecision:
    """A decision on sign-ups: the changes of the claimed records and the commit's premise and counter moves."""

    changes: list[Change]
    premise: Premise
    inc: Mapping[str, int] | None = None
    sets: Mapping[str, Any] | None = None


def require_running(doc: Mapping[str, Any], action: str) -> None:
    status = ActivityStatus(doc["status"])
    if status not in (ActivityStatus.PUBLISHED, ActivityStatus.ONGOING):
        raise ActivityNotOpen(status, action)


def roster_unchanged(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The condition of a decision taken on the sign-ups read with ``doc``: nobody's sign-up changed meanwhile."""
    return {ROSTER_V: doc.get(ROSTER_V)}


async def change_activity(
    storage: Storage,
    activity_id: str,
    identity: Identity,
    decide: Callable[[Record, Activity], Awaitable[Decision]],
) -> Record:
    """Read, decide and write one activity conditionally on the version it was read at (and on whatever else the
    decision names: the roster's version when it read the sign-ups); decided again after a concurrent change."""
    reach = await storage.reach(identity)
    for attempt in range(ATTEMPTS):
        doc = await storage.activity(activity_id)
        if doc is None:
            raise ActivityNotFound()
        require_admin_of(reach, doc["unit_id"])
        decision = await decide(doc, to_activity(doc))
        changes = {**decision.changes, "updated_at": clock.now()}
        premise = Premise({VERSION: doc.get(VERSION), **decision.unchanged}, decision.places)
        if await storage.save_activity(activity_id, changes, decision.events, premise):
            changed = await storage.activity(activity_id, pending=False)
            assert changed is not None
            return changed
        await backoff(attempt)
    raise Contended("activities", activity_id, ATTEMPTS)


async def reread(storage: Storage, activity_id: str, attempt: int) -> Record | None:
    """The activity again after a commit found its premises changed (after a short, jittered pause)."""
    await backoff(attempt)
    return await storage.activity(activity_id)


async def claimed_for(storage: Storage, activity_id: str, volunteer_id: str) -> tuple[Claim, Record | None]:
    """Claim the volunteer's sign-up record and read the activity at the same time."""
    results = await asyncio.gather(
        storage.claim(activity_id, volunteer_id), storage.activity(activity_id), return_exceptions=True
    )
    claim, activity = results
    if isinstance(claim, BaseException):
        raise claim
    if isinstance(activity, BaseException):
        await storage.release(claim)
        raise activity
    return claim, activity


# Refusals after which a claim is given back unchanged. Anything else (the database unreachable in the middle of a
# commit...) leaves the claim: the commit may have happened, and the claim's settlement will find out.
REFUSALS = (ActivityError, Contended)

DecideSignUps = Callable[[Record], Awaitable[SignUpDecision] | SignUpDecision]


async def commit_or_refuse(
    storage: Storage, claim: Claim, activity: Record | None, decide: DecideSignUps
) -> tuple[Committed, Sequence[Change]]:
    """Decide on the activity and commit; decided again on a fresh read while a premise moved. A refusal gives the
    claims back."""
    changes: Sequence[Change] = []
    try:
        for attempt in range(ATTEMPTS):
            if activity is None:
                raise ActivityNotFound()
            decided = decide(activity)
            decision = await decided if isinstance(decided, Awaitable) else decided
            changes = decision.changes
            committed = await storage.commit(
                claim.activity_id, changes, premise=decision.premise, inc=decision.inc, sets=decision.sets
            )
            if committed is not None:
                return committed, changes
            for change in changes:
                if change.claim is not claim:  # a second claim (the waitlist's head) is chosen again
                    await storage.release(change.claim)
            activity = await reread(storage, claim.activity_id, attempt)
        raise Contended("activities", claim.activity_id, ATTEMPTS)
    except REFUSALS:
        for change in changes:
            if change.claim is not claim:
                await storage.release(change.claim)
        await storage.release(claim)
        raise
