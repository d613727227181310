"""The delivery queue on MongoDB (``usecases.ports.DeliveryStore``): ``deliveries`` holds pending work only; a worker
claims an entry (``claimed_by``, ``claimed_until``) with one ``find_one_and_update`` before it sends, so two
replicas never send the same notice; ``parked`` keeps a paused subscriber's deliveries until it is resumed."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.domain.notices import EMAIL, PAUSED, PENDING, WEBHOOK
from shared import clock
from shared.storage import Doc, utcnow

from .mongo import CLAIM_FIELDS, DELIVERIES, NOTIFICATIONS, PARKED, SUBSCRIPTIONS, park, unpark


def _claimable() -> Doc:
    """Filter part: no claim, or an expired one (wall clock: claims are bookkeeping, not programme time)."""
    return {"$or": [{"claimed_until": None}, {"claimed_until": {"$lte": utcnow()}}]}


class MongoDelivery:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db

    async def webhook_lanes(self, now: datetime) -> dict[Any, list[Doc]]:
        lanes: dict[Any, list[Doc]] = {}
        query = {"channel": WEBHOOK, "next_attempt_at": {"$lte": now}}
        async for entry in self.db[DELIVERIES].find(query).sort([("next_attempt_at", ASCENDING)]):
            if entry.get("subscription_id") is not None:
                lanes.setdefault(entry["subscription_id"], []).append(entry)
        return lanes

    async def subscriptions(self, ids: Sequence[Any]) -> dict[Any, Doc]:
        return {d["_id"]: d async for d in self.db[SUBSCRIPTIONS].find({"_id": {"$in": list(ids)}})}

    async def subscription(self, sub_id: Any) -> Doc | None:
        return await self.db[SUBSCRIPTIONS].find_one({"_id": sub_id})

    async def mail_candidates(self, now: datetime, limit: int) -> list[Any]:
        query = {"channel": EMAIL, "next_attempt_at": {"$lte": now}, **_claimable()}
        cursor = self.db[DELIVERIES].find(query, {"_id": 1}).sort([("next_attempt_at", ASCENDING)]).limit(limit)
        return [d["_id"] async for d in cursor]

    async def claim_entry(self, entry_id: Any, now: datetime, claimer: str, until: datetime) -> bool:
        found = await self.db[DELIVERIES].find_one_and_update(
            {"_id": entry_id, "next_attempt_at": {"$lte": now}, **_claimable()},
            {"$set": {"claimed_by": claimer, "claimed_until": until}},
            {"_id": 1},
        )
        return found is not None

    async def unclaim_entry(self, entry_id: Any, claimer: str) -> None:
        with contextlib.suppress(Exception):
            await self.db[DELIVERIES].update_one(
                {"_id": entry_id, "claimed_by": claimer}, {"$unset": dict.fromkeys(CLAIM_FIELDS, "")}
            )

    async def notification(self, note_id: Any) -> Doc | None:
        return await self.db[NOTIFICATIONS].find_one({"_id": note_id})

    async def notices_by_id(self, ids: Sequence[Any]) -> dict[Any, Doc]:
        return {d["_id"]: d async for d in self.db[NOTIFICATIONS].find({"_id": {"$in": list(ids)}})}

    async def dequeue(self, ids: Sequence[Any]) -> None:
        if len(ids) == 1:
            await self.db[DELIVERIES].delete_one({"_id": ids[0]})
        elif ids:
            await self.db[DELIVERIES].delete_many({"_id": {"$in": list(ids)}})

    async def finish(self, note_id: Any, fields: Doc) -> None:
        # Never over a final outcome (sent, failed) another worker wrote meanwhile.
        await self.db[NOTIFICATIONS].update_one(
            {"_id": note_id, "outcome": {"$in": [PENDING, PAUSED]}}, {"$set": fields}
        )

    async def count_attempt(self, note_id: Any, attempts: int, error: str) -> None:
        await self.db[NOTIFICATIONS].update_one(
            {"_id": note_id, "outcome": PENDING},
            {"$set": {"attempts": attempts, "last_error": error, "updated_at": clock.now()}},
        )

    async def retry(self, note_id: Any, attempts: int, error: str, at: datetime) -> None:
        await self.db[NOTIFICATIONS].update_one(
            {"_id": note_id, "outcome": PENDING},
            {"$set": {"attempts": attempts, "last_error": error, "next_attempt_at": at, "updated_at": clock.now()}},
        )
        # Due again later, and free for any worker then (the claim is given up).
        await self.db[DELIVERIES].update_one(
            {"_id": note_id}, {"$set": {"next_attempt_at": at}, "$unset": dict.fromkeys(CLAIM_FIELDS, "")}
        )

    async def update_subscription(self, sub_id: Any, fields: Doc) -> None:
        await self.db[SUBSCRIPTIONS].update_one({"_id": sub_id}, {"$set": fields})

    async def pause_subscription(self, sub_id: Any, fields: Doc) -> bool:
        result = await self.db[SUBSCRIPTIONS].update_one({"_id": sub_id, "status": "active"}, {"$set": fields})
        return bool(result.modified_count)

    async def park(self, entries: list[Doc], reason: str) -> int:
        return await park(self.db, entries, reason)

    async def unpark(self, sub_id: Any) -> int:
        return await unpark(self.db, sub_id)

    async def parked_owners(self) -> set[Any]:
        return {d.get("subscription_id") async for d in self.db[PARKED].find({}, {"subscription_id": 1})}

    async def drop_parked(self, sub_id: Any, reason: str) -> None:
        gone = [d async for d in self.db[PARKED].find({"subscription_id": sub_id})]
        for entry in gone:
            note = await self.db[NOTIFICATIONS].find_one({"_id": entry["_id"]}, {"attempts": 1})
            if note is not None:
                fields = {"outcome": PAUSED, "attempts": int(note.get("attempts", 0)), "next_attempt_at": None}
                await self.finish(note["_id"], {**fields, "updated_at": clock.now(), "last_error": reason})
                await self.dequeue([note["_id"]])
        await self.db[PARKED].delete_many({"_id": {"$in": [d["_id"] for d in gone]}})
