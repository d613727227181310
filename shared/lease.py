"""Leases: at most one replica does a singleton job (outbox sweep, deadline scan) at a time.

A lease is one document claimed with an atomic findAndModify; it expires on its own when its holder dies.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.storage import Doc, utcnow

LEASES = "_leases"


class Lease:
    def __init__(self, db: AsyncDatabase[Doc], name: str, ttl_s: float, holder: str | None = None) -> None:
        self._col = db[LEASES]
        self.name = name
        self.ttl = timedelta(seconds=ttl_s)
        self.holder = holder or uuid.uuid4().hex

    async def acquire(self) -> bool:
        """Claim or renew the lease; True when this holder has it until ``now + ttl``."""
        now = utcnow()
        try:
            await self._col.insert_one({"_id": self.name, "holder": self.holder, "until": now + self.ttl})
            return True
        except DuplicateKeyError:
            pass
        doc = await self._col.find_one_and_update(
            {"_id": self.name, "$or": [{"until": {"$lt": now}}, {"holder": self.holder}]},
            {"$set": {"holder": self.holder, "until": now + self.ttl}},
            return_document=ReturnDocument.AFTER,
        )
        return doc is not None and doc.get("holder") == self.holder

    async def release(self) -> None:
        await self._col.update_one(
            {"_id": self.name, "holder": self.holder}, {"$set": {"until": utcnow() - timedelta(seconds=1)}}
        )
