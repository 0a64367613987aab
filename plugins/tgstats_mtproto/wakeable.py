"""A background loop that runs one turn every ``every`` seconds, or at once when woken.

Gap repair and member counts both wait for work that arrives now and then (a gap
recorded, a join committed) and look again on a timer for work asked for elsewhere.
A failed turn is logged in one line and the next turn tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["WakeableLoop"]


class WakeableLoop:
    def __init__(
        self, turn: Callable[[], Awaitable[object]], *, every: float, what: str, log: logging.Logger
    ) -> None:
        self._turn = turn
        self._every = every
        self._what = what
        self._log = log
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Run the next turn now instead of at the end of the wait."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        while True:
            try:
                await self._turn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next turn tries again
                self._log.warning("%s failed: %s", self._what, type(exc).__name__)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._every)
            except TimeoutError:
                pass
