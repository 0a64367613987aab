"""Which received updates are safely recorded: the gate in front of the saved update state.

kurigram moves its update state (pts/qts/seq) forward when an update *arrives*,
before the update is handled. Saving that state as it is would let a crash lose
updates: after a restart, catch-up asks Telegram only for what came after the
saved state, and updates that had arrived but whose events were not committed
yet would never come back.

So ``DatabaseStorage`` saves a state only once everything that arrived before it
is recorded: each update kurigram puts on the dispatcher queue gets a sequence
number (``HandledUpdates``), each state change is tagged with the number of the
next update to arrive, and a save first waits until the dispatcher's workers have
finished every update up to the newest tag it saves, then until the event
pipeline has committed what those handlers enqueued (``UpdateStateGate``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["HandledUpdates", "UpdateStateGate"]

log = logging.getLogger(__name__)


class HandledUpdates(asyncio.Queue[Any]):
    """kurigram's dispatcher queue, counting the updates its workers have finished.

    A dispatcher worker loops ``get()`` → handle → ``get()``, so a worker's next
    ``get()`` is the moment its previous update was handled (handlers included:
    ours await the event sink, so handled means enqueued for the writer). The
    ``None`` sentinels kurigram uses to stop workers are not counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.arrived = 0  # updates put so far; the n-th update has number n
        self._handed = 0  # updates taken by workers so far (FIFO: numbers 1.._handed)
        self._busy: dict[asyncio.Task[Any] | None, int] = {}  # worker -> number it handles
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def put_nowait(self, item: Any) -> None:
        if item is not None:
            self.arrived += 1
        super().put_nowait(item)

    async def get(self) -> Any:
        worker = asyncio.current_task()
        if self._busy.pop(worker, None) is not None:
            self._wake()
        item = await super().get()
        if item is not None:
            self._handed += 1
            self._busy[worker] = self._handed
        return item

    def handled_through(self) -> int:
        """Every update numbered up to this one has been handled."""
        oldest_busy = min(self._busy.values(), default=self._handed + 1)
        return oldest_busy - 1

    async def wait_handled(self, number: int) -> None:
        if self.handled_through() >= number:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((number, future))
        try:
            await future
        finally:
            self._waiters = [(n, f) for n, f in self._waiters if f is not future]

    def _wake(self) -> None:
        done = self.handled_through()
        for number, future in self._waiters:
            if number <= done and not future.done():
                future.set_result(None)


class UpdateStateGate:
    """Waits until updates 1..n are handled and what their handlers enqueued is committed."""

    def __init__(self, updates: HandledUpdates, commit: Callable[[], Awaitable[None]]) -> None:
        self.updates = updates
        self._commit = commit

    @property
    def arrived(self) -> int:
        return self.updates.arrived

    async def wait(self, number: int) -> None:
        await self.updates.wait_handled(number)
        await self._commit()
