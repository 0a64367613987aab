"""``DATABASE_READ_URL`` against a real streaming replica, and what a user sees under lag.

A throwaway primary and a ``pg_basebackup -R`` replica of it (``tests.support.
streaming_replica``); the app writes to the primary and reads stats from the replica.
Replication lag is made with ``pg_wal_replay_pause()`` on the replica. The behaviour
(docs/deploy.md, "A read replica"):

- stats read from the replica, so another process's writes (the bot's) show once the
  replica has replayed them;
- settings are read and written on the primary: a change reads back at once;
- after a change made through this process, its stats read from the primary until the
  replica has replayed past that change, so an answer never mixes new settings with older
  data; then they read from the replica again.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.streaming_replica import StreamingPair
from tgstats.importer.synthetic import write_synthetic_export
from tgstats.plugin_api.testing import (
    ADMIN_TOKEN,
    create_test_database,
    running_app,
    test_settings,
)

HEADERS = {"X-API-Token": ADMIN_TOKEN}


@pytest.fixture(scope="module")
def pair() -> Any:
    servers = StreamingPair().start()
    try:
        yield servers
    finally:
        servers.stop()


async def _fetchval(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _caught_up(pair: StreamingPair, database: str) -> None:
    """Wait until the replica has replayed everything the primary has written."""
    target = await _fetchval(pair.url("primary", database), "SELECT pg_current_wal_insert_lsn()")
    for _ in range(200):
        replayed = await _fetchval(
            pair.url("replica", database), "SELECT pg_last_wal_replay_lsn() >= $1", target
        )
        if replayed:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"replica not caught up:\n{pair.log('replica')}")


@pytest.fixture(scope="module")
async def app(pair: StreamingPair) -> AsyncIterator[tuple[Any, str]]:
    url = await create_test_database(pair.url("primary"), prefix="tgstats_replica")
    database = url.rsplit("/", 1)[1]
    await _caught_up(pair, database)
    settings = test_settings(
        url,
        DATABASE_READ_URL=pair.url("replica", database),
        TGSTATS_DATA_DIR=tempfile.mkdtemp(prefix="tgstats-replica-data-"),
        JOBS_WORKER="1",  # the import below runs as a job
    )
    async with running_app(settings) as running:
        yield running.client, database


def _regular_messages(export: Path) -> int:
    """Counted from the file, independently of the importer."""
    chat = json.loads(export.read_text(encoding="utf-8"))
    return sum(1 for m in chat["messages"] if m.get("type") == "message")


async def _chat_title(client: Any, chat_id: int) -> str:
    response = await client.get(f"/api/v1/chats/{chat_id}", headers=HEADERS)
    assert response.status_code == 200, response.text
    return str(response.json()["title"])


async def test_stats_read_the_replica_and_a_settings_change_reads_back_under_lag(
    pair: StreamingPair, app: tuple[Any, str], tmp_path: Path
) -> None:
    client, database = app
    primary, replica = pair.url("primary", database), pair.url("replica", database)

    # Messages from ten days ago on, imported through the API: written on the primary.
    export = tmp_path / "export.json"
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    write_synthetic_export(export, messages=300, users=12, start=start - timedelta(days=10))
    upload = await client.post("/api/v1/imports", content=export.read_bytes(), headers=HEADERS)
    assert upload.status_code == 202, upload.text
    for _ in range(400):
        job = (await client.get(f"/api/v1/imports/{upload.json()['id']}", headers=HEADERS)).json()
        if job["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "done", job
    await _caught_up(pair, database)
    (chat,) = (await client.get("/api/v1/chats", headers=HEADERS)).json()["chats"]
    chat_id = chat["chat_id"]
    assert chat["messages_30d"] == _regular_messages(export)
    title = chat["title"]

    # Lag: the replica stops replaying. A write by another process (as the bot's are)...
    await _fetchval(replica, "SELECT pg_wal_replay_pause()")
    try:
        await _fetchval(primary, "UPDATE chats SET title = 'Renamed' WHERE id = $1", chat_id)
        # ...is not in the stats yet: they come from the replica.
        assert await _chat_title(client, chat_id) == title
        assert await _fetchval(primary, "SELECT title FROM chats WHERE id = $1", chat_id) == (
            "Renamed"
        )

        # A settings change is written on the primary and reads back at once.
        before = (await client.get(f"/api/v1/chats/{chat_id}/settings", headers=HEADERS)).json()
        assert before["text_retention_days"] != 45
        changed = await client.patch(
            f"/api/v1/chats/{chat_id}/settings",
            json={"text_retention_days": 45},
            headers=HEADERS,
        )
        assert changed.status_code == 200, changed.text
        after = await client.get(f"/api/v1/chats/{chat_id}/settings", headers=HEADERS)
        assert after.status_code == 200 and after.json()["text_retention_days"] == 45
        # The replica really is behind: it has neither change.
        assert await _fetchval(
            replica,
            "SELECT count(*) FROM chat_settings WHERE chat_id = $1 AND text_retention_days = 45",
            chat_id,
        ) == 0  # fmt: skip
        # Until the replica has the change, this process's stats read from the primary:
        # the rename shows together with the new settings.
        assert await _chat_title(client, chat_id) == "Renamed"
    finally:
        await _fetchval(replica, "SELECT pg_wal_replay_resume()")

    await _caught_up(pair, database)
    assert await _chat_title(client, chat_id) == "Renamed"
    # Caught up, stats read from the replica again: another lagging write stays unseen.
    await _fetchval(replica, "SELECT pg_wal_replay_pause()")
    try:
        await _fetchval(primary, "UPDATE chats SET title = 'Again' WHERE id = $1", chat_id)
        assert await _chat_title(client, chat_id) == "Renamed"
    finally:
        await _fetchval(replica, "SELECT pg_wal_replay_resume()")
    await _caught_up(pair, database)
    assert await _chat_title(client, chat_id) == "Again"
