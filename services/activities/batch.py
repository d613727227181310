"""Group commit: requests on one aggregate queue up, and one worker decides and writes them together.

FerretDB v1 has no isolated updates, so every decision on an activity is taken under the activity's lock
(``Store.locked``). Taking that lock once per request makes a burst of sign-ups wait for one another's five round
trips each. Here the requests of one key join a queue in order of arrival; one worker per key (while there is work)
takes the lock, takes the whole queue, hands it to ``run`` — which decides every request in that order and writes
the batch with a handful of round trips — and answers each request on its own (``Waiter.answer`` / ``refuse``).
Other operations on the aggregate still take the same lock, so they run between two batches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class Waiter(Generic[T, R]):
    """One queued request and the answer its caller awaits."""

    request: T
    future: asyncio.Future[R]

    @property
    def answered(self) -> bool:
        return self.future.done()

    def answer(self, result: R) -> None:
        if not self.future.done():  # the caller may have gone away (client disconnected)
            self.future.set_result(result)

    def refuse(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class GroupCommit(Generic[T, R]):
    """Per-key queues of requests, each drained in batches of at most ``max_batch`` under the key's lock."""

    def __init__(
        self,
        run: Callable[[str, list[Waiter[T, R]]], Awaitable[None]],
        lock: Callable[[str], contextlib.AbstractAsyncContextManager[None]],
        *,
        max_batch: int,
    ) -> None:
        self._run = run
        self._lock = lock
        self.max_batch = max_batch
        self._queues: dict[str, list[Waiter[T, R]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self.batches = 0  # batches run so far (for the benchmark's mean batch size)

    async def submit(self, key: str, request: T) -> R:
        """Queue the request behind those already waiting on ``key`` and wait for its own answer."""
        waiter: Waiter[T, R] = Waiter(request, asyncio.get_running_loop().create_future())
        self._queues.setdefault(key, []).append(waiter)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._drain(key), name=f"group-commit:{key}")
        return await waiter.future

    def waiting(self, key: str) -> int:
        """Requests queued on ``key`` and not yet taken into a batch."""
        return len(self._queues.get(key, ()))

    def _take(self, key: str) -> list[Waiter[T, R]]:
        queue = self._queues.get(key, [])
        batch, rest = queue[: self.max_batch], queue[self.max_batch :]
        if rest:
            self._queues[key] = rest
        else:
            self._queues.pop(key, None)
        return [w for w in batch if not w.answered]  # callers cancelled while queued are left out

    async def _drain(self, key: str) -> None:
        batch: list[Waiter[T, R]] = []
        try:
            while key in self._queues:
                async with self._lock(key):
                    batch = self._take(key)  # everything that arrived while the previous batch held the lock
                    if not batch:
                        continue
                    self.batches += 1
                    try:
                        await self._run(key, batch)
                    except Exception as exc:  # e.g. the database is unreachable: every waiter gets the error
                        for waiter in batch:
                            waiter.refuse(exc)
                    for waiter in batch:
                        waiter.refuse(RuntimeError("group commit left a request unanswered"))
                    batch = []
        except asyncio.CancelledError:  # shutdown: nobody waits for ever
            for waiter in [*batch, *self._queues.pop(key, [])]:
                waiter.future.cancel()
            raise
        finally:
            self._workers.pop(key, None)

    async def close(self) -> None:
        """Cancel the workers (shutdown); their waiters are cancelled."""
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
