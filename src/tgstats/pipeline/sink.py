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
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.events import Event
from tgstats.pipeline.batch import WriteOutcome
from tgstats.pipeline.bulk import BulkImportSink
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
        await self._pipeline._put_many((event,))

    async def put_many(self, events: Sequence[Event]) -> None:
        await self._pipeline._put_many(events)

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
        self._default_timezone = default_timezone
        self._observers = ObserverRunner(
            observers, timeout=settings.observer_timeout, metrics=metrics
        )
        # The queue: a deque bounded by ``queue_size`` by ``_put_many`` (not asyncio.Queue,
        # whose per-event put/get and wakeups cost more than the writer's own work per event).
        self._queue: deque[Event] = deque()
        self._space = asyncio.Event()  # set while the queue has room
        self._space.set()
        self._ready = asyncio.Event()  # set when the writer task should look at the queue
        self._wake_at = 1  # queue length that wakes the writer (1 idle, batch_size collecting)
        self._accepted = 0  # events put so far
        self._settled = 0  # events committed (or dropped as poison) so far
        self._in_flight = 0
        self._settled_changed = asyncio.Condition()
        self._flush_waiters = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._healthy = True
        self._last_error: str | None = None
        self.sink: EventSink = _Sink(self)
        if metrics is not None:
            metrics.queue_depth_source = lambda: self.queue_depth

    def bulk_sink(self) -> BulkImportSink:
        """A sink for imports (``pipeline.bulk``): the same database, cache bumps and
        observers as this pipeline, one transaction per chat, rollups built set-wise."""
        return BulkImportSink(
            session_factory=self._session_factory, default_timezone=self._default_timezone,
            metrics=self._metrics, on_commit=self._on_commit, observers=self._observers,
        )  # fmt: skip

    # ------------------------------------------------------------------ public state

    @property
    def queue_depth(self) -> int:
        """Events accepted and not yet committed (queued plus the batch being written)."""
        return len(self._queue) + self._in_flight

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

    async def _put_many(self, events: Sequence[Event]) -> None:
        """Queue ``events`` in order; await while the queue is full (backpressure, never a
        drop). Cancelled while waiting, the events queued so far stay accepted."""
        if self._closing:
            raise PipelineStopped("the event pipeline is stopping; no more events are accepted")
        queue = self._queue
        limit = self._settings.queue_size
        done = 0
        total = len(events)
        while done < total:
            room = limit - len(queue)
            if room <= 0:
                self._space.clear()
                await self._space.wait()
                if self._closing:
                    raise PipelineStopped(
                        "the event pipeline is stopping; no more events are accepted"
                    )
                continue
            chunk = events[done : done + room] if done or room < total else events
            queue.extend(chunk)
            done += len(chunk)
            self._accepted += len(chunk)
            if len(queue) >= self._wake_at:
                self._ready.set()

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
        self._ready.set()
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
        """Up to ``batch_size`` events: wait for the first, then until the batch is full,
        ``flush_interval_ms`` passed since the first, or a flush or stop asks for it. The
        writer sleeps meanwhile; it is not woken per event."""
        queue = self._queue
        limit = self._settings.batch_size
        while not queue:
            self._wake_at = 1
            self._ready.clear()
            await self._ready.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.flush_interval_ms / 1000
        # A full queue wakes the writer too: waiting producers must not wait for the interval.
        enough = self._wake_at = min(limit, self._settings.queue_size)
        while len(queue) < enough and not (self._flush_waiters or self._closing):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), remaining)
            except TimeoutError:
                break
        size = min(limit, len(queue))
        batch = [queue.popleft() for _ in range(size)]
        self._space.set()
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
