"""The repair sweep: claims left by a dead process settled, places owed to a waitlist given, and once the keyword
terms of the activities written before they existed (one replica at a time)."""

from __future__ import annotations

import asyncio
import logging

from services.activities import domain

from .ports import Storage
from .signups import fill

TERMS_MIGRATION = "activity_terms_v1"
BATCH = 500

log = logging.getLogger("stvs.activities")


async def repair(storage: Storage) -> int:
    """One pass of the repair sweep (one replica at a time, leased): settle the claims of dead processes and give
    free places owed to a waitlist; returns how many it settled or promoted."""
    if not await storage.repair_turn():
        return 0
    done = await backfill_terms(storage)
    done += await storage.settle_stale_claims()
    for activity_id in await storage.activities_owing_places():
        done += len(await fill(storage, activity_id))
    return done


async def backfill_terms(storage: Storage) -> int:
    """Once: the keyword terms of every activity that has none (those written before search existed), a page at a
    time in ``_id`` order; terms a revision wrote meanwhile are kept. Returns how many activities it went through."""
    if await storage.migrated(TERMS_MIGRATION):
        return 0
    after: str | None = None
    seen = 0
    while batch := await storage.activities_after(after, BATCH):
        for doc in batch:
            terms = domain.search_terms(doc.get("title", ""), doc.get("description", ""), doc.get("place", ""))
            await storage.save_terms(doc["_id"], terms, only_new=True)
        seen += len(batch)
        after = str(batch[-1]["_id"])
    await storage.mark_migrated(TERMS_MIGRATION)
    log.info("activities: keyword terms written for %d activities", seen)
    return seen


async def repair_loop(storage: Storage, interval_s: float) -> None:
    """The repair sweep every ``interval_s`` while the service runs."""
    while True:
        try:
            await repair(storage)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("activities repair sweep failed", exc_info=True)
        await asyncio.sleep(interval_s)
