"""Projecting the streams (units, volunteers, activities, reports) into the read models, a chunk at a time.

Each chunk is one transaction of the storage port: it reads, in the transaction's snapshot, which of its events were
applied already and the records the decision needs; decides in the domain (:func:`..domain.projection.decide`);
and saves the merged effects with the ids of the events it applied. A chunk is written whole or not at all; when
two members apply the same events (a rebalance), one transaction loses, runs again on a fresh snapshot, finds the
events applied and writes nothing for them: nothing counts twice, nothing is lost, no process memory decides.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from services.reporting.domain.projection import CHUNK_WRITES, HANDLED, MARKED, VOLUNTEER_EVENTS, Known, chunks, decide
from shared.contracts.envelope import Envelope
from shared.contracts.events import UnitRegistered, UnitUpdated

from .ports import ProjectionStore, ProjectionWrite

log = logging.getLogger("stvs.reporting.projections")


class ProjectEvents:
    """The projection's use case, over one storage port (used by the service and by the replay command)."""

    def __init__(self, store: ProjectionStore, *, chunk_writes: int = CHUNK_WRITES) -> None:
        self.store = store
        self.chunk_writes = chunk_writes

    async def handle(self, env: Envelope[Any]) -> None:
        """One event (the consumer's per-event path, used when a batch failed)."""
        await self.apply([env])

    async def apply(self, envs: Sequence[Envelope[Any]]) -> None:
        """Apply events (in delivery order): idempotent, whoever else applies them too, whenever."""
        unique: dict[str, Envelope[Any]] = {}
        for env in envs:
            if isinstance(env.data, HANDLED):
                unique.setdefault(env.id, env)  # the same event twice in one poll counts once
        for chunk in chunks(list(unique.values()), self.chunk_writes):
            await self.store.in_transaction(functools.partial(self.decide_and_save, chunk))

    async def decide_and_save(self, envs: Sequence[Envelope[Any]], tx: ProjectionWrite) -> None:
        """One chunk in one transaction: read what deciding needs, decide, save."""
        marked = [e.id for e in envs if isinstance(e.data, MARKED)]
        volunteers = list(dict.fromkeys(e.data.volunteer_id for e in envs if isinstance(e.data, VOLUNTEER_EVENTS)))
        units = list(dict.fromkeys(e.data.unit_id for e in envs if isinstance(e.data, UnitRegistered | UnitUpdated)))
        known = Known(
            applied=await tx.applied(marked) if marked else set(),
            memberships=await tx.memberships(volunteers) if volunteers else {},
            units=await tx.unit_versions(units) if units else {},
        )
        decision = decide(envs, known)
        for activity_id in decision.uncounted:
            log.warning("publicity of activity %s without its start: people served not counted", activity_id)
        await tx.save(decision)
