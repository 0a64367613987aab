"""Seed the query benchmark's database: one big chat plus 100 small ones, server-side.

Raw ``messages`` rows are generated with ``generate_series`` and every rollup
is derived from them with ``INSERT ... SELECT ... GROUP BY``, so the rollups
and the raw rows agree and the raw-scan baseline answers the same questions.
Word/link/emoji term rows (which raw rows cannot give back) are generated
per day with a Zipf-like vocabulary. Week rollups are then sealed up to each
chat's current local week by the writer's own ``seal_weeks`` (a database seeded
before they existed gets the same rows from migration 0006). Seeding 10M
messages takes minutes; the database is kept and reused while its
``bench_meta`` row matches the size.

Replies (about 20% of messages) are modelled on how a chat talks: a reply
answers one of the last ~100 messages, recent ones far more often (``k``
messages back with ``k = floor(100 * u^3)``, u uniform: half within the last
12), so it goes to whoever posted that message, i.e. to the active posters;
and it is written by one of that poster's conversation partners, members whose
ids lie within 20 of theirs, the nearest far more often (offset
``±(1 + floor(20 * u^3))``: one in three is a direct neighbour). Which
messages are replies, and every message's poster, are fixed by hashes of the
message id, so a reply's ``reply_to_user_id`` is the real poster of its
``reply_to_msg_id``; replies answer only non-reply messages (the nearest of
up to three before the drawn one; the few that find none stay plain
messages). In a week of the big chat this gives ~19k replies in ~11k distinct
(replier, replied-to) pairs (uniformly random targets, the previous seed, gave
~19k pairs: no two replies shared a pair).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg

BIG_CHAT = -1009000000001
SMALL_CHAT_BASE = -1009100000000
DAYS = 730
BIG_USERS = 5000
SMALL_CHATS = 100
SMALL_USERS = 60
BIG_ZONE = "Europe/Berlin"
TOPICS = 8


@dataclass(frozen=True)
class SeedSize:
    big_messages: int
    small_messages: int  # per small chat
    words_per_day: int  # distinct words per day in the big chat

    @property
    def label(self) -> str:
        return f"{self.big_messages}:{self.small_messages}:{self.words_per_day}:v4"


FULL = SeedSize(big_messages=10_000_000, small_messages=10_000, words_per_day=5000)
QUICK = SeedSize(big_messages=1_000_000, small_messages=1_000, words_per_day=1500)

_ROLLUPS = [
    "chat_day_rollup", "chat_hour_rollup", "chat_user_day_rollup", "chat_user_hour_rollup",
    "chat_media_day_rollup", "chat_term_day_rollup", "chat_topic_user_day_rollup",
    "reply_pair_day_rollup",
]  # fmt: skip
_WEEK_ROLLUPS = [
    "chat_user_week_rollup", "chat_term_week_rollup", "chat_topic_user_week_rollup",
    "reply_pair_week_rollup",
]  # fmt: skip


def _message_indexes() -> list[tuple[str, str]]:
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex

    from tgstats.db.models import Base

    table = Base.metadata.tables["messages"]
    return [
        (str(index.name), str(CreateIndex(index).compile(dialect=postgresql.dialect())))
        for index in sorted(table.indexes, key=lambda i: str(i.name))
    ]


def _uniform(expr: str, seed: int) -> str:
    """SQL: a uniform [0, 1) number fixed by the integer ``expr`` (a hash of it)."""
    return f"((hashint8extended(({expr})::bigint, {seed}) & 4294967295)::float8 / 4294967296.0)"


def _poster(msg: str) -> str:
    """SQL: the member who posts message ``msg`` unless it is a reply (see ``message_sql``)."""
    return (
        f"(1 + ((({msg}) * {DAYS} / $2::bigint) * 13"
        f" + floor(least(900, $4::bigint) * power({_uniform(msg, 1)}, 2))::bigint) % $4::bigint)"
    )


def _is_reply(msg: str) -> str:
    """SQL: whether message ``msg`` is drawn as a reply (20%)."""
    return f"({_uniform(msg, 2)} < 0.2)"


async def seeded_label(conn: asyncpg.Connection) -> str | None:
    exists = await conn.fetchval("SELECT to_regclass('bench_meta') IS NOT NULL")
    if not exists:
        return None
    label: str | None = await conn.fetchval("SELECT label FROM bench_meta LIMIT 1")
    return label


async def _step(conn: asyncpg.Connection, name: str, sql: str, *args: object) -> None:
    started = time.perf_counter()
    await conn.execute(sql, *args)
    print(f"  seed: {name} ({time.perf_counter() - started:.1f}s)", flush=True)


async def seed(conn: asyncpg.Connection, size: SeedSize) -> None:
    """Fill an empty, migrated database."""
    await conn.execute("SET synchronous_commit = off")
    await conn.execute("SET work_mem = '256MB'")
    await conn.execute("SET maintenance_work_mem = '512MB'")
    tables = ["messages", "message_reactions", "message_reaction_totals", "membership_events",
              "memberships", "users",
              "chats", "chat_settings", "forum_topics", *_ROLLUPS, *_WEEK_ROLLUPS]  # fmt: skip
    await conn.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    # Indexes are rebuilt after the bulk load: much faster than maintaining them row by row.
    # Their definitions come from the models, so an interrupted seed cannot lose one.
    indexes = _message_indexes()
    for name, _ in indexes:
        await conn.execute(f'DROP INDEX IF EXISTS "{name}"')
    await _step(
        conn,
        "chats",
        f"""
        INSERT INTO chats (id, type, title, username, is_forum)
        VALUES ({BIG_CHAT}, 'supergroup', 'Big chat', 'bigchat', true);
        INSERT INTO chats (id, type, title)
        SELECT {SMALL_CHAT_BASE} - g, 'supergroup', 'Small chat ' || g
        FROM generate_series(1, {SMALL_CHATS}) g;
        INSERT INTO chat_settings (chat_id, timezone) VALUES ({BIG_CHAT}, '{BIG_ZONE}');
        INSERT INTO chat_settings (chat_id, timezone)
        SELECT {SMALL_CHAT_BASE} - g, (ARRAY['UTC','Asia/Kathmandu','America/New_York'])[1 + g % 3]
        FROM generate_series(1, {SMALL_CHATS}) g;
        INSERT INTO users (id, first_name, username)
        SELECT g, 'User ' || g, 'user' || g FROM generate_series(1, {BIG_USERS}) g;
        INSERT INTO forum_topics (chat_id, topic_id, title)
        SELECT {BIG_CHAT}, g, 'Topic ' || g FROM generate_series(1, {TOPICS}) g;
        """,
    )
    # Messages: evenly over DAYS days up to now. Each day draws its posters from a window of
    # 900 members (skewed: a few post most) that slides by 13 members a day, so a big chat
    # has ~850 daily and ~1300 monthly active posters among 5000 members. Replies: see the
    # module's docstring.
    message_sql = f"""
        INSERT INTO messages (chat_id, msg_id, date, local_day, local_hour, user_id, topic_id,
                              reply_to_msg_id, reply_to_user_id, media_type, text_length,
                              url_count, emoji_count)
        SELECT $1::bigint, i, d, (d AT TIME ZONE $3::text)::date,
               extract(hour FROM d AT TIME ZONE $3::text)::smallint,
               CASE WHEN j IS NULL THEN {_poster("i")}
                    ELSE 1 + ((to_u - 1 + partner) % $4::bigint + $4::bigint) % $4::bigint END,
               CASE WHEN $1::bigint = {BIG_CHAT} THEN (i % {TOPICS}) END,
               j, to_u,
               (ARRAY['text','text','text','text','text','photo','video','sticker','voice',
                      'document'])[1 + (i % 10)],
               (i * 31) % 300, CASE WHEN i % 9 = 0 THEN 1 ELSE 0 END, (i % 4)
        FROM (
            SELECT i, d, j, CASE WHEN j IS NOT NULL THEN {_poster("j")} END AS to_u,
                   (1 + floor(20 * power(random(), 3))::bigint)
                       * (CASE WHEN random() < 0.5 THEN 1 ELSE -1 END) AS partner
            FROM (
                SELECT i, d,
                       CASE WHEN NOT {_is_reply("t")} THEN t
                            WHEN NOT {_is_reply("t - 1")} THEN t - 1
                            WHEN NOT {_is_reply("t - 2")} THEN t - 2 END AS j
                FROM (
                    SELECT i, now() - make_interval(
                               secs => ({DAYS} * 86400.0) * (1 - i::float8 / $2::bigint)) AS d,
                           CASE WHEN i > 200 AND {_is_reply("i")}
                                THEN i - 1 - floor(100 * power(random(), 3))::bigint END AS t
                    FROM generate_series(1, $2::bigint) i
                ) a
            ) b
        ) g
    """
    await _step(conn, f"big chat messages ({size.big_messages:,})", message_sql, BIG_CHAT,
                size.big_messages, BIG_ZONE, BIG_USERS)  # fmt: skip
    started = time.perf_counter()
    for g in range(1, SMALL_CHATS + 1):
        zone = ["UTC", "Asia/Kathmandu", "America/New_York"][g % 3]
        await conn.execute(message_sql, SMALL_CHAT_BASE - g, size.small_messages, zone,
                           SMALL_USERS)  # fmt: skip
    print(f"  seed: small chats ({time.perf_counter() - started:.1f}s)", flush=True)
    for name, ddl in indexes:
        await _step(conn, f"index {name}", ddl)
    await _step(
        conn,
        "members",
        """
        INSERT INTO memberships (chat_id, user_id, status, joined_at)
        SELECT m.chat_id, m.user_id, CASE WHEN m.user_id % 13 = 0 THEN 'left' ELSE 'member' END,
               min(m.date) - interval '1 day'
        FROM messages m WHERE m.user_id IS NOT NULL GROUP BY m.chat_id, m.user_id;
        INSERT INTO memberships (chat_id, user_id, status, joined_at)
        SELECT $1::bigint, g, 'member', now() - interval '400 days'
        FROM generate_series($2::bigint + 1, $2::bigint + 2000) g;
        INSERT INTO membership_events (chat_id, user_id, action, date, local_day)
        SELECT chat_id, user_id, 'join', joined_at, joined_at::date FROM memberships
        WHERE joined_at IS NOT NULL;
        INSERT INTO membership_events (chat_id, user_id, action, date, local_day)
        SELECT chat_id, user_id, 'leave', joined_at + interval '30 days',
               (joined_at + interval '30 days')::date
        FROM memberships WHERE status = 'left';
        """.replace("$1::bigint", str(BIG_CHAT)).replace("$2::bigint", str(BIG_USERS)),
    )
    await _step(
        conn,
        "reactions",
        """
        INSERT INTO message_reactions (chat_id, msg_id, user_id, reaction, added_at)
        SELECT m.chat_id, m.msg_id, 1 + ((m.msg_id * k) % 997),
               (ARRAY['👍','❤','🔥','😂','🎉'])[1 + (k % 5)], m.date + interval '5 minutes'
        FROM messages m, generate_series(1, 4) k
        WHERE m.msg_id % 50 = 0 AND k <= 1 + (m.msg_id / 50) % 4
        """,
    )
    await _rollups(conn, size)
    await _weeks(conn)
    await _day_order(conn)
    await conn.execute("CREATE TABLE bench_meta (label text)")
    await conn.execute("INSERT INTO bench_meta VALUES ($1)", size.label)
    await _step(conn, "vacuum analyze", "VACUUM ANALYZE")


async def _rollups(conn: asyncpg.Connection, size: SeedSize) -> None:
    poster = "coalesce(user_id, sender_chat_id)"
    await _step(
        conn,
        "chat_user_day_rollup",
        f"""
        INSERT INTO chat_user_day_rollup (chat_id, user_id, local_day, messages, text_length,
                                          media, urls, replies_sent)
        SELECT chat_id, {poster}, local_day, count(*), sum(text_length),
               count(*) FILTER (WHERE media_type <> 'text'), sum(url_count),
               count(*) FILTER (WHERE reply_to_msg_id IS NOT NULL)
        FROM messages GROUP BY 1, 2, 3;
        INSERT INTO chat_user_day_rollup AS t (chat_id, user_id, local_day, replies_received)
        SELECT chat_id, reply_to_user_id, local_day, count(*) FROM messages
        WHERE reply_to_user_id IS NOT NULL GROUP BY 1, 2, 3
        ON CONFLICT (chat_id, user_id, local_day)
        DO UPDATE SET replies_received = excluded.replies_received;
        INSERT INTO chat_user_day_rollup AS t (chat_id, user_id, local_day, reactions_given)
        SELECT r.chat_id, r.user_id, m.local_day, count(*) FROM message_reactions r
        JOIN messages m USING (chat_id, msg_id) GROUP BY 1, 2, 3
        ON CONFLICT (chat_id, user_id, local_day)
        DO UPDATE SET reactions_given = excluded.reactions_given;
        INSERT INTO chat_user_day_rollup AS t (chat_id, user_id, local_day, reactions_received)
        SELECT m.chat_id, m.user_id, m.local_day, count(*) FROM message_reactions r
        JOIN messages m USING (chat_id, msg_id) GROUP BY 1, 2, 3
        ON CONFLICT (chat_id, user_id, local_day)
        DO UPDATE SET reactions_received = excluded.reactions_received;
        """,
    )
    await _step(
        conn,
        "chat_day_rollup",
        f"""
        INSERT INTO chat_day_rollup (chat_id, local_day, messages, active_users, text_length,
                                     media, replies, forwards, urls, reactions)
        SELECT chat_id, local_day, count(*), count(DISTINCT {poster}), sum(text_length),
               count(*) FILTER (WHERE media_type <> 'text'),
               count(*) FILTER (WHERE reply_to_msg_id IS NOT NULL), 0, sum(url_count), 0
        FROM messages GROUP BY 1, 2;
        UPDATE chat_day_rollup d SET reactions = x.n FROM (
            SELECT chat_id, local_day, sum(reactions_given) AS n FROM chat_user_day_rollup
            GROUP BY 1, 2) x
        WHERE d.chat_id = x.chat_id AND d.local_day = x.local_day;
        UPDATE chat_day_rollup d SET joins = x.j, leaves = x.l FROM (
            SELECT chat_id, local_day, count(*) FILTER (WHERE action = 'join') AS j,
                   count(*) FILTER (WHERE action = 'leave') AS l
            FROM membership_events GROUP BY 1, 2) x
        WHERE d.chat_id = x.chat_id AND d.local_day = x.local_day;
        """,
    )
    await _step(
        conn,
        "hour/media/topic/reply rollups",
        f"""
        INSERT INTO chat_hour_rollup (chat_id, local_day, local_hour, messages)
        SELECT chat_id, local_day, local_hour, count(*) FROM messages GROUP BY 1, 2, 3;
        INSERT INTO chat_user_hour_rollup (chat_id, user_id, local_day, local_hour, messages)
        SELECT chat_id, {poster}, local_day, local_hour, count(*) FROM messages
        GROUP BY 1, 2, 3, 4;
        INSERT INTO chat_media_day_rollup (chat_id, local_day, media_type, messages)
        SELECT chat_id, local_day, media_type, count(*) FROM messages GROUP BY 1, 2, 3;
        INSERT INTO chat_topic_user_day_rollup (chat_id, topic_id, user_id, local_day, messages)
        SELECT chat_id, coalesce(topic_id, 0), {poster}, local_day, count(*) FROM messages
        GROUP BY 1, 2, 3, 4;
        INSERT INTO reply_pair_day_rollup (chat_id, local_day, from_user_id, to_user_id, replies)
        SELECT chat_id, local_day, {poster}, reply_to_user_id, count(*) FROM messages
        WHERE reply_to_user_id IS NOT NULL GROUP BY 1, 2, 3, 4;
        UPDATE chat_day_rollup d SET member_replies = x.n FROM (
            SELECT chat_id, local_day, sum(replies) AS n FROM reply_pair_day_rollup
            WHERE from_user_id <> to_user_id GROUP BY 1, 2) x
        WHERE d.chat_id = x.chat_id AND d.local_day = x.local_day;
        """,
    )
    # Terms: a stable core vocabulary plus a long tail that shifts from day to day.
    await _step(
        conn,
        "chat_term_day_rollup",
        f"""
        INSERT INTO chat_term_day_rollup (chat_id, local_day, kind, term, count)
        SELECT d.chat_id, d.local_day, k.kind,
               CASE WHEN r <= k.core THEN k.prefix || r
                    ELSE k.prefix || (k.core + (r + extract(doy FROM d.local_day)::int * 37)
                                      % (k.vocab - k.core)) END,
               greatest(1, floor(k.top * d.messages / {size.big_messages / DAYS:.1f} / r))::bigint
        FROM chat_day_rollup d
        CROSS JOIN (VALUES ('word', 'w', 1000, 40000, 2000.0),
                           ('url', 'https://example.org/p', 50, 5000, 40.0),
                           ('domain', 'site', 30, 500, 80.0),
                           ('hashtag', 'tag', 20, 500, 30.0),
                           ('mention', 'name', 50, 2000, 30.0),
                           ('emoji', 'e', 50, 300, 300.0),
                           ('reaction', 'r', 5, 10, 50.0))
             AS k(kind, prefix, core, vocab, top)
        CROSS JOIN LATERAL generate_series(1, CASE
             WHEN k.kind = 'word' THEN greatest(30, ({size.words_per_day} * d.messages
                                                    / {size.big_messages / DAYS:.1f})::int)
             WHEN k.kind = 'reaction' THEN 5
             WHEN d.chat_id = {BIG_CHAT} THEN 100 ELSE 10 END) r
        ON CONFLICT DO NOTHING
        """,
    )


async def _weeks(conn: asyncpg.Connection) -> None:
    """Seal every chat's weeks before its current local week, as the writer does."""
    from tgstats.pipeline.rollups import seal_weeks, week_start

    started = time.perf_counter()
    chats = await conn.fetch(
        "SELECT c.id, (now() AT TIME ZONE coalesce(s.timezone, 'UTC'))::date FROM chats c"
        " LEFT JOIN chat_settings s ON s.chat_id = c.id"
    )
    for chat_id, today in chats:
        async with conn.transaction():
            await seal_weeks(conn, chat_id, week_start(today))
    print(f"  seed: week rollups ({time.perf_counter() - started:.1f}s)", flush=True)


async def _day_order(conn: asyncpg.Connection) -> None:
    """Lay rollup rows out in local-day order, as the live writer appends them.

    Bulk ``GROUP BY`` inserts leave rows ordered by user; a live chat's rows
    arrive day after day, so one period's rows sit on few pages. Without this
    the benchmark would measure random heap reads no real database has.
    """
    for table in [*_ROLLUPS, *_WEEK_ROLLUPS]:
        day = "week" if table in _WEEK_ROLLUPS else "local_day"
        await _step(
            conn,
            f"day order {table}",
            f"""
            CREATE TEMP TABLE bench_reorder AS SELECT * FROM {table} ORDER BY {day}, chat_id;
            TRUNCATE {table};
            INSERT INTO {table} SELECT * FROM bench_reorder;
            DROP TABLE bench_reorder;
            """,
        )
