"""Observers (plugins' ``on_events``) run after commit, off the write path.

Committed batches go into a bounded queue that one task drains, calling each
observer with a timeout. A slow or failing observer is logged and counted
(``errors{error_type="plugin"}``); it can delay other observers but never the
writer: when the queue is full, the delivery is dropped for observers with a
counted warning (``errors{error_type="observer_overflow"}``) instead of
blocking ingestion. Events are already committed either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from tgstats.events import Event
from tgstats.telemetry import Metrics

__all__ = ["Observer", "ObserverRunner"]

log = logging.getLogger(__name__)

Observer = Callable[[Sequence[Event]], Awaitable[None]]


def _name(observer: Observer) -> str:
    owner = getattr(observer, "__self__", None)
    if owner is not None:
        return f"{type(owner).__module__}.{type(owner).__qualname__}"
    return getattr(observer, "__qualname__", repr(observer))


class ObserverRunner:
    def __init__(
        self,
        observers: Sequence[Observer],
        *,
        timeout: float,
        metrics: Metrics | None = None,
        max_pending: int = 256,
    ) -> None:
        self.observers = tuple(observers)
        self.timeout = timeout
        self.metrics = metrics
        self._queue: asyncio.Queue[Sequence[Event]] = asyncio.Queue(maxsize=max_pending)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def start(self) -> None:
        if self.observers and self._task is None:
            self._task = asyncio.create_task(self._run(), name="tgstats-observers")

    def deliver(self, events: Sequence[Event]) -> None:
        """Queue committed events for the observers; never waits."""
        if not self.observers or not events:
            return
        try:
            self._queue.put_nowait(events)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.metrics is not None:
                self.metrics.error("observer_overflow")
            log.warning(
                "observers are behind: %d committed events not delivered to them", len(events)
            )

    async def _run(self) -> None:
        while True:
            events = await self._queue.get()
            try:
                for observer in self.observers:
                    await self._call(observer, events)
            finally:
                self._queue.task_done()

    async def _call(self, observer: Observer, events: Sequence[Event]) -> None:
        try:
            await asyncio.wait_for(observer(events), self.timeout)
        except TimeoutError:
            self._failed(observer, f"took longer than {self.timeout:g}s")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("observer %s failed", _name(observer))
            if self.metrics is not None:
                self.metrics.error("plugin")

    def _failed(self, observer: Observer, reason: str) -> None:
        log.warning("observer %s %s; skipped for this batch", _name(observer), reason)
        if self.metrics is not None:
            self.metrics.error("plugin")

    async def drain(self) -> None:
        """Wait until every delivery queued so far has been handed to every observer."""
        if self._task is not None:
            await self._queue.join()

    async def stop(self, *, drain_timeout: float | None = None) -> None:
        """Deliver what is queued (bounded by ``drain_timeout``), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
