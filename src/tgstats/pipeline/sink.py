"""``EventPipeline``: the bounded queue every source puts events into, and its writer task.

Usage (the app's lifespan does this)::

    pipeline = EventPipeline(session_factory=db.session_factory, settings=settings.pipeline,
                             metrics=metrics, observers=[p.on_events_hook ...],
                             on_commit=cache.bump_data_version)
    await pipeline.start()
    await pipeline.sink.put(event)      # awaits while the queue is full
    await pipeline.sink.flush()         # returns once everything put so far is committed
    await pipeline.stop()               # flushes, then stops

One task takes up to ``batch_size`` events (or what arrived within
``flush_interval_ms``) and writes them in one transaction. A batch that fails
because the database is unavailable is kept and retried with exponential
backoff (capped at ``retry_max_backoff``) while ``healthy`` is False; one that
fails because of its data is bisected so only the poison event is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.events import Event
from tgstats.pipeline.batch import WriteOutcome
from tgstats.pipeline.errors import describe_error, is_transient
from tgstats.pipeline.observers import Observer, ObserverRunner
from tgstats.pipeline.rollups import raw_connection
from tgstats.pipeline.writer import BatchWriter
from tgstats.plugin_api import EventSink
from tgstats.settings import PipelineSettings
from tgstats.telemetry import Metrics

__all__ = ["EventPipeline", "PipelineStopped"]

log = logging.getLogger(__name__)

_FIRST_RETRY_DELAY = 0.1


class PipelineStopped(RuntimeError):
    """An event was put after ``stop()``: sources must stop before the pipeline."""


class _Sink:
    """The ``EventSink`` sources hold; a thin face over the pipeline."""

    def __init__(self, pipeline: EventPipeline) -> None:
        self._pipeline = pipeline

    async def put(self, event: Event) -> None:
        await self._pipeline._put(event)

    async def put_many(self, events: Sequence[Event]) -> None:
        for event in events:
            await self._pipeline._put(event)

    async def flush(self) -> None:
        await self._pipeline._flush()

    async def committed(self) -> None:
        """Like ``flush`` but at the writer's own pace: no early, smaller batch."""
        await self._pipeline._flush(hurry=False)


class EventPipeline:
    def __init__(
        self,
        *,
        session_factory: async_sessionmaker[AsyncSession],
        settings: PipelineSettings,
        metrics: Metrics | None = None,
        observers: Sequence[Observer] = (),
        on_commit: Callable[[set[int]], Awaitable[None]] | None = None,
        default_timezone: str = "UTC",
    ) -> None:
        if settings.queue_size < 1 or settings.batch_size < 1:
            raise ValueError("pipeline queue_size and batch_size must be at least 1")
        self._session_factory = session_factory
        self._settings = settings
        self._metrics = metrics
        self._on_commit = on_commit
        self._writer = BatchWriter(metrics=metrics, default_timezone=default_timezone)
        self._observers = ObserverRunner(
            observers, timeout=settings.observer_timeout, metrics=metrics
        )
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=settings.queue_size)
        self._accepted = 0  # events put so far
        self._settled = 0  # events committed (or dropped as poison) so far
        self._in_flight = 0
        self._settled_changed = asyncio.Condition()
        self._flush_waiters = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._healthy = True
        self._last_error: str | None = None
        self.sink: EventSink = _Sink(self)
        if metrics is not None:
            metrics.queue_depth_source = lambda: self.queue_depth

    # ------------------------------------------------------------------ public state

    @property
    def queue_depth(self) -> int:
        """Events accepted and not yet committed (queued plus the batch being written)."""
        return self._queue.qsize() + self._in_flight

    @property
    def healthy(self) -> bool:
        """False while batches fail because the database is unavailable."""
        return self._healthy

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.running:
            return
        self._closing = False
        self._observers.start()
        self._task = asyncio.create_task(self._run(), name="tgstats-batch-writer")

    async def drain_observers(self) -> None:
        """Wait until observers have seen every batch committed so far (tests, shutdown)."""
        await self._observers.drain()

    async def stop(self, *, give_up_after: float | None = None) -> None:
        """Flush everything queued, then stop. With ``give_up_after`` seconds, stop waiting
        (logging how many events were not written) instead of waiting for the database."""
        self._closing = True
        if self.running:
            try:
                await asyncio.wait_for(self._flush(), give_up_after)
            except TimeoutError:
                log.error(
                    "pipeline stopped with %d events not written (database unavailable: %s)",
                    self.queue_depth, self._last_error,
                )  # fmt: skip
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._observers.stop(drain_timeout=self._settings.observer_timeout)

    # ------------------------------------------------------------------ sink

    async def _put(self, event: Event) -> None:
        if self._closing:
            raise PipelineStopped("the event pipeline is stopping; no more events are accepted")
        await self._queue.put(event)  # awaits while full: backpressure, never a drop
        self._accepted += 1

    async def _flush(self, *, hurry: bool = True) -> None:
        target = self._accepted
        if self._settled >= target:
            return
        if not self.running:
            raise PipelineStopped("flush() needs a started pipeline")
        if not hurry:
            async with self._settled_changed:
                await self._settled_changed.wait_for(lambda: self._settled >= target)
            return
        self._flush_waiters += 1
        self._wake.set()
        try:
            async with self._settled_changed:
                await self._settled_changed.wait_for(lambda: self._settled >= target)
        finally:
            self._flush_waiters -= 1

    # ------------------------------------------------------------------ writer task

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            self._in_flight = len(batch)
            try:
                await self._write(batch)
            finally:
                self._in_flight = 0
            async with self._settled_changed:
                self._settled += len(batch)
                self._settled_changed.notify_all()

    async def _next_batch(self) -> list[Event]:
        batch = [await self._queue.get()]
        limit = self._settings.batch_size
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.flush_interval_ms / 1000
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if self._flush_waiters or self._closing or remaining <= 0:
                break
            self._wake.clear()
            getter = asyncio.ensure_future(self._queue.get())
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({getter, waker}, timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                waker.cancel()
                if getter.done():
                    batch.append(getter.result())
                else:
                    getter.cancel()
        return batch

    async def _write(self, batch: list[Event]) -> None:
        started = time.perf_counter()
        outcomes = await self._write_isolating(batch)
        if self._metrics is not None:
            self._metrics.record_query("batch", time.perf_counter() - started)
        for outcome in outcomes:
            await self._after_commit(outcome)

    async def _write_isolating(self, events: list[Event]) -> list[WriteOutcome]:
        """Write ``events``; retry while the database is down; bisect around bad data."""
        delay = _FIRST_RETRY_DELAY
        while True:
            try:
                outcome = await self._write_once(events)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    self._unhealthy(exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._settings.retry_max_backoff)
                    continue
                if len(events) == 1:
                    self._drop_poison(events[0], exc)
                    return []
                middle = len(events) // 2
                log.warning(
                    "batch of %d events failed (%s); writing its halves apart to isolate it",
                    len(events), describe_error(exc),
                )  # fmt: skip
                first = await self._write_isolating(events[:middle])
                return first + await self._write_isolating(events[middle:])
            if not self._healthy:
                log.info("database writes succeed again")
            self._healthy = True
            self._last_error = None
            return [outcome]

    async def _write_once(self, events: Sequence[Event]) -> WriteOutcome:
        session = self._session_factory()
        try:
            async with session.begin():
                conn = await raw_connection(session)
                outcome = await self._writer.write(conn, events)
            return outcome
        except BaseException as exc:
            if is_transient(exc):
                # The pooled connection may be dead; never hand it out again.
                with contextlib.suppress(Exception):
                    await session.invalidate()
            raise
        finally:
            with contextlib.suppress(Exception):
                await session.close()

    def _unhealthy(self, exc: Exception, delay: float) -> None:
        self._healthy = False
        self._last_error = f"database unavailable: {describe_error(exc)}"
        if self._metrics is not None:
            self._metrics.error("db_unavailable")
        log.warning(
            "writing a batch failed (%s); %d events kept, retrying in %.1fs",
            describe_error(exc), self.queue_depth, delay,
        )  # fmt: skip

    def _drop_poison(self, event: Event, exc: Exception) -> None:
        if self._metrics is not None:
            self._metrics.error("poison_event")
        log.error(
            "dropped an event the database rejects: %s chat=%s msg=%s (%s)",
            type(event).__name__, getattr(event, "chat_id", None),
            getattr(event, "msg_id", None), describe_error(exc),
            exc_info=exc,
        )  # fmt: skip

    async def _after_commit(self, outcome: WriteOutcome) -> None:
        metrics = self._metrics
        if metrics is not None:
            metrics.batch_size.record(len(outcome.events))
            for (chat_type, media_type), count in outcome.messages.items():
                metrics.messages_processed.add(
                    count, {"chat_type": chat_type, "media_type": media_type}
                )
            for reaction_type, count in outcome.reactions.items():
                metrics.reactions_tracked.add(count, {"reaction_type": reaction_type})
        if outcome.chat_ids and self._on_commit is not None:
            try:
                await self._on_commit(set(outcome.chat_ids))
            except Exception:
                log.exception("on_commit callback failed")
                if metrics is not None:
                    metrics.error("on_commit")
        self._observers.deliver(outcome.events)
