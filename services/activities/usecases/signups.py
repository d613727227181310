"""Use cases of sign-ups: sign up (group-committed), cancel (the place goes to the head of the waitlist), approve
or reject, fill free places from the waitlist, the roster."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.activities import domain
from services.activities.domain import (
    ActivityNotFound,
    NoPlaceFree,
    PlaceFree,
    PlaceLeft,
    Places,
    SignUpNotFound,
    SignUpStatus,
)
from shared import clock
from shared.aggregates import Contended, backoff
from shared.contracts.envelope import Envelope
from shared.contracts.events import Event, SignUpCancelled, SignUpConfirmed, VolunteerSignedUp
from shared.identity import Identity
from shared.scope import Reach

from .batches import SignUpBatches
from .common import (
    ATTEMPTS,
    REFUSALS,
    RUNNING,
    SignUpDecision,
    claimed_for,
    commit_or_refuse,
    require_running,
    reread,
)
from .ports import Change, Claim, Decide, Premise, Record, Storage
from .records import (
    VERSION,
    SignUpEntry,
    bump,
    count_of,
    envelope,
    no_counts,
    signup_entry,
    to_activity,
    to_signup,
)
from .scope import Acting, acting_reach, acting_volunteer, can_see, masked_outside, require_admin_of

CONFIRMED, WAITLISTED = SignUpStatus.CONFIRMED, SignUpStatus.WAITLISTED


def premise_of(status: SignUpStatus) -> Places | None:
    """What must still hold of the activity's places when a sign-up is committed with ``status``."""
    if status is CONFIRMED:
        return PlaceFree()
    if status is WAITLISTED:
        return NoPlaceFree()
    return None


@dataclass
class SignedUp:
    """A sign-up as committed, and its place on the waitlist (None: not waitlisted)."""

    entry: SignUpEntry
    waitlist_position: int | None


def signup_decision(claim: Claim, reach: Reach, by: Acting) -> Decide:
    """The decision of one sign-up on the activity as counted so far (see :data:`ports.Decide`)."""
    prior = claim.status
    activity_id, volunteer_id = claim.activity_id, claim.volunteer_id

    def decide(doc: Mapping[str, Any], volunteer: Record | None) -> tuple[Change, SignUpStatus | None, SignUpStatus]:
        if by == "admin":
            require_admin_of(reach, doc["unit_id"])
        elif not can_see(reach, doc):
            raise ActivityNotFound()
        known = volunteer is not None and "status" in volunteer
        active = volunteer is not None and volunteer.get("status") == "active" and bool(volunteer.get("unit_ids"))
        now = clock.now()
        status = domain.decide_signup(
            to_activity(doc),
            now=now,
            volunteer_known=known,
            volunteer_active=active,
            already_signed=prior is not None and prior.is_active,
            confirmed_count=count_of(doc, CONFIRMED),
            waitlisted_count=count_of(doc, WAITLISTED),
        )
        fields = {
            "activity_id": activity_id,
            "volunteer_id": volunteer_id,
            "status": status.value,
            "signed_up_at": now,
            "display_name": volunteer.get("display_name") if volunteer else None,
            "by": by,
        }
        data = VolunteerSignedUp(
            activity_id=activity_id, volunteer_id=volunteer_id, status=status.value, signed_up_at=now
        )
        return Change(claim, fields, [envelope(data, activity_id)], sequence=True), prior, status

    return decide


async def sign_up(
    storage: Storage, batches: SignUpBatches, activity_id: str, identity: Identity, volunteer_id: str | None
) -> SignedUp:
    """Confirmed while a place is free and nobody waits, else waitlisted (or pending approval), first come first
    served; decided with the other sign-ups of the activity arriving meanwhile (:class:`SignUpBatches`)."""
    volunteer_id, by = acting_volunteer(identity, volunteer_id)
    reach = await acting_reach(storage, identity, volunteer_id, by)
    claim = await storage.claim(activity_id, volunteer_id)
    try:
        outcome = await batches.submit(claim, signup_decision(claim, reach, by))
    except REFUSALS:
        await storage.release(claim)
        raise
    committed = outcome.committed
    entry = signup_entry({**outcome.change.fields, **committed.fields[volunteer_id]})
    if outcome.waitlist_position is not None and committed.count(CONFIRMED) < int(committed.doc["capacity"]):
        await fill(storage, activity_id)  # a place is owed to the waitlist (a promotion left unfinished)
    return SignedUp(entry, outcome.waitlist_position)


def promotion(head: Claim, activity_id: str, now: datetime) -> Change:
    data = SignUpConfirmed(activity_id=activity_id, volunteer_id=head.volunteer_id, confirmed_at=now, reason="promoted")
    return Change(head, {"status": CONFIRMED.value, "confirmed_at": now}, [envelope(data, activity_id)])


def owes_places(activity: Record | None) -> bool:
    return (
        activity is not None
        and activity["status"] in RUNNING
        and count_of(activity, CONFIRMED) < int(activity["capacity"])
    )


async def fill(storage: Storage, activity_id: str) -> list[str]:
    """Promote waitlisted sign-ups into the free places, earliest first; returns who moved up.

    One conditional write per promotion (a place still free when it applies), so replicas filling at once never
    promote more than there are places, and the head of the waitlist is always the one promoted.
    """
    promoted: list[str] = []
    failures = 0
    while failures < ATTEMPTS:
        activity = await storage.activity(activity_id)
        if activity is None or not owes_places(activity):
            return promoted
        head = await storage.claim_waitlist_head(activity)
        if head == "none":
            return promoted
        if head == "retry":
            failures += 1
            await backoff(failures)
            continue
        change = promotion(head, activity_id, clock.now())
        unchanged = {VERSION: activity.get(VERSION), "counts.pending_approval": count_of(activity, domain.PENDING)}
        try:
            committed = await storage.commit(
                activity_id, [change], premise=Premise(unchanged, PlaceLeft()), inc=bump((WAITLISTED.value, CONFIRMED))
            )
        except Contended:
            await storage.release(head)
            raise
        if committed is None:
            await storage.release(head)
            failures += 1
            await backoff(failures)
            continue
        await storage.finish(committed, [change])
        promoted.append(head.volunteer_id)
    return promoted


async def _head_for(storage: Storage, doc: Record, unchanged: dict[str, Any]) -> tuple[Claim | None, Record]:
    """Claim the head of the waitlist to take a confirmed place being given up (None: nobody waits)."""
    for attempt in range(ATTEMPTS):
        head = await storage.claim_waitlist_head(doc)
        if head == "none":
            return None, doc
        if head != "retry":
            return head, doc
        doc = await reread(storage, doc["_id"], attempt) or doc
        unchanged[VERSION] = doc.get(VERSION)
    raise Contended("activities", doc["_id"], ATTEMPTS)


@dataclass
class Cancelled:
    """A cancelled sign-up (masked as the caller may see it) and who moved up into its place."""

    entry: SignUpEntry
    promoted: list[str]


async def cancel(storage: Storage, activity_id: str, volunteer_id: str, identity: Identity) -> Cancelled:
    """Cancelled by the volunteer or an organiser; a confirmed place goes to the head of the waitlist in the same
    write (nobody else can take it meanwhile)."""
    _, by = acting_volunteer(identity, volunteer_id)
    reach = await storage.reach(identity)
    claim, activity = await claimed_for(storage, activity_id, volunteer_id)
    promoted: list[str] = []

    async def decide(doc: Record) -> SignUpDecision:
        if by == "admin":
            require_admin_of(reach, doc["unit_id"])
        require_running(doc, "取消报名")
        if claim.status is None:
            raise SignUpNotFound()
        cancelled, now = domain.cancel_signup(to_signup(claim.doc)), clock.now()
        data = SignUpCancelled(activity_id=activity_id, volunteer_id=volunteer_id, cancelled_at=now, by=by)
        changes = [
            Change(claim, {"status": cancelled.status.value, "cancelled_at": now}, [envelope(data, activity_id)])
        ]
        moves: list[tuple[str | None, SignUpStatus]] = [(claim.doc["status"], SignUpStatus.CANCELLED)]
        unchanged: dict[str, Any] = {VERSION: doc.get(VERSION)}
        promoted.clear()
        if claim.status is CONFIRMED:
            head, doc = await _head_for(storage, doc, unchanged)
            if head is not None:
                changes.append(promotion(head, activity_id, now))
                moves.append((WAITLISTED.value, CONFIRMED))
                unchanged["counts.pending_approval"] = count_of(doc, domain.PENDING)
                promoted.append(head.volunteer_id)
            else:
                unchanged["counts.waitlisted"] = 0  # nobody waited: the place is free for the next sign-up
        return SignUpDecision(changes, Premise(unchanged), bump(*moves), {"updated_at": now})

    committed, changes = await commit_or_refuse(storage, claim, activity, decide)
    await storage.finish(committed, changes)
    if committed.count(WAITLISTED) and committed.count(CONFIRMED) < int(committed.doc["capacity"]):
        promoted += await fill(storage, activity_id)
    (record,) = await masked_outside(storage, reach, [{**claim.doc, "status": SignUpStatus.CANCELLED.value}])
    return Cancelled(signup_entry(record), promoted)


def review_decision(claim: Claim, doc: Record, approve: bool, now: datetime) -> tuple[domain.SignUp, list[Event]]:
    """An approval (a place if one is free and nobody waits, else the waitlist) or a rejection, with its events."""
    signup = to_signup(claim.doc)
    activity_id, volunteer_id = claim.activity_id, claim.volunteer_id
    if not approve:
        data = SignUpCancelled(activity_id=activity_id, volunteer_id=volunteer_id, cancelled_at=now, by="admin")
        return domain.reject_signup(signup), [data]
    decided = domain.approve_signup(
        signup,
        capacity=int(doc["capacity"]),
        confirmed_count=count_of(doc, CONFIRMED),
        waitlisted_count=count_of(doc, WAITLISTED),
    )
    if decided.status is not CONFIRMED:
        return decided, []
    return decided, [
        SignUpConfirmed(activity_id=activity_id, volunteer_id=volunteer_id, confirmed_at=now, reason="approved")
    ]


async def review(
    storage: Storage, activity_id: str, volunteer_id: str, identity: Identity, approve: bool
) -> SignUpEntry:
    """A sign-up waiting for approval, approved or rejected by an organiser (the answer masked for the caller)."""
    reach = await storage.reach(identity)
    claim, activity = await claimed_for(storage, activity_id, volunteer_id)
    fields: dict[str, Any] = {}

    def decide(doc: Record) -> SignUpDecision:
        require_admin_of(reach, doc["unit_id"])
        require_running(doc, "审核报名")
        if claim.status is None:
            raise SignUpNotFound()
        now = clock.now()
        decided, events = review_decision(claim, doc, approve, now)
        fields.clear()
        fields.update({"status": decided.status.value, "reviewed_at": now, "reviewed_by": identity.subject})
        places = premise_of(decided.status) if approve else None
        envelopes: list[Envelope[Any]] = [envelope(e, activity_id) for e in events]
        premise = Premise({VERSION: doc.get(VERSION)}, places)
        return SignUpDecision([Change(claim, fields, envelopes)], premise, bump((claim.doc["status"], decided.status)))

    committed, changes = await commit_or_refuse(storage, claim, activity, decide)
    await storage.finish(committed, changes)
    (record,) = await masked_outside(storage, reach, [{**claim.doc, **fields}])
    return signup_entry(record)


@dataclass
class Roster:
    """An activity's sign-ups in order of arrival (names masked for the caller), with places on the waitlist, and
    the activity's counters."""

    counts: dict[str, int]
    items: list[SignUpEntry]
    waitlist_positions: dict[str, int]


async def roster(storage: Storage, activity_id: str, status: str | None, identity: Identity) -> Roster:
    doc = await storage.activity(activity_id)
    if doc is None:
        raise ActivityNotFound()
    reach = await storage.reach(identity)
    require_admin_of(reach, doc["unit_id"], read=True)
    entries = await storage.roster(doc)
    waiting = domain.waitlist_order(to_signup(d) for d in entries)
    positions = {s.volunteer_id: i for i, s in enumerate(waiting, start=1)}
    items = await masked_outside(storage, reach, (d for d in entries if status in (None, d["status"])))
    counts = {**no_counts(), **(doc.get("counts") or {})}
    return Roster(counts, [signup_entry(i) for i in items], positions)
