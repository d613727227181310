"""Sign-ups on MongoDB's guarantees (the claim → commit → finish steps of the storage port): no lock, no memory of
this process decides anything.

The activity document holds the counters, ``next_seq`` and ``roster_v``; each sign-up is its own document
(``_id = "<activity id>|<volunteer id>"``, see :mod:`.mongo`).

A change of sign-ups is taken in three steps, each one atomic write, so that any number of replicas may run:

1. **claim** each sign-up document it changes (``claim: {token, at}``, set only where there is none: one holder at a
   time, so the holder decides on a state nobody else changes; a new sign-up inserts its document with the claim);
2. **commit** on the activity: ONE conditional ``findAndModify`` (an update pipeline) that checks the premises of the
   decision in its filter (the version of the terms, a free place, the waitlist...), moves the counters, takes the
   next sequence number, and records each sign-up's change (new fields and events, packed as one value) as
   ``pending.<volunteer id>`` with the claim's token. This write IS the decision: capacity and order are decided by
   the database, one write at a time, whatever the number of replicas;
3. **apply**: copy the change into the sign-up document with its events in its outbox and drop the claim (one
   write, only where the claim is still that token, so it happens once), then remove the ``pending`` entry.

The activity document stays a few dozen fields (a packed value per change under way, no sign-up events in its
outbox): the server rewrites the whole document on every write, and its cost grows with the number of fields
(measured on SecantusDB: ~400 writes/s on a small document, ~60/s with 30 pending entries of ~10 fields each).

A process that dies in between leaves a claim older than :data:`CLAIM_TTL`: whoever meets it (the next operation on
that sign-up, or the repair sweep) settles it — applies the committed decision, or voids an uncommitted one (the
``pending`` entry then names the token as void, which the dead process's commit can no longer pass).
Readers overlay the ``pending`` entries of the activity (read first) on the sign-up documents (read after): a
decision committed but not yet applied is seen as taken.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

from bson import decode as decode_bson
from bson import encode as encode_bson
from bson.codec_options import CodecOptions
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.activities.domain import SignUpStatus
from services.activities.usecases.ports import Change, Claim, Committed, Premise
from shared.aggregates import Contended, backoff
from shared.contracts.envelope import Envelope, parse_envelope
from shared.messaging.outbox import OUTBOX, OUTBOX_N, Outbox
from shared.storage import Doc, utcnow

from .expressions import CLAIM, PENDING, SIGNUP_EXCLUDE, premise_filter

ACTIVITIES = "activities"
SIGNUPS = "signups"
ROSTER_V = "roster_v"
CLAIM_TTL = timedelta(seconds=120)  # a claim this old was left by a dead process (a request gives up long before)
CLAIM_WAIT_S = 20.0  # how long a request waits for another request's claim on the same sign-up


def signup_id(activity_id: str, volunteer_id: str) -> str:
    return f"{activity_id}|{volunteer_id}"


def add(path: str, delta: int) -> dict[str, Any]:
    """Pipeline expression: the numeric field ``path`` (0 when absent) plus ``delta``."""
    return {"$add": [{"$ifNull": [f"${path}", 0]}, delta]}


def literal(value: Any) -> dict[str, Any]:
    return {"$literal": value}


def pack(fields: Mapping[str, Any], events: Sequence[Envelope[Any]]) -> bytes:
    """A change as one BSON value (the activity document keeps one field per change under way)."""
    return encode_bson({"set": dict(fields), "events": [e.dump_json() for e in events]})


def unpack(entry: Mapping[str, Any]) -> tuple[Doc, list[Envelope[Any]]]:
    """The fields (with the sequence number the commit took) and the events of a committed change."""
    raw: Doc = decode_bson(entry["change"], codec_options=CodecOptions(tz_aware=True))
    fields: Doc = dict(raw["set"])
    if "sequence" in entry:
        fields["sequence"] = entry["sequence"]
    return fields, [parse_envelope(str(e).encode()) for e in raw["events"]]


class ClaimedSignUps:
    """The sign-up documents of the activities, changed by claim → commit → apply."""

    def __init__(self, db: AsyncDatabase[Doc], outbox: Outbox, *, claim_ttl: timedelta = CLAIM_TTL) -> None:
        self.db = db
        self.outbox = outbox
        self.claim_ttl = claim_ttl

    async def get(self, collection: str, doc_id: str, projection: Mapping[str, Any] | None = None) -> Doc | None:
        return await self.db[collection].find_one({"_id": doc_id}, projection)

    # -- step 1: claims
    async def try_claim(self, activity_id: str, volunteer_id: str) -> Claim | Doc:
        """Claim the sign-up document (inserting it when there is none); the holder's document when it is held."""
        sid = signup_id(activity_id, volunteer_id)
        token, at = uuid.uuid4().hex, utcnow()
        col = self.db[SIGNUPS]
        try:
            doc = await col.find_one_and_update(
                {"_id": sid, CLAIM: {"$exists": False}},
                {
                    "$set": {CLAIM: {"token": token, "at": at}},
                    "$setOnInsert": {"activity_id": activity_id, "volunteer_id": volunteer_id},
                },
                projection=SIGNUP_EXCLUDE,
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            doc = None
        if doc is None or (doc.get(CLAIM) or {}).get("token") != token:  # held by someone else
            held = await col.find_one({"_id": sid}, {CLAIM: 1})
            return held or {}  # gone meanwhile: an empty "holder" makes the caller try again
        return Claim(activity_id, volunteer_id, token, at, doc)

    async def claim(self, activity_id: str, volunteer_id: str) -> Claim:
        """Claim the sign-up document, waiting for another holder (a live one finishes well within
        :data:`CLAIM_WAIT_S`, however slow the database is at the moment); a dead holder's claim is settled."""
        deadline = time.monotonic() + CLAIM_WAIT_S
        attempt = 0
        while True:
            got = await self.try_claim(activity_id, volunteer_id)
            if isinstance(got, Claim):
                return got
            await self.settle_if_stale(activity_id, volunteer_id, got)
            if time.monotonic() > deadline:
                raise Contended(SIGNUPS, signup_id(activity_id, volunteer_id), attempt + 1)
            await backoff(min(attempt, 5))
            attempt += 1

    async def settle_if_stale(self, activity_id: str, volunteer_id: str, holder: Mapping[str, Any]) -> bool:
        claim = holder.get(CLAIM)
        if claim and claim["at"] < utcnow() - self.claim_ttl:
            await self.settle(activity_id, volunteer_id, claim["token"])
            return True
        return False

    async def release(self, claim: Claim) -> None:
        """Give a claim up without a change (a refused request); a document made only for the claim goes."""
        sid = signup_id(claim.activity_id, claim.volunteer_id)
        await self._release(sid, claim.token)

    async def _release(self, sid: str, token: str) -> None:
        col = self.db[SIGNUPS]
        deleted = await col.delete_one({"_id": sid, "claim.token": token, "status": {"$exists": False}})
        if not deleted.deleted_count:
            await col.update_one({"_id": sid, "claim.token": token}, {"$unset": {CLAIM: ""}})

    # -- step 2: the commit on the activity
    async def commit(
        self,
        activity_id: str,
        changes: Sequence[Change],
        *,
        premise: Premise,
        inc: Mapping[str, int] | None = None,
        sets: Mapping[str, Any] | None = None,
    ) -> Committed | None:
        """Commit a decision on the activity in one conditional write; None when its premise no longer holds, so the
        caller decides again.

        Each change (its fields and its events) is recorded in the activity as one packed value: the activity stays
        a few dozen fields whatever the traffic, and every write of it stays cheap."""
        for change in changes:
            if change.claim.at < utcnow() - self.claim_ttl / 2:  # fencing: a settler may take an older claim over
                raise Contended(SIGNUPS, signup_id(activity_id, change.claim.volunteer_id), 1)
        filter_ = premise_filter(activity_id, premise)
        for change in changes:
            filter_[f"{PENDING}.{change.claim.volunteer_id}.token"] = {"$ne": change.claim.token}
        first: dict[str, Any] = {ROSTER_V: add(ROSTER_V, 1)}
        sequenced = sum(1 for c in changes if c.sequence)
        if sequenced:
            first["next_seq"] = add("next_seq", sequenced)
        for path, delta in (inc or {}).items():
            first[path] = add(path, delta)
        for path, value in (sets or {}).items():
            first[path] = literal(value)
        now = utcnow()
        second: dict[str, Any] = {}
        taken = 0
        for change in changes:
            entry: dict[str, Any] = {
                "token": literal(change.claim.token),
                "at": literal(now),
                "change": literal(pack(change.fields, change.events)),
            }
            if change.sequence:  # the numbers taken, in the order of the changes (``next_seq`` is the last one)
                taken += 1
                entry["sequence"] = {"$add": ["$next_seq", taken - sequenced]}
            second[f"{PENDING}.{change.claim.volunteer_id}"] = entry
        # Back comes the activity as the commit left it, but its pending changes and outbox (heavy): the next
        # decision of a batch of sign-ups starts from it. The sequence numbers taken end at ``next_seq``.
        doc = await self.db[ACTIVITIES].find_one_and_update(
            filter_,
            [{"$set": first}, {"$set": second}],
            projection={PENDING: 0, OUTBOX: 0, OUTBOX_N: 0},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        committed = Committed(doc)
        number = int(doc["next_seq"]) - sequenced
        for change in changes:
            fields = dict(change.fields)
            if change.sequence:
                number += 1
                fields["sequence"] = number
            committed.fields[change.claim.volunteer_id] = fields
        return committed

    # -- step 3: apply
    async def apply(
        self,
        activity_id: str,
        volunteer_id: str,
        token: str,
        fields: Mapping[str, Any],
        events: Sequence[Envelope[Any]],
    ) -> None:
        """Copy a committed decision into its sign-up document with its events (once: only while the claim is that
        token), then drop the activity's pending entry."""
        await self.outbox.update_one(
            SIGNUPS,
            {"_id": signup_id(activity_id, volunteer_id), "claim.token": token},
            {"$set": dict(fields), "$unset": {CLAIM: ""}},
            events,
        )
        await self.db[ACTIVITIES].update_one(
            {"_id": activity_id, f"{PENDING}.{volunteer_id}.token": token},
            {"$unset": {f"{PENDING}.{volunteer_id}": ""}},
        )

    async def apply_entry(self, activity_id: str, volunteer_id: str, entry: Mapping[str, Any]) -> None:
        fields, events = unpack(entry)
        await self.apply(activity_id, volunteer_id, entry["token"], fields, events)

    async def finish(self, committed: Committed, changes: Sequence[Change]) -> None:
        """Apply committed changes: one bulk write of their sign-up documents, then one write dropping their
        ``pending`` entries (entry by entry where someone else, a settler, already applied one of them)."""
        if len(changes) == 1 or any(not change.events for change in changes):
            for change in changes:
                claim = change.claim
                fields = committed.fields[claim.volunteer_id]
                await self.apply(claim.activity_id, claim.volunteer_id, claim.token, fields, change.events)
            return
        activity_id = changes[0].claim.activity_id
        await self.outbox.update_each(
            SIGNUPS,
            [
                (
                    {"_id": signup_id(activity_id, c.claim.volunteer_id), "claim.token": c.claim.token},
                    {"$set": dict(committed.fields[c.claim.volunteer_id]), "$unset": {CLAIM: ""}},
                    c.events,
                )
                for c in changes
            ],
        )
        tokens = {f"{PENDING}.{c.claim.volunteer_id}.token": c.claim.token for c in changes}
        dropped = await self.db[ACTIVITIES].update_one(
            {"_id": activity_id, **tokens}, {"$unset": {f"{PENDING}.{c.claim.volunteer_id}": "" for c in changes}}
        )
        if not dropped.matched_count:
            for change in changes:
                await self.db[ACTIVITIES].update_one(
                    {"_id": activity_id, f"{PENDING}.{change.claim.volunteer_id}.token": change.claim.token},
                    {"$unset": {f"{PENDING}.{change.claim.volunteer_id}": ""}},
                )

    async def settle(self, activity_id: str, volunteer_id: str, token: str) -> None:
        """Finish what a dead holder of this claim left: apply its committed decision, or void it and release."""
        for _ in range(3):
            doc = await self.get(ACTIVITIES, activity_id, {f"{PENDING}.{volunteer_id}": 1})
            entry = ((doc or {}).get(PENDING) or {}).get(volunteer_id)
            if entry is not None and entry["token"] == token:
                if not entry.get("void"):
                    await self.apply_entry(activity_id, volunteer_id, entry)
                    return
                break
            voided = await self.db[ACTIVITIES].update_one(
                {"_id": activity_id, f"{PENDING}.{volunteer_id}.token": {"$ne": token}},
                {"$set": {f"{PENDING}.{volunteer_id}": {"token": token, "void": True, "at": utcnow()}}},
            )
            if voided.matched_count or doc is None:
                break
        await self._release(signup_id(activity_id, volunteer_id), token)

    # -- reading the roster: sign-up documents with the decisions committed but not yet applied
    @staticmethod
    def overlay(activity: Mapping[str, Any], doc: Doc) -> Doc:
        entry = (activity.get(PENDING) or {}).get(doc.get("volunteer_id"))
        if entry and not entry.get("void") and (doc.get(CLAIM) or {}).get("token") == entry["token"]:
            return {**doc, **unpack(entry)[0]}
        return doc

    async def roster(self, activity: Mapping[str, Any]) -> list[Doc]:
        """Every sign-up of an activity in order of arrival. ``activity`` must have been read before this call."""
        cursor = self.db[SIGNUPS].find({"activity_id": activity["_id"]}, SIGNUP_EXCLUDE)
        docs = [self.overlay(activity, d) async for d in cursor]
        return sorted((d for d in docs if "status" in d), key=lambda d: int(d["sequence"]))

    async def signup(self, activity: Mapping[str, Any], volunteer_id: str) -> Doc | None:
        doc = await self.get(SIGNUPS, signup_id(activity["_id"], volunteer_id), SIGNUP_EXCLUDE)
        doc = None if doc is None else self.overlay(activity, doc)
        return doc if doc is not None and "status" in doc else None

    async def waitlist_head(self, activity: Mapping[str, Any]) -> Doc | None:
        """The earliest waitlisted sign-up (committed decisions included). ``activity`` read before this call."""
        pending = activity.get(PENDING) or {}
        col = self.db[SIGNUPS]
        filter_ = {"activity_id": activity["_id"], "status": SignUpStatus.WAITLISTED.value}
        found = {
            d["_id"]: d async for d in col.find(filter_, SIGNUP_EXCLUDE).sort("sequence", 1).limit(len(pending) + 1)
        }
        ids = [signup_id(activity["_id"], v) for v in pending if signup_id(activity["_id"], v) not in found]
        if ids:
            found.update({d["_id"]: d async for d in col.find({"_id": {"$in": ids}}, SIGNUP_EXCLUDE)})
        waiting = [
            d
            for d in (self.overlay(activity, d) for d in found.values())
            if d.get("status") == SignUpStatus.WAITLISTED.value
        ]
        return min(waiting, key=lambda d: int(d["sequence"]), default=None)

    async def stale_claims(self, limit: int = 1_000) -> list[Doc]:
        cutoff = utcnow() - self.claim_ttl
        cursor = self.db[SIGNUPS].find({"claim.at": {"$lt": cutoff}}, {"activity_id": 1, "volunteer_id": 1, CLAIM: 1})
        return [d async for d in cursor.limit(limit)]

    async def claim_waitlist_head(self, activity: Doc) -> Claim | Literal["none", "retry"]:
        """Claim the earliest waitlisted sign-up of ``activity`` (as read): the next one a free place goes to."""
        if int((activity.get("counts") or {}).get(SignUpStatus.WAITLISTED.value, 0)) == 0:
            return "none"
        head = await self.waitlist_head(activity)
        if head is None:  # counted, but its document not visible yet: read again
            return "retry"
        volunteer_id = head["volunteer_id"]
        got = await self.try_claim(activity["_id"], volunteer_id)
        if not isinstance(got, Claim):
            # Held: by its own sign-up, committed and being applied (help it along), by a dead process (settled), or
            # by another change under way (wait for it).
            entry = (activity.get(PENDING) or {}).get(volunteer_id)
            token = (got.get(CLAIM) or {}).get("token")
            if entry and not entry.get("void") and entry["token"] == token:
                await self.apply_entry(activity["_id"], volunteer_id, entry)
            else:
                await self.settle_if_stale(activity["_id"], volunteer_id, got)
            return "retry"
        if got.status is not SignUpStatus.WAITLISTED or got.doc.get("sequence") != head["sequence"]:
            await self.release(got)  # changed since it was read
            return "retry"
        return got

    async def settle_stale_claims(self) -> int:
        """Settle every claim left by a dead process; returns how many."""
        stale = await self.stale_claims()
        for doc in stale:
            await self.settle(doc["activity_id"], doc["volunteer_id"], doc[CLAIM]["token"])
        return len(stale)
