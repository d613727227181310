"""Group commit of sign-ups: the sign-ups of one activity that arrive together in this process are decided in their
order of arrival and committed in ONE conditional write on the activity, then applied in one bulk write.

At rest a sign-up goes alone, at once (no waiting to fill a batch). While a commit is under way, the sign-ups arriving
for the same activity queue up and form the next batch. A batch costs the same handful of round trips as one sign-up
(read the activity, read the volunteers, commit, apply, drop the pending entries), so under a burst the database sees
a few writes per batch instead of five per sign-up, and the activity document, which every sign-up must change, is
written once per batch.

Nothing here decides alone: the commit is the same conditional ``findAndModify`` as for one sign-up
(:meth:`Storage.commit`), its premise covering the whole batch (:class:`BatchFits`), so replicas batching at the
same time never confirm more than the places; a premise that moved meanwhile makes the batch be decided again on a
fresh read. A process that dies mid-batch leaves claims and pending entries that are settled as for one sign-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field

from services.activities.domain import ActivityError, ActivityNotFound, BatchFits, SignUpStatus
from shared.aggregates import VERSION, Contended, backoff

from .ports import Change, Claim, Committed, Decide, Premise, Record, Storage
from .records import bump, count_of

CONFIRMED, WAITLISTED = SignUpStatus.CONFIRMED, SignUpStatus.WAITLISTED
ATTEMPTS = 32  # decisions of one batch on a fresh read before giving up (contended)
IN_FLIGHT = 4  # batches being applied while the next is committed
BATCH_LIMIT = 200  # sign-ups committed in one write at most (the activity record holds their pending entries)


@dataclass
class Outcome:
    """A committed sign-up: the activity's counters after the commit, its change, its place on the waitlist."""

    committed: Committed
    change: Change
    waitlist_position: int | None


@dataclass
class _Request:
    claim: Claim
    decide: Decide
    future: asyncio.Future[Outcome] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass
class _Decided:
    request: _Request
    change: Change
    before: SignUpStatus | None
    after: SignUpStatus


async def _nothing() -> None:
    return None


class SignUpBatches:
    """The sign-ups of this process, batched per activity."""

    def __init__(self, storage: Storage, *, limit: int = BATCH_LIMIT) -> None:
        self.storage = storage
        self.limit = limit
        self._queues: dict[str, list[_Request]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, claim: Claim, decide: Decide) -> Outcome:
        """Decide and commit the claimed sign-up with the others of its activity arriving meanwhile; raises its
        refusal (the claim is the caller's to give back)."""
        request = _Request(claim, decide)
        queue = self._queues.get(claim.activity_id)
        if queue is None:
            self._queues[claim.activity_id] = [request]
            task = asyncio.create_task(self._drain(claim.activity_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            queue.append(request)
        return await asyncio.shield(request.future)

    async def _drain(self, activity_id: str) -> None:
        """Commit batches while sign-ups of the activity wait (the queue exists exactly while this runs). A batch is
        applied while the next one is decided and committed (at most :data:`IN_FLIGHT` applying at once)."""
        applying: set[asyncio.Task[None]] = set()
        room = asyncio.Semaphore(IN_FLIGHT)
        activity: Record | None = None  # as the last commit left it: the next batch starts from it
        batch: list[_Request] = []
        try:
            while queue := self._queues[activity_id]:
                batch, self._queues[activity_id] = queue[: self.limit], queue[self.limit :]
                await room.acquire()
                try:
                    activity, applied = await self._run(activity_id, batch, activity)
                except Exception as exc:  # the database unreachable...: every request of the batch learns it
                    room.release()
                    activity = None
                    self._fail(batch, exc)
                    continue
                task = asyncio.create_task(self._apply(applied, batch, room))
                applying.add(task)
                task.add_done_callback(applying.discard)
        except BaseException:
            self._fail(batch, RuntimeError("sign-up batch cancelled"))
            raise
        finally:
            self._fail(self._queues.pop(activity_id, []), RuntimeError("sign-up service stopping"))
            if applying:
                await asyncio.wait(applying)

    async def _apply(self, applied: Awaitable[None], batch: list[_Request], room: asyncio.Semaphore) -> None:
        try:
            await applied
        except Exception as exc:
            self._fail(batch, exc)
        finally:
            room.release()

    @staticmethod
    def _fail(requests: list[_Request], exc: Exception) -> None:
        for request in requests:
            if not request.future.done():
                request.future.set_exception(exc)

    async def _run(
        self, activity_id: str, batch: list[_Request], activity: Record | None
    ) -> tuple[Record | None, Awaitable[None]]:
        """Decide and commit a batch (on ``activity`` when given, else on a fresh read); returns the activity as
        the commit left it and what remains to do: apply the batch, then answer it."""
        volunteers = await self._volunteers(batch)
        for attempt in range(ATTEMPTS):
            if activity is None:
                if attempt:
                    await backoff(attempt)
                activity = await self.storage.activity(activity_id)
            if activity is None:
                self._fail(batch, ActivityNotFound())
                return None, _nothing()
            decided, refused = self._decide(activity, batch, volunteers)
            if not decided:
                self._refuse(refused)
                return activity, _nothing()
            committed = await self._commit(activity_id, activity, decided)
            if committed is None:
                activity = None  # a premise moved: decided again, refusals too, on a fresh read
                continue
            return committed.doc, self._finish(committed, decided, refused)
        self._fail(batch, Contended("activities", activity_id, ATTEMPTS))
        return None, _nothing()

    async def _finish(
        self, committed: Committed, decided: list[_Decided], refused: list[tuple[_Request, Exception]]
    ) -> None:
        await self.storage.finish(committed, [d.change for d in decided])
        self._answer(committed, decided)
        self._refuse(refused)

    @staticmethod
    def _refuse(refused: list[tuple[_Request, Exception]]) -> None:
        for request, refusal in refused:
            if not request.future.done():  # failed meanwhile (the service stopping)
                request.future.set_exception(refusal)

    async def _volunteers(self, batch: list[_Request]) -> dict[str, Record]:
        return await self.storage.volunteers([request.claim.volunteer_id for request in batch])

    @staticmethod
    def _decide(
        activity: Record, batch: list[_Request], volunteers: Mapping[str, Record]
    ) -> tuple[list[_Decided], list[tuple[_Request, Exception]]]:
        """Each sign-up in order of arrival, on the counters as the ones before it left them."""
        working: Record = {**activity, "counts": dict(activity.get("counts") or {})}
        decided: list[_Decided] = []
        refused: list[tuple[_Request, Exception]] = []
        for request in batch:
            try:
                change, before, after = request.decide(working, volunteers.get(request.claim.volunteer_id))
            except ActivityError as refusal:
                refused.append((request, refusal))
                continue
            for path, delta in bump((before.value if before else None, after)).items():
                key = path.removeprefix("counts.")
                working["counts"][key] = int(working["counts"].get(key, 0)) + delta
            decided.append(_Decided(request, change, before, after))
        return decided, refused

    async def _commit(self, activity_id: str, activity: Record, decided: list[_Decided]) -> Committed | None:
        inc = bump(*((d.before.value if d.before else None, d.after) for d in decided))
        confirmed = sum(1 for d in decided if d.after is CONFIRMED)
        waitlisted = sum(1 for d in decided if d.after is WAITLISTED)
        places = BatchFits(confirmed, waitlisted) if confirmed or waitlisted else None
        return await self.storage.commit(
            activity_id,
            [d.change for d in decided],
            premise=Premise({VERSION: activity.get(VERSION)}, places),  # the terms (state, window, capacity) as read
            inc=inc,
        )

    @staticmethod
    def _answer(committed: Committed, decided: list[_Decided]) -> None:
        behind = sum(1 for d in decided if d.after is WAITLISTED)  # waitlisted of the batch not yet counted down
        for d in decided:
            position = None
            if d.after is WAITLISTED:
                position = count_of(committed.doc, WAITLISTED) - behind + 1
                behind -= 1
            if not d.request.future.done():  # failed meanwhile (the service stopping)
                d.request.future.set_result(Outcome(committed, d.change, position))
