"""Imports through the real pipeline into PostgreSQL: exact counts, and a rerun changes nothing."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.importer.conftest import SAMPLES
from tests.importer.test_mapping import ACCOUNT, EVERY_KIND
from tgstats.importer import ImportOptions, add_import_arguments, import_export, run_import_command
from tgstats.importer.synthetic import write_synthetic_export
from tgstats.pipeline import EventPipeline
from tgstats.settings import PipelineSettings, Settings

COUNTS = {
    "messages": "SELECT count(*) FROM messages",
    "service": "SELECT count(*) FROM service_messages",
    "members": "SELECT count(*) FROM membership_events",
    "reactions": "SELECT count(*) FROM message_reactions",
    "reaction_counts": "SELECT count(*) FROM reaction_counts",
    "chats": "SELECT count(*) FROM chats",
    "day_messages": "SELECT coalesce(sum(messages), 0) FROM chat_day_rollup",
}


async def counts(session_factory: Any) -> dict[str, int]:
    async with session_factory() as session:
        return {k: int((await session.execute(text(q))).scalar_one()) for k, q in COUNTS.items()}


async def run(session_factory: Any, path: Path, options: ImportOptions = ImportOptions()) -> Any:
    pipeline = EventPipeline(session_factory=session_factory, settings=PipelineSettings())
    await pipeline.start()
    try:
        return await import_export(path, pipeline.sink, options)
    finally:
        await pipeline.stop()


async def test_real_channel_sample_twice(session_factory: Any) -> None:
    summary = await run(session_factory, SAMPLES / "channel-2020.json")
    assert summary.error is None
    first = await counts(session_factory)
    assert first["messages"] == 18
    assert first["service"] == 1
    assert first["chats"] == 1
    assert first["day_messages"] == 18
    async with session_factory() as session:
        row = (
            await session.execute(
                text(
                    "SELECT count(*) FILTER (WHERE edit_date IS NOT NULL), "
                    "count(*) FILTER (WHERE media_type = 'photo'), min(date) FROM messages "
                    "WHERE chat_id = -1001292077344"
                )
            )
        ).one()
    assert row[0] == 5 and row[1] == 5
    assert row[2].isoformat() == "2020-11-12T12:54:07+00:00"
    await run(session_factory, SAMPLES / "channel-2020.json")
    assert await counts(session_factory) == first


async def test_every_kind_twice(session_factory: Any, write_export: Callable[..., Path]) -> None:
    path = write_export(EVERY_KIND)
    summary = await run(session_factory, path)
    assert summary.error is None
    first = await counts(session_factory)
    assert first["messages"] == 18
    assert first["service"] == 5
    assert first["members"] == 6
    assert first["reactions"] == 1
    assert first["reaction_counts"] == 2
    await run(session_factory, path)
    assert await counts(session_factory) == first


async def test_account_export_and_personal_chat(
    session_factory: Any, write_export: Callable[..., Path]
) -> None:
    summary = await run(session_factory, write_export(ACCOUNT))
    assert summary.error is None
    async with session_factory() as session:
        rows = (
            await session.execute(
                text("SELECT chat_id, count(*) FROM messages GROUP BY chat_id ORDER BY chat_id")
            )
        ).all()
    # The basic group migrated: its message moved to the supergroup's id.
    total = sum(r[1] for r in rows)
    assert total == 7
    first = await counts(session_factory)
    await run(session_factory, write_export(ACCOUNT))
    assert (await counts(session_factory))["messages"] == first["messages"]


async def test_generated_export_and_resume_after_truncation(
    session_factory: Any, tmp_path: Path
) -> None:
    full = tmp_path / "full.json"
    written = write_synthetic_export(full, messages=4000, seed=7)
    data = full.read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(data[: len(data) * 2 // 3])
    broken = await run(session_factory, cut)
    assert broken.error is not None and "truncated" in broken.error
    partial = await counts(session_factory)
    assert 0 < partial["messages"] < 4000
    assert partial["messages"] == broken.imported_messages  # everything read was committed
    # Rerun with the whole file: resumes, counting nothing twice.
    summary = await run(session_factory, full)
    assert summary.error is None
    done = await counts(session_factory)
    (chat_id,) = written.messages
    assert done["messages"] == written.messages[chat_id] == summary.imported_messages
    assert done["service"] + done["members"] > 0
    assert done["day_messages"] == done["messages"]
    await run(session_factory, full)
    assert await counts(session_factory) == done


async def test_cli_imports_into_the_database(
    session_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_import_arguments(parser)
    args = parser.parse_args([str(SAMPLES / "dm-personal-chat.json"), "--chat", "700000000"])
    assert await run_import_command(args, Settings(), session_factory) == 0
    out, _ = capsys.readouterr()
    assert "imported 6 messages" in out
    assert (await counts(session_factory))["messages"] == 6


async def test_cli_import_bumps_the_shared_cache_versions(
    session_factory: Any,
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import redis.asyncio as aioredis

    export = tmp_path / "result.json"
    write_synthetic_export(export, messages=300, seed=5)
    parser = argparse.ArgumentParser()
    add_import_arguments(parser)
    args = parser.parse_args([str(export)])
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(f"{redis_prefix}dv-bumps")
    try:
        settings = make_settings(REDIS_URL=redis_url)
        assert await run_import_command(args, settings, session_factory) == 0
        async with session_factory() as session:
            [chat_id] = (await session.execute(text("SELECT DISTINCT chat_id FROM messages"))).all()
        # A service caching in Redis sees a new data version for the chat, and hears of it.
        assert int(await client.get(f"{redis_prefix}dv:{chat_id[0]}") or 0) >= 1
        heard = []
        for _ in range(20):  # (None also stands for the skipped subscribe confirmation)
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                heard.append(message["data"].decode())
        assert any(str(chat_id[0]) in note.split(",") for note in heard), (heard, chat_id)

        # With the cache off, the CLI leaves Redis alone.
        before = await client.get(f"{redis_prefix}dv:{chat_id[0]}")
        write_synthetic_export(export, messages=600, seed=5)  # the same chat, more messages
        off = make_settings(REDIS_URL=redis_url, ENABLE_CACHE="false")
        assert await run_import_command(args, off, session_factory) == 0
        assert (await counts(session_factory))["messages"] > 300
        assert await client.get(f"{redis_prefix}dv:{chat_id[0]}") == before
    finally:
        await pubsub.aclose()
        await client.aclose()
    capsys.readouterr()


async def test_migrated_history_in_a_supergroup_export_counts_once_with_live_history(
    session_factory: Any, write_export: Callable[..., Path]
) -> None:
    from datetime import UTC, datetime

    from tests.importer.test_mapping import T0, msg, service
    from tgstats.events import ChatMigratedEvent, MessageEvent
    from tgstats.features import extract

    old_group, supergroup = -777, -1000000000888  # Bot API ids of export ids 777, 888
    # Live: the bot saw the basic group's messages 10 and 11 (a reply), then the migration,
    # which moves them to the supergroup as -10 and -11.
    live = [
        MessageEvent(chat_id=old_group, msg_id=i, date=datetime.fromtimestamp(T0 + i, UTC),
                     user_id=101, reply_to_msg_id=10 if i == 11 else None,
                     features=extract("hello"))
        for i in (10, 11)
    ]  # fmt: skip
    migrated = ChatMigratedEvent(
        old_chat_id=old_group, new_chat_id=supergroup, date=datetime.fromtimestamp(T0 + 20, UTC)
    )
    pipeline = EventPipeline(session_factory=session_factory, settings=PipelineSettings())
    await pipeline.start()
    try:
        await pipeline.sink.put_many(live)
        await pipeline.sink.flush()
        await pipeline.sink.put(migrated)
        await pipeline.sink.flush()
    finally:
        await pipeline.stop()

    # Telegram Desktop's export of the supergroup lists the old group's messages first,
    # their ids (and reply targets) shifted by -1e9, then the supergroup's own.
    export = {
        "name": "Team",
        "type": "private_supergroup",
        "id": 888,
        "messages": [
            msg(10 - 1_000_000_000, date_unixtime=str(T0 + 10)),
            msg(11 - 1_000_000_000, date_unixtime=str(T0 + 11),
                reply_to_message_id=10 - 1_000_000_000),
            msg(12 - 1_000_000_000, date_unixtime=str(T0 + 12)),  # the bot missed this one
            service(1, "migrate_from_group", title="Team"),
            msg(2, date_unixtime=str(T0 + 30)),
        ],
    }  # fmt: skip
    path = write_export(export)
    for _ in range(2):
        summary = await run(session_factory, path)
        assert summary.error is None
        async with session_factory() as session:
            rows = (
                await session.execute(
                    text("SELECT chat_id, msg_id, reply_to_msg_id FROM messages ORDER BY msg_id")
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            (supergroup, -12, None), (supergroup, -11, -10), (supergroup, -10, None),
            (supergroup, 2, None),
        ]  # fmt: skip
