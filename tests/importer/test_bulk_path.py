"""The bulk import path against the live path: the same exports into two scratch databases
(one through the live ``EventPipeline``, one through ``BulkImportSink``), every rollup
table compared row for row; re-imports, purged ranges, opt-outs and live traffic during an
import on the bulk path."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.scratch_db import asyncpg_dsn, scratch_database
from tgstats.db.engine import Database, open_database, run_migrations
from tgstats.events import MessageEvent
from tgstats.importer import CountingSink, ImportOptions, import_export
from tgstats.importer.synthetic import write_synthetic_export
from tgstats.pipeline import EventPipeline
from tgstats.pipeline.bulk import BulkImportSink
from tgstats.settings import DatabaseSettings, PipelineSettings

FIXTURES = Path("/work/shared/fixtures/telegram-export")
SAMPLES = Path(__file__).resolve().parent / "samples"

#: Every rollup table (days, weeks, hours, members, terms, topics, pairs) and the raw
#: tables the writer derives from what it counted.
COMPARED = {
    "chat_day_rollup": "chat_id, local_day",
    "chat_hour_rollup": "chat_id, local_day, local_hour",
    "chat_user_day_rollup": "chat_id, user_id, local_day",
    "chat_user_hour_rollup": "chat_id, user_id, local_day, local_hour",
    "chat_media_day_rollup": "chat_id, local_day, media_type",
    "chat_term_day_rollup": "chat_id, local_day, kind, term",
    "chat_topic_user_day_rollup": "chat_id, topic_id, user_id, local_day",
    "reply_pair_day_rollup": "chat_id, local_day, from_user_id, to_user_id",
    "chat_user_week_rollup": "chat_id, week, user_id",
    "chat_term_week_rollup": "chat_id, kind, week, term",
    "chat_topic_user_week_rollup": "chat_id, week, topic_id, user_id",
    "reply_pair_week_rollup": "chat_id, week, from_user_id, to_user_id",
    "messages": "chat_id, msg_id",
    "message_edits": "chat_id, msg_id, edit_date",
    "question_replies": "chat_id, msg_id",
    "membership_events": "chat_id, date, user_id, action",
    "message_reactions": "chat_id, msg_id, reaction, user_id",
    "service_messages": "chat_id, msg_id",
    "chat_migrations": "old_chat_id",
}
SEAL = "SELECT id, rollup_sealed_before, rollup_sealed_from FROM chats ORDER BY id"


async def _fresh_database(admin_url: str, name: str) -> AsyncIterator[Database]:
    async with scratch_database(admin_url, name) as url:
        await run_migrations(url)
        database = open_database(url, DatabaseSettings(pool_size=4, max_overflow=4))
        try:
            yield database
        finally:
            await database.dispose()


@pytest.fixture
async def two_databases(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    tag = secrets.token_hex(3)
    live_gen = _fresh_database(database_url, f"tgstats_live_{tag}")
    bulk_gen = _fresh_database(database_url, f"tgstats_bulk_{tag}")
    live = await anext(live_gen)
    bulk = await anext(bulk_gen)
    try:
        yield live, bulk
    finally:
        for gen in (live_gen, bulk_gen):
            with pytest.raises(StopAsyncIteration):
                await anext(gen)


async def _live_import(database: Database, path: Path, options: ImportOptions) -> Any:
    pipeline = EventPipeline(
        session_factory=database.session_factory, settings=PipelineSettings(batch_size=500)
    )
    await pipeline.start()
    try:
        return await import_export(
            path, pipeline.sink, options, session_factory=database.session_factory
        )
    finally:
        await pipeline.stop()


async def _bulk_import(
    database: Database, path: Path, options: ImportOptions, *, chunk: int = 700, **kw: Any
) -> Any:
    sink = BulkImportSink(session_factory=database.session_factory, chunk=chunk, **kw)
    return await import_export(path, sink, options, session_factory=database.session_factory)


async def _tables(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    url = asyncpg_dsn(database.engine.url.render_as_string(hide_password=False))
    conn = await asyncpg.connect(url)
    try:
        found = {}
        for table, order in COMPARED.items():
            rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY {order}")
            # Surrogate ids (``id``) are the sequence's, not data.
            found[table] = [tuple(v for k, v in r.items() if k != "id") for r in rows]
        found["seal"] = [tuple(r) for r in await conn.fetch(SEAL)]
        return found
    finally:
        await conn.close()


def _assert_same(live: dict[str, list[Any]], bulk: dict[str, list[Any]]) -> None:
    for table in live:
        assert bulk[table] == live[table], f"{table} differs"


def _exports(tmp_path: Path) -> list[tuple[Path, ImportOptions]]:
    synthetic = tmp_path / "synthetic.json"
    # Several chats, enough messages for many chunks and sealed weeks, replies, edits,
    # reactions, forwards, joins and leaves.
    write_synthetic_export(synthetic, messages=6_000, chats=2, shape="account", users=40, seed=7)
    real = FIXTURES / "real"
    return [
        (synthetic, ImportOptions()),
        (FIXTURES / "channel-2020.json", ImportOptions()),
        (real / "ragtgbot-private-group-2025.json", ImportOptions()),
        (real / "tganalyzer-account-export-2024.json", ImportOptions()),
        # A personal chat with reactions; selected by name, as --chat does.
        (real / "adoby-personal-reactions-2023.json", ImportOptions(chats=("adoby",))),
    ]


async def test_bulk_and_live_paths_leave_identical_rollups(
    two_databases: tuple[Database, Database], tmp_path: Path
) -> None:
    live, bulk = two_databases
    exports = _exports(tmp_path)
    for path, options in exports:
        live_summary = await _live_import(live, path, options)
        bulk_summary = await _bulk_import(bulk, path, options)
        assert live_summary.error is None and bulk_summary.error is None
        assert bulk_summary.new_messages == live_summary.new_messages
    live_rows, bulk_rows = await _tables(live), await _tables(bulk)
    assert sum(r[2] for r in live_rows["chat_day_rollup"]) > 5_000  # messages were counted
    assert live_rows["chat_user_week_rollup"], "the synthetic chats sealed weeks"
    assert live_rows["message_reactions"], "reactions were counted"
    assert live_rows["message_edits"] and live_rows["question_replies"]
    _assert_same(live_rows, bulk_rows)

    # Again, both ways round: a re-import changes nothing, whichever path wrote first.
    for path, options in exports:
        again = await _bulk_import(bulk, path, options)
        assert not again.new_messages and again.error is None
        await _bulk_import(live, path, options)
    _assert_same(live_rows, await _tables(bulk))
    _assert_same(live_rows, await _tables(live))


async def test_bulk_import_respects_purged_ranges_and_opt_outs(
    two_databases: tuple[Database, Database], tmp_path: Path
) -> None:
    """Retention removed some raw rows after counting them: a bulk re-import counts them
    not again. An opted-out member is counted for the chat only, in both paths alike."""
    live, bulk = two_databases
    path = tmp_path / "one.json"
    write_synthetic_export(path, messages=3_000, users=30, seed=3)
    for database in (live, bulk):
        async with database.session_factory() as session:
            from sqlalchemy import text

            await session.execute(
                text("INSERT INTO user_optouts (user_id, source) VALUES (1001, 'admin')")
            )
            await session.commit()
    await _live_import(live, path, ImportOptions())
    await _bulk_import(bulk, path, ImportOptions())
    live_rows, bulk_rows = await _tables(live), await _tables(bulk)
    _assert_same(live_rows, bulk_rows)
    named = {r[1] for r in bulk_rows["chat_user_day_rollup"]}
    assert 1001 not in named and len(named) > 5

    # Retention purges the raw rows of the first 1,000 messages (recording their ids).
    url = asyncpg_dsn(bulk.engine.url.render_as_string(hide_password=False))
    conn = await asyncpg.connect(url)
    try:
        chat_id, low, high = await conn.fetchrow(
            "SELECT chat_id, min(msg_id), (array_agg(msg_id ORDER BY msg_id))[1000]"
            " FROM messages GROUP BY chat_id"
        )
        await conn.execute(
            "INSERT INTO purged_message_ranges (chat_id, low, high) VALUES ($1, $2, $3)",
            chat_id, low, high,
        )  # fmt: skip
        await conn.execute(
            "DELETE FROM messages WHERE chat_id = $1 AND msg_id BETWEEN $2 AND $3",
            chat_id, low, high,
        )  # fmt: skip
    finally:
        await conn.close()
    again = await _bulk_import(bulk, path, ImportOptions())
    assert again.error is None
    after = await _tables(bulk)
    for table in COMPARED:
        if table.endswith("rollup"):
            assert after[table] == bulk_rows[table], f"{table} changed on the re-import"


async def test_live_updates_during_a_bulk_import_count_once(db: Database, tmp_path: Path) -> None:
    """Live batches for the chat being imported, some repeating messages the export has,
    some new, written while the import's transaction is open: each message is counted
    once, by whichever writer stored it."""
    path = tmp_path / "one.json"
    write_synthetic_export(path, messages=8_000, users=20, seed=11)
    summary = await import_export(path, CountingSink(), ImportOptions(dry_run=True))
    assert summary.error is None
    chat_id = summary.chats[0].chat_id
    assert chat_id is not None

    pipeline = EventPipeline(
        session_factory=db.session_factory, settings=PipelineSettings(flush_interval_ms=5)
    )
    await pipeline.start()
    # The bot is in the chat: it has a row, and a message, before the import starts.
    base = datetime(2030, 1, 1, tzinfo=UTC)
    first = MessageEvent(chat_id=chat_id, msg_id=2_000_000, date=base, user_id=42)
    await pipeline.sink.put(first)
    await pipeline.sink.flush()
    sink = BulkImportSink(session_factory=db.session_factory, chunk=500)
    writing = asyncio.Event()
    import_task = asyncio.create_task(
        import_export(
            path, sink, ImportOptions(), session_factory=db.session_factory,
            on_batch=lambda summary, done, total: writing.set(),
        )
    )  # fmt: skip
    live_new = [first] + [
        MessageEvent(chat_id=chat_id, msg_id=1_000_000 + i, date=base, user_id=42)
        for i in range(50)
    ]
    # Repeats of messages the export holds (its ids start at 1), as a re-delivery would.
    repeats = [
        MessageEvent(chat_id=chat_id, msg_id=i, date=base, user_id=43) for i in range(1, 300, 7)
    ]
    try:
        await writing.wait()  # the import's transaction is open
        for i in range(0, len(live_new), 10):
            await pipeline.sink.put_many(live_new[i : i + 10])
            await asyncio.sleep(0.01)
        await pipeline.sink.flush()
        # New messages of the chat committed while the import was still writing it.
        assert not import_task.done()
        await pipeline.sink.put_many(repeats)
        summary = await import_task
        await pipeline.sink.flush()
    finally:
        await pipeline.stop()
    assert summary.error is None
    async with db.session_factory() as session:
        from sqlalchemy import text

        stored = (
            await session.execute(
                text("SELECT count(*) FROM messages WHERE chat_id = :c"), {"c": chat_id}
            )
        ).scalar_one()
        counted = (
            await session.execute(
                text("SELECT sum(messages) FROM chat_day_rollup WHERE chat_id = :c"),
                {"c": chat_id},
            )
        ).scalar_one()
        by_user = (
            await session.execute(
                text(
                    "SELECT sum(messages) FROM chat_user_day_rollup WHERE chat_id = :c"
                    " AND user_id = 42"
                ),
                {"c": chat_id},
            )
        ).scalar_one()
    # The repeats that name no regular message of the file (an id it uses for a service
    # message) are new messages of the live path.
    records = json.loads(path.read_text(encoding="utf-8"))["messages"]
    regular = {r["id"] for r in records if r["type"] == "message"}
    extra = sum(e.msg_id not in regular for e in repeats)
    assert stored == summary.chats[0].stats.messages + len(live_new) + extra
    assert counted == stored  # every stored message counted once
    assert by_user == len(live_new)
