"""Answers about ID numbers registered outside the caller's scope: bounded per account and day, and recorded.

A registration (one at a time, or a 附件2 upload, dry run or not) whose ID number is already registered in a unit
the caller does not manage is told only "已在其他单位注册": no platform number, no unit. Still, each such answer
says that a number exists, so an account gets at most ``id_lookup_daily_limit`` of them per day (a counter in
MongoDB, so every replica shares it; 429 when exceeded), and each is recorded in ``id_lookups`` (who, role, unit,
when, how many, what for; kept 200 days) for the audit log to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.registry.domain.errors import QuotaExceededError
from shared import clock
from shared.identity import Identity
from shared.storage import Indexes

ID_LOOKUPS = "id_lookups"  # one record per answer given (TTL 200 days)
ID_LOOKUP_QUOTA = "id_lookup_quota"  # one counter per account and day
EXPORTS = "exports"  # one record per export of personal data (附件2), full numbers or masked (TTL 200 days)
RECORD_DAYS = 200


def indexes(ix: Indexes) -> None:
    ix.add(ID_LOOKUPS, "at", expire_after_s=RECORD_DAYS * 24 * 3600)
    ix.add(ID_LOOKUPS, "subject", "at")
    ix.add(ID_LOOKUP_QUOTA, "expires_at", expire_after_s=0)
    ix.add(EXPORTS, "at", expire_after_s=RECORD_DAYS * 24 * 3600)
    ix.add(EXPORTS, "subject", "at")


@dataclass(frozen=True)
class IdLookups:
    db: Any
    daily_limit: int

    async def charge(self, identity: Identity, count: int, *, purpose: str, unit_id: str | None) -> None:
        """Count ``count`` answers against the caller's day and record them; QuotaExceededError (answered 429,
        recorded as refused) when they would exceed the limit, and then nothing of them is answered."""
        if count <= 0:
            return
        now = clock.now()
        key = f"{identity.subject}:{now.date().isoformat()}"
        allowed = count <= self.daily_limit
        if allowed:
            try:  # one conditional $inc: replicas and concurrent uploads share the counter
                await self.db[ID_LOOKUP_QUOTA].find_one_and_update(
                    {"_id": key, "count": {"$lte": self.daily_limit - count}},
                    {"$inc": {"count": count}, "$setOnInsert": {"expires_at": now + timedelta(days=2)}},
                    upsert=True,
                )
            except DuplicateKeyError:  # the day's counter exists and has no room left: the upsert collided
                allowed = False
        await self.db[ID_LOOKUPS].insert_one(
            {
                "subject": identity.subject,
                "role": identity.role,
                "unit_id": identity.unit_id,
                "target_unit_id": unit_id,
                "purpose": purpose,
                "count": count,
                "refused": not allowed,
                "at": now,
            }
        )
        if not allowed:
            raise QuotaExceededError(self.daily_limit)

    async def record_export(
        self, identity: Identity, *, form: str, unit_id: str | None, full_ids: bool, reason: str | None, rows: int
    ) -> None:
        """An export of personal data, recorded before the file leaves (no record, no file)."""
        await self.db[EXPORTS].insert_one(
            {
                "subject": identity.subject,
                "role": identity.role,
                "unit_id": identity.unit_id,
                "form": form,
                "target_unit_id": unit_id,
                "full_ids": full_ids,
                "reason": reason,
                "rows": rows,
                "at": clock.now(),
            }
        )
