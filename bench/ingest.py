"""Benchmark: the batch writer against one transaction per message and raw COPY.

Part (a), writer alone, in one run on a scratch database (created and dropped here).
The message stream (``make_events``): one message every 7 s over 20 chats in time
order, each chat with its own 400 members of whom a few regulars post most (Zipf),
per-chat message ids, replies to the chat's recent messages, 4 forum chats;
``--workload uniform`` is the earlier stream (every user in every chat, equal odds).

- ``writer``: N message events through ``EventPipeline`` (queue -> BatchWriter,
  one transaction per batch, rollups included) until committed.
- ``naive``: the old design, one transaction per message (the same writing code
  with batches of one), on a slice of the events; its rate is events/s.
- ``copy``: asyncpg ``COPY`` of the very rows the writer inserts into
  ``messages`` into a scratch table built ``LIKE messages INCLUDING ALL`` (same
  columns, same indexes): the ceiling for getting those rows into PostgreSQL.
  Rows are built before the clock starts, so the ceiling is generous.
- ``copy_all``: a second ceiling, COPY of every row the writer ends up with
  (the messages plus their rollup rows, chats and data versions) into scratch
  copies of those tables, as events/s: the same data, written without lookups
  or upserts.

Part (b), end to end (raw MTProto updates through kurigram's dispatcher ->
plugin -> writer -> committed, against the same updates into a no-op handler):
see ``run_end_to_end`` below. It uses the MTProto plugin's test harness
(``tgstats_mtproto.testing``) and is skipped, reported as null, without it.

    python bench/ingest.py            # 50k events (5k updates end to end), 5 repeats
    python bench/ingest.py --quick    # 5k events (500 updates end to end), 3 repeats

The last output line is one JSON object: writer_events_per_s, copy_rows_per_s,
naive_events_per_s, writer_vs_copy, e2e_msgs_per_s, floor_msgs_per_s, e2e_vs_floor
(medians; null for a part not run), plus e2e_cpu_us_per_msg / floor_cpu_us_per_msg and
e2e_vs_floor_cpu: this process's CPU time per message in (b), a steadier view of the
end-to-end ratio when the machine is shared (the bot's core is the bottleneck;
PostgreSQL's work runs in its own process, on the other core).
"""

from __future__ import annotations

import sys

# Run as a script, bench/ comes first on sys.path and bench/http.py would shadow
# the standard library's http package.
sys.path[:] = [p for p in sys.path if p != sys.path[0] or not p.endswith("bench")]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import asyncpg  # noqa: E402

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/test"

WORDS = (
    "coffee morning release build deploy server tomorrow meeting python kotlin review "
    "merge ticket лето привет погода работа завтра code test issue weekend music"
).split()
EMOJI = ("😀", "👍🏽", "🔥", "🇩🇪")
LINKS = ("https://github.com/org/repo/pull/12", "https://www.example.com/page", "t.me/channel")


def make_events(
    count: int, *, chats: int = 20, members: int = 400, seed: int = 1, workload: str = "chats"
) -> list[Any]:
    """Message events as a busy set of groups produces them, features computed up front.

    One message every 7 s across ``chats`` groups, in time order (so a batch is a
    contiguous stretch of time, as a live writer or a catch-up sees it).

    ``workload="chats"`` (the default): each chat has its own ``members`` drawn from
    a shared pool (people are in a few chats, not all of them), and who posts follows
    a Zipf law within the chat (weight 1/rank: a few regulars write most messages,
    as measured in real groups). Message ids count up per chat, as Telegram's do; a
    reply (20%) answers one of the chat's last 30 messages, so its author is known
    (in the batch or stored) and reply pairs and replies received are counted; 4 of
    the chats are forums where every message is in one of 5 topics.

    ``workload="uniform"``: the earlier workload, kept for comparison: every message
    from any of 400 users in any chat with equal odds, global message ids, a reply
    names the previous global id (usually another chat's, so its author is unknown),
    and a random 1 in 4 messages is in topic 5 in every chat.
    """
    from tgstats.events import MessageEvent
    from tgstats.features import extract

    rng = random.Random(seed)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    pool = list(range(1000, 1000 + members * chats // 2))
    rosters = [rng.sample(pool, members) for _ in range(chats)]
    weights = [1 / rank for rank in range(1, members + 1)]
    cumulative = list(itertools.accumulate(weights))
    next_id = [0] * chats
    recent: list[list[int]] = [[] for _ in range(chats)]
    events = []
    for i in range(count):
        words = rng.choices(WORDS, k=rng.randint(2, 14))
        if rng.random() < 0.2:
            words.append(rng.choice(EMOJI))
        if rng.random() < 0.1:
            words.append(rng.choice(LINKS))
        body = " ".join(words)
        k = rng.randrange(chats)
        media = rng.choice(("text",) * 6 + ("photo", "sticker", "video"))
        if workload == "uniform":
            user = 1000 + rng.randrange(members)
            msg_id = i + 1
            reply_to = i if i and rng.random() < 0.2 else None
            topic = rng.choice((None, None, None, 5))
        else:
            user = rng.choices(rosters[k], cum_weights=cumulative)[0]
            next_id[k] += 1
            msg_id = next_id[k]
            last = recent[k]
            reply_to = rng.choice(last) if last and rng.random() < 0.2 else None
            last.append(msg_id)
            if len(last) > 30:
                del last[0]
            topic = rng.randint(1, 5) if k < 4 else None
        events.append(
            MessageEvent(
                chat_id=-1001000000000 - k,
                msg_id=msg_id,
                date=start + timedelta(seconds=i * 7),
                user_id=user,
                reply_to_msg_id=reply_to,
                topic_id=topic,
                media_type=media,
                features=extract(body),
                text=body,
            )
        )
    return events


# --------------------------------------------------------------------------- part (a)


async def _reset(conn: asyncpg.Connection) -> None:
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename <> 'alembic_version' AND tablename NOT LIKE 'copy_%'"
    )
    await conn.execute("TRUNCATE " + ", ".join(f'"{r[0]}"' for r in tables) + " RESTART IDENTITY")
    copies = await conn.fetch("SELECT tablename FROM pg_tables WHERE tablename LIKE 'copy_%'")
    await conn.execute("TRUNCATE " + ", ".join(r[0] for r in copies))
    await conn.execute("CHECKPOINT")


async def run_writer(session_factory: Any, events: list[Any], batch_size: int) -> float:
    from tgstats.pipeline import EventPipeline
    from tgstats.settings import PipelineSettings

    pipeline = EventPipeline(
        session_factory=session_factory,
        settings=PipelineSettings(queue_size=max(10_000, batch_size * 4), batch_size=batch_size),
    )
    await pipeline.start()
    started = time.perf_counter()
    await pipeline.sink.put_many(events)
    await pipeline.sink.flush()
    elapsed = time.perf_counter() - started
    await pipeline.stop()
    return len(events) / elapsed


async def run_naive(session_factory: Any, events: list[Any]) -> float:
    """One transaction per message: the design the batch writer replaced."""
    from tgstats.pipeline import BatchWriter
    from tgstats.pipeline.rollups import raw_connection

    writer = BatchWriter()
    started = time.perf_counter()
    for event in events:
        async with session_factory() as session, session.begin():
            await writer.write(await raw_connection(session), [event])
    return len(events) / (time.perf_counter() - started)


def copy_rows(events: list[Any]) -> list[tuple[Any, ...]]:
    """The rows the writer inserts into ``messages`` for these events (UTC days)."""
    import msgspec

    encode = msgspec.json.Encoder()
    rows = []
    for e in events:
        f = e.features
        kinds = (("urls", f.urls), ("hashtags", f.hashtags), ("mentions", f.mentions),
                 ("emojis", f.emojis))  # fmt: skip
        entities = {k: list(v) for k, v in kinds if v}
        rows.append((
            e.chat_id, e.msg_id, e.date, e.date.date(), e.date.hour, e.user_id, None, e.topic_id,
            e.reply_to_msg_id, None, e.media_type, f.text_length, len(f.urls), len(f.emojis),
            len(f.mentions), len(f.hashtags),
            encode.encode(entities).decode() if entities else None,
            None, None, None, None, None, 0, False, None, None,
        ))  # fmt: skip
    return rows


COPY_COLUMNS = (
    "chat_id", "msg_id", "date", "local_day", "local_hour", "user_id", "sender_chat_id",
    "topic_id", "reply_to_msg_id", "reply_to_user_id", "media_type", "text_length", "url_count",
    "emoji_count", "mention_count", "hashtag_count", "entities", "forward_origin",
    "forward_from_id", "forward_from_name", "via_bot_id", "edit_date", "edit_count",
    "is_deleted", "deleted_at", "text",
)  # fmt: skip


async def run_copy(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> float:
    started = time.perf_counter()
    await conn.copy_records_to_table("copy_target", records=rows, columns=COPY_COLUMNS)
    return len(rows) / (time.perf_counter() - started)


ROLLUP_TABLES = (
    "chat_day_rollup", "chat_hour_rollup", "chat_user_day_rollup", "chat_user_hour_rollup",
    "chat_media_day_rollup", "chat_term_day_rollup", "chat_topic_user_day_rollup",
    "reply_pair_day_rollup", "chat_data_versions", "chats",
)  # fmt: skip


async def snapshot_rollups(conn: asyncpg.Connection) -> dict[str, list[Any]]:
    """Every row the writer left besides ``messages`` (rollups, chats, data versions)."""
    return {table: await conn.fetch(f"SELECT * FROM {table}") for table in ROLLUP_TABLES}


async def run_copy_all(
    conn: asyncpg.Connection, rows: list[tuple[Any, ...]], written: dict[str, list[Any]], count: int
) -> float:
    """A second ceiling: COPY of every row the writer ends up with (messages and their
    rollups) into scratch copies of those tables, as events/s. No upsert, no lookup."""
    started = time.perf_counter()
    await conn.copy_records_to_table("copy_target", records=rows, columns=COPY_COLUMNS)
    for table, records in written.items():
        if records:
            await conn.copy_records_to_table(f"copy_{table}", records=[tuple(r) for r in records])
    return count / (time.perf_counter() - started)


async def part_a(
    database_url: str, *, count: int, repeats: int, batch_size: int, workload: str = "chats"
) -> dict[str, Any]:
    from tgstats.db.engine import open_database, run_migrations
    from tgstats.settings import DatabaseSettings

    name = f"tgstats_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    parts = urlsplit(database_url)
    url = parts._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    results: dict[str, list[float]] = {"writer": [], "naive": [], "copy": [], "copy_all": []}
    try:
        await run_migrations(url)
        database = open_database(url, DatabaseSettings(pool_size=4))
        conn = await asyncpg.connect(parts._replace(path=f"/{name}").geturl())
        await conn.execute("CREATE TABLE copy_target (LIKE messages INCLUDING ALL)")
        for table in ROLLUP_TABLES:
            await conn.execute(f"CREATE TABLE copy_{table} (LIKE {table} INCLUDING ALL)")
        print(f"generating {count} events ...", flush=True)
        events = make_events(count, workload=workload)
        rows = copy_rows(events)
        naive_events = events[: max(200, count // 40)]
        try:
            for repeat in range(repeats):
                await _reset(conn)
                results["copy"].append(await run_copy(conn, rows))
                await _reset(conn)
                results["writer"].append(await run_writer(database.session_factory, events,
                                                          batch_size))  # fmt: skip
                written = await snapshot_rollups(conn)
                await _reset(conn)
                results["copy_all"].append(await run_copy_all(conn, rows, written, len(events)))
                await _reset(conn)
                results["naive"].append(await run_naive(database.session_factory, naive_events))
                last = {key: f"{values[-1]:,.0f}" for key, values in results.items()}
                print(
                    f"  run {repeat + 1}/{repeats}: writer {last['writer']} ev/s, copy "
                    f"{last['copy']} rows/s, copy of all rows {last['copy_all']} ev/s, "
                    f"naive {last['naive']} ev/s",
                    flush=True,
                )
        finally:
            await conn.close()
            await database.dispose()
    finally:
        admin = await asyncpg.connect(database_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return {key: statistics.median(values) for key, values in results.items()}


# --------------------------------------------------------------------------- part (b)


async def run_end_to_end(database_url: str, *, count: int, repeats: int) -> dict[str, Any] | None:
    """PART (b), END TO END, through the MTProto plugin's harness (``tgstats_mtproto.testing``).

    ``e2e``: raw MTProto ``Updates`` (serialised and parsed back, as from the
    wire) -> kurigram's ``handle_updates`` and dispatcher -> the mtproto
    plugin's handlers -> ``EventPipeline`` -> committed in PostgreSQL.
    ``floor``: the same updates through the same harness and dispatcher into
    a no-op message handler. Both feed one update at a time and wait for the
    dispatcher to finish it (the harness's ``feed``). Returns None, reported
    as null, when the plugin is not installed.
    """
    try:
        from tgstats_mtproto import MTProtoPlugin
        from tgstats_mtproto.testing import MTProtoHarness, RawUpdates
    except ImportError:
        return None
    from pyrogram.handlers import MessageHandler

    from tgstats.db.engine import open_database, run_migrations
    from tgstats.pipeline import EventPipeline
    from tgstats.plugin_api import PluginContext, RateLimitResult, ServiceRegistry
    from tgstats.settings import DatabaseSettings, PipelineSettings, Settings
    from tgstats.telemetry import open_telemetry

    class NoLimit:
        async def hit(self, key: str, *, per_minute: int, per_hour: int) -> RateLimitResult:
            return RateLimitResult(allowed=True, limit=per_minute, remaining=per_minute,
                                   reset_after=60)  # fmt: skip

    class NoopPlugin:
        """The floor: kurigram parses each update and calls a handler that does nothing."""

        def __init__(self) -> None:
            self.dispatcher = self
            self.seen = 0

        def attach(self, client: Any) -> None:
            client.add_handler(MessageHandler(self._noop))

        async def _noop(self, client: Any, message: Any) -> None:
            self.seen += 1

        async def drain(self) -> None:
            return None

    def make_updates(raw_updates: Any) -> list[Any]:
        rng = random.Random(3)
        group = raw_updates.supergroup(1001, "Bench")
        people = [raw_updates.user(500 + i, f"Member {i}") for i in range(50)]
        return [
            raw_updates.new_message(group, rng.choice(people),
                                    " ".join(rng.choices(WORDS, k=rng.randint(2, 14))))
            for _ in range(count)
        ]  # fmt: skip

    async def feed_all(harness: Any, updates: list[Any]) -> float:
        started = time.perf_counter()
        for update in updates:
            await harness.feed(update)
        return time.perf_counter() - started

    name = f"tgstats_bench_e2e_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = urlsplit(database_url)._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    e2e: list[float] = []
    floor: list[float] = []
    e2e_cpu: list[float] = []  # CPU time of this process per message, in µs
    floor_cpu: list[float] = []
    try:
        await run_migrations(url)
        database = open_database(url, DatabaseSettings(pool_size=4))
        settings = Settings.from_env({})
        try:
            for repeat in range(repeats):
                async with database.engine.begin() as conn:
                    await conn.exec_driver_sql(
                        "TRUNCATE messages, chats, users, chat_day_rollup CASCADE"
                    )
                telemetry = open_telemetry("bench")
                pipeline = EventPipeline(
                    session_factory=database.session_factory,
                    settings=PipelineSettings(),
                    metrics=telemetry.metrics,
                )
                await pipeline.start()
                services = ServiceRegistry()
                services.register("events", pipeline.sink)
                services.register("metrics", telemetry.metrics)
                services.register("rate_limiter", NoLimit())
                services.register("session_factory", database.session_factory)
                plugin = MTProtoPlugin(context=PluginContext(
                    plugin_id="mtproto", settings=settings, services=services))  # fmt: skip
                raw_updates = RawUpdates()
                updates = make_updates(raw_updates)
                harness = await MTProtoHarness.start(plugin, raw_updates=raw_updates)
                try:
                    started = time.perf_counter()
                    cpu_started = time.process_time()
                    await feed_all(harness, updates)
                    await pipeline.sink.flush()
                    e2e.append(count / (time.perf_counter() - started))
                    e2e_cpu.append((time.process_time() - cpu_started) / count * 1e6)
                finally:
                    await harness.close()
                    await pipeline.stop()
                    telemetry.shutdown()
                async with database.engine.connect() as conn:
                    stored = (await conn.exec_driver_sql("SELECT count(*) FROM messages")).scalar()
                assert stored == count, f"e2e stored {stored} of {count} messages"

                noop = NoopPlugin()
                raw_updates = RawUpdates()
                updates = make_updates(raw_updates)
                harness = await MTProtoHarness.start(
                    noop,  # type: ignore[arg-type]
                    raw_updates=raw_updates,
                )
                try:
                    cpu_started = time.process_time()
                    floor.append(count / await feed_all(harness, updates))
                    floor_cpu.append((time.process_time() - cpu_started) / count * 1e6)
                finally:
                    await harness.close()
                assert noop.seen == count, f"floor saw {noop.seen} of {count} messages"
                print(f"  e2e run {repeat + 1}/{repeats}: {e2e[-1]:,.0f} msgs/s through the "
                      f"plugin and writer ({e2e_cpu[-1]:,.0f} µs CPU each), floor "
                      f"{floor[-1]:,.0f} msgs/s ({floor_cpu[-1]:,.0f} µs CPU each)",
                      flush=True)  # fmt: skip
        finally:
            await database.dispose()
    finally:
        admin = await asyncpg.connect(database_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return {
        "e2e_msgs_per_s": statistics.median(e2e),
        "floor_msgs_per_s": statistics.median(floor),
        "e2e_cpu_us": statistics.median(e2e_cpu),
        "floor_cpu_us": statistics.median(floor_cpu),
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5k events, 3 repeats")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: PIPELINE_BATCH_SIZE's default"
    )
    parser.add_argument("--database-url", default=os.environ.get("TGSTATS_BENCH_PG", DEFAULT_DB))
    parser.add_argument("--skip-e2e", action="store_true", help="part (a) only")
    parser.add_argument("--workload", choices=("chats", "uniform"), default="chats",
                        help="part (a)'s message stream (see make_events)")  # fmt: skip
    parser.add_argument("--e2e-messages", type=int, default=None,
                        help="updates per end-to-end run (default 5000, --quick 500)")  # fmt: skip
    args = parser.parse_args()
    if args.batch_size is None:
        from tgstats.settings import PipelineSettings

        args.batch_size = PipelineSettings().batch_size
    count = args.events or (5_000 if args.quick else 50_000)
    repeats = args.repeats or (3 if args.quick else 5)
    a = asyncio.run(part_a(args.database_url, count=count, repeats=repeats,
                           batch_size=args.batch_size, workload=args.workload))  # fmt: skip
    b = None
    if not args.skip_e2e:
        e2e_count = args.e2e_messages or (500 if args.quick else 5000)
        b = asyncio.run(run_end_to_end(args.database_url, count=e2e_count, repeats=repeats))
    e2e = b.get("e2e_msgs_per_s") if b else None
    floor = b.get("floor_msgs_per_s") if b else None
    summary = {
        "events": count,
        "repeats": repeats,
        "batch_size": args.batch_size,
        "workload": args.workload,
        "writer_events_per_s": round(a["writer"]),
        "copy_rows_per_s": round(a["copy"]),
        "naive_events_per_s": round(a["naive"]),
        "writer_vs_copy": round(a["writer"] / a["copy"], 3),
        "writer_vs_naive": round(a["writer"] / a["naive"], 1),
        "copy_all_rows_events_per_s": round(a["copy_all"]),
        "writer_vs_copy_all_rows": round(a["writer"] / a["copy_all"], 3),
        "e2e_msgs_per_s": round(e2e) if e2e else None,
        "floor_msgs_per_s": round(floor) if floor else None,
        "e2e_vs_floor": round(e2e / floor, 3) if e2e and floor else None,
        # This process's CPU per message: on a busy machine a steadier view of the same
        # ratio (the bot's core is the bottleneck; PostgreSQL runs in its own process).
        "e2e_cpu_us_per_msg": round(b["e2e_cpu_us"], 1) if b else None,
        "floor_cpu_us_per_msg": round(b["floor_cpu_us"], 1) if b else None,
        "e2e_vs_floor_cpu": round(b["floor_cpu_us"] / b["e2e_cpu_us"], 3) if b else None,
    }
    print(
        f"writer {summary['writer_events_per_s']:,} ev/s = {summary['writer_vs_copy']:.0%} of COPY "
        f"({summary['copy_rows_per_s']:,} rows/s); {summary['writer_vs_naive']}x the "
        f"one-transaction-per-message writer ({summary['naive_events_per_s']:,} ev/s)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
