"""Benchmark: a time zone recount of one big chat, and what live batches wait meanwhile.

Seeds one chat with ``--messages`` messages (300 posters, a reply in 5, a link in 11,
a photo in 7) straight into ``messages`` with ``generate_series`` in a fresh database,
builds its rollups (``rebuild_chat_rollups``), then changes its zone (UTC ->
Europe/Berlin) and times ``recount_chat`` while a live writer puts one message of that
chat every 0.2 s through the real ``EventPipeline``: the longest a live batch took during
the recount is printed beside the recount. **Baseline** in the same run: one scan of the
same rows counting them per local day in the new zone (``GROUP BY``), the least any
recount must read.

    python bench/recount.py                  # 1M messages
    python bench/recount.py --messages 10000000

The last line is one JSON object.
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if p != sys.path[0] or not p.endswith("bench")]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import asyncpg  # noqa: E402

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/test"
CHAT = -1001234567890

_SEED = """
INSERT INTO messages (chat_id, msg_id, date, local_day, local_hour, user_id, reply_to_msg_id,
    reply_to_user_id, media_type, text_length, url_count, entities)
SELECT $1, i, d, (d AT TIME ZONE 'UTC')::date, extract(hour FROM d AT TIME ZONE 'UTC'),
    1000 + (i * 7919) % 300,
    CASE WHEN i % 5 = 0 AND i > 1 THEN i - 1 END,
    CASE WHEN i % 5 = 0 AND i > 1 THEN 1000 + ((i - 1) * 7919) % 300 END,
    CASE WHEN i % 7 = 0 THEN 'photo' ELSE 'text' END, 20 + i % 80,
    CASE WHEN i % 11 = 0 THEN 1 ELSE 0 END,
    CASE WHEN i % 11 = 0 THEN jsonb_build_object('urls',
        jsonb_build_array('https://site' || (i % 50) || '.example/p/' || (i % 1000))) END
FROM generate_series($2::bigint, $3::bigint) AS i,
     LATERAL (SELECT $4::timestamptz + (i * interval '37 seconds') AS d) t
"""


async def run(admin_url: str, messages: int) -> dict[str, object]:
    from sqlalchemy import text

    from tgstats.db.chat_settings import update_chat_settings
    from tgstats.db.engine import open_database, run_migrations
    from tgstats.events import MessageEvent
    from tgstats.pipeline import EventPipeline
    from tgstats.pipeline.recount import rebuild_chat_rollups, recount_chat
    from tgstats.settings import DatabaseSettings, PipelineSettings

    name = f"tgstats_bench_recount_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = urlsplit(admin_url)._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    plain = urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    try:
        await run_migrations(url)
        database = open_database(url, DatabaseSettings(pool_size=4))
        conn = await asyncpg.connect(plain)
        await conn.execute(
            "INSERT INTO chats (id, type, title) VALUES ($1, 'supergroup', 'b')", CHAT
        )
        start = datetime(2024, 1, 1, tzinfo=UTC)
        step = 200_000
        for low in range(1, messages + 1, step):
            await conn.execute(_SEED, CHAT, low, min(low + step - 1, messages), start)
        await conn.execute("ANALYZE messages")
        async with database.session_factory() as session:
            await update_chat_settings(session, CHAT, timezone="UTC")
            await session.commit()
        started = time.perf_counter()
        async with database.session_factory() as session:
            await rebuild_chat_rollups(session, CHAT)
            await session.commit()
        rebuild_s = time.perf_counter() - started

        started = time.perf_counter()
        await conn.fetch(
            "SELECT (date AT TIME ZONE 'Europe/Berlin')::date, count(*) FROM messages"
            " WHERE chat_id = $1 GROUP BY 1", CHAT,
        )  # fmt: skip
        scan_s = time.perf_counter() - started

        async with database.session_factory() as session:
            await update_chat_settings(session, CHAT, timezone="Europe/Berlin")
            await session.commit()
        pipeline = EventPipeline(
            session_factory=database.session_factory, settings=PipelineSettings()
        )
        await pipeline.start()
        waits: list[float] = []
        stop = asyncio.Event()

        async def live() -> None:
            msg_id = messages + 1
            while not stop.is_set():
                began = time.perf_counter()
                await pipeline.sink.put(
                    MessageEvent(chat_id=CHAT, msg_id=msg_id, date=datetime.now(UTC), user_id=7)
                )
                await pipeline.sink.flush()
                waits.append(time.perf_counter() - began)
                msg_id += 1
                await asyncio.sleep(0.2)

        writer = asyncio.create_task(live())
        started = time.perf_counter()
        outcome = await recount_chat(database.session_factory, CHAT)
        recount_s = time.perf_counter() - started
        stop.set()
        await writer
        await pipeline.stop()
        assert outcome == "done", outcome
        async with database.session_factory() as session:
            counted = (
                await session.execute(
                    text("SELECT sum(messages) FROM chat_day_rollup WHERE chat_id = :c"),
                    {"c": CHAT},
                )
            ).scalar_one()
            stored = (
                await session.execute(
                    text("SELECT count(*) FROM messages WHERE chat_id = :c"), {"c": CHAT}
                )
            ).scalar_one()
        assert counted == stored, (counted, stored)
        await conn.close()
        await database.dispose()
        return {
            "messages": messages,
            "recount_s": round(recount_s, 2),
            "recount_msgs_per_s": round(messages / recount_s),
            "rebuild_s": round(rebuild_s, 2),
            "scan_s": round(scan_s, 2),
            "recount_vs_scan": round(recount_s / scan_s, 1),
            "live_batches": len(waits),
            "live_wait_max_s": round(max(waits), 3) if waits else None,
            "live_wait_median_s": round(sorted(waits)[len(waits) // 2], 3) if waits else None,
            "load_average": round(os.getloadavg()[0], 2),
        }
    finally:
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("TGSTATS_BENCH_PG", DEFAULT_DB))
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    report = asyncio.run(run(args.database_url, args.messages))
    print(
        f"recount of {report['messages']:,} messages: {report['recount_s']} s "
        f"({report['recount_msgs_per_s']:,} msgs/s; one GROUP BY scan of the rows: "
        f"{report['scan_s']} s, x{report['recount_vs_scan']}); live batches for the chat "
        f"meanwhile: {report['live_batches']}, longest {report['live_wait_max_s']} s"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
