"""The repair sweep: claims left by a dead process settled, places owed to a waitlist given (one replica at a time)."""

from __future__ import annotations

import asyncio
import logging

from .ports import Storage
from .signups import fill

log = logging.getLogger("stvs.activities")


async def repair(storage: Storage) -> int:
    """One pass of the repair sweep (one replica at a time, leased): settle the claims of dead processes and give
    free places owed to a waitlist; returns how many it settled or promoted."""
    if not await storage.repair_turn():
        return 0
    done = await storage.settle_stale_claims()
    for activity_id in await storage.activities_owing_places():
        done += len(await fill(storage, activity_id))
    return done


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
