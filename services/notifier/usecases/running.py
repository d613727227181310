"""Background loops of the notifier's use cases: how they learn they are being stopped."""

from __future__ import annotations

import asyncio


def stop_requested() -> bool:
    """True once the current task was asked to stop, even if a library swallowed the CancelledError (the PyMongo
    client can turn a cancellation into a connection error): background loops check it so a stop never hangs."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
