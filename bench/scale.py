"""Scale benchmark: one deployment with 100,000 chats, measured through the HTTP API.

    python bench/scale.py                  # 100,000 chats, 3 measuring rounds
    python bench/scale.py --chats 20000 --rounds 1 --runs 20
    nox -s scale                           # the same, in its own virtualenv

Seeds a scratch database (``tgstats_scale``, or ``--database NAME``, on TGSTATS_BENCH_PG,
default ``postgresql://postgres@127.0.0.1:5432/test``) once and reuses it while its seed
label matches (``--reseed`` starts over). The chats have realistic sizes: 60% tiny (2 active
days in 90), 30% small (10), 9% medium (45), 1% large (every day, ~2,000 messages a day);
90 days of day rollups per chat and member, members, a few raw messages per tenth chat
(some older than the metadata limit), digest subscriptions on every 50th chat. Everything
is written set-wise (``generate_series``), straight into the tables.

Then the app runs in-process (``create_app``, cache off, no Telegram client) and, for each
of ``--rounds`` rounds, measures through the API: a page of the chat list for every sort
and order (p95 of ``--runs`` requests at random offsets among the first 2,000 chats),
searches, filters, ``/summary`` of random chats, and a ``/metrics`` scrape; then one
retention pass and one digest run over all chats, and the chat list summary pass. The
baselines in the same run: the unpaged list (every chat's 30-day numbers, as the list
was), and retention and digests the way they ran before (a statement per chat and kind;
every subscription read and checked in Python, a claim insert per due chat), timed on a
sample of chats and scaled to all of them. Prints a table of medians over the rounds,
the load average before and after, the process's memory, and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import statistics
import sys
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent / "plugins"))

from sqlalchemy import text  # noqa: E402

from tgstats.db.engine import run_migrations  # noqa: E402
from tgstats.settings import Settings  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789"
SEED_VERSION = 1
WORDS = [
    "berlin", "forum", "chess", "hiking", "python", "crypto", "music", "news", "travel",
    "garden", "books", "cats", "dogs", "football", "cinema", "science", "startup", "jobs",
    "market", "photo", "anime", "games", "linux", "design", "family", "school", "parents",
    "running", "yoga", "coffee", "москва", "кино", "книги", "работа", "спорт", "музыка",
]  # fmt: skip
ZONES = ["Europe/Berlin", "Europe/Moscow", "Asia/Kathmandu", "America/New_York", "UTC"]
SORTS = ["messages_30d", "average_dau_30d", "members", "last_active_day", "title"]
SEARCHES = ["ber", "chess club", "pyth", "москва", "a", "cof", "zzzq", "cats 12"]
FILTERS = [{"active": "true"}, {"bot_present": "true"}, {"imported": "true"}]
# size class (g % 100 below the bound): active days in 90, messages a day, posters a day,
# members
SIZES = [(60, 2, 3, 1, 5), (90, 10, 20, 3, 20), (99, 45, 150, 4, 100), (100, 90, 2000, 15, 1000)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ----------------------------------------------------------------------------- seeding


def _size_case(index: int) -> str:
    """A CASE over the chat's size class picking column ``index`` of ``SIZES``."""
    arms = " ".join(f"WHEN c.g % 100 < {s[0]} THEN {s[index]}" for s in SIZES[:-1])
    return f"(CASE {arms} ELSE {SIZES[-1][index]} END)"


SEED_SQL = [
    "CREATE TABLE bench_scale_chats AS SELECT g, -1000000000000 - g AS id"
    " FROM generate_series(1, $1::int) g",
    "ALTER TABLE bench_scale_chats ADD PRIMARY KEY (g)",
    # Imported chats (g % 10 = 0): the bot was never in them; g % 17 = 0: the bot left.
    f"""INSERT INTO chats (id, type, title, username, bot_present, bot_status_at, bot_removed_at)
    SELECT c.id, 'supergroup',
           initcap(w[1 + (c.g * 7) % {len(WORDS)}]) || ' ' || initcap(w[1 + (c.g * 13 + 5)
           % {len(WORDS)}]) || ' ' || (c.g % 997),
           CASE WHEN c.g % 3 = 0 THEN w[1 + (c.g * 11) % {len(WORDS)}] || '_' || c.g END,
           c.g % 10 <> 0 AND c.g % 17 <> 0,
           CASE WHEN c.g % 10 <> 0 THEN now() - interval '60 days' END,
           CASE WHEN c.g % 17 = 0 AND c.g % 10 <> 0 THEN now() - interval '5 days' END
    FROM bench_scale_chats c, (SELECT $1::text[] AS w) words""",
    """INSERT INTO chat_settings (chat_id, timezone)
    SELECT c.id, ($1::text[])[1 + c.g % array_length($1::text[], 1)]
    FROM bench_scale_chats c WHERE c.g % 3 = 1""",
    f"""INSERT INTO chat_day_rollup (chat_id, local_day, messages, active_users)
    SELECT c.id, current_date - d, greatest(1, {_size_case(2)} * (1 + (c.g + d) % 5) / 3),
           {_size_case(3)}
    FROM bench_scale_chats c CROSS JOIN generate_series(0, 89) d
    WHERE (c.g * 7919 + d * 104729) % 90 < {_size_case(1)}""",
    """INSERT INTO chat_user_day_rollup (chat_id, user_id, local_day, messages, text_length)
    SELECT r.chat_id, u, r.local_day, greatest(1, r.messages / r.active_users),
           40 * greatest(1, r.messages / r.active_users)
    FROM chat_day_rollup r CROSS JOIN generate_series(1, r.active_users) u""",
    f"""INSERT INTO memberships (chat_id, user_id, status)
    SELECT c.id, u, CASE WHEN u % 9 = 0 THEN 'left' ELSE 'member' END
    FROM bench_scale_chats c CROSS JOIN LATERAL generate_series(1, {_size_case(4)}) u""",
    """INSERT INTO messages (chat_id, msg_id, user_id, date, local_day, local_hour, media_type)
    SELECT c.id, k, 1 + k % 3, now() - (k * 20 || ' days')::interval - interval '1 hour',
           (now() - (k * 20 || ' days')::interval)::date, 12, 'text'
    FROM bench_scale_chats c CROSS JOIN generate_series(1, 20) k WHERE c.g % 10 = 3""",
    # Every 97th chat subscribes (all sizes): half of them today (the UTC weekday; the
    # seed label holds the day), from midnight on.
    """INSERT INTO digest_subscriptions (chat_id, weekday, hour)
    SELECT c.id, CASE WHEN c.g % 2 = 1 THEN extract(isodow FROM now())::int - 1
                      ELSE (extract(isodow FROM now())::int + 2) % 7 END, 0
    FROM bench_scale_chats c WHERE c.g % 97 = 1""",
    "ANALYZE",
]

#: Run before every measurement: what a previous run's passes removed or claimed is back.
RESET_SQL = [
    "DELETE FROM digest_deliveries",
    "DELETE FROM purged_message_ranges",
    "DELETE FROM chat_purges",
    """INSERT INTO messages (chat_id, msg_id, user_id, date, local_day, local_hour, media_type)
    SELECT c.id, k, 1 + k % 3, now() - (k * 20 || ' days')::interval - interval '1 hour',
           (now() - (k * 20 || ' days')::interval)::date, 12, 'text'
    FROM bench_scale_chats c CROSS JOIN generate_series(1, 20) k WHERE c.g % 10 = 3
    ON CONFLICT DO NOTHING""",
]


async def prepare(admin_url: str, name: str, chats: int, reseed: bool) -> str:
    admin = await asyncpg.connect(admin_url)
    try:
        if reseed:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    await run_migrations(url)
    label = f"scale v{SEED_VERSION} chats={chats} day={datetime.now(UTC).date()}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (label text)")
        if await conn.fetchval("SELECT label FROM bench_meta") == label:
            print(f"reusing seeded database {name} ({label})", flush=True)
            for sql in RESET_SQL:
                await conn.execute(sql)
            return url
        if await conn.fetchval("SELECT count(*) FROM chats"):
            raise SystemExit(f"{name} holds another seed: run with --reseed")
        started = time.perf_counter()
        for sql in SEED_SQL:
            step = time.perf_counter()
            args: list[Any] = []
            if "$1::int" in sql:
                args = [chats]
            elif "$1::text[] AS w" in sql:
                args = [WORDS]
            elif "$1::text[]" in sql:
                args = [ZONES]
            status = await conn.execute(sql, *args)
            print(f"  {status:<28} {time.perf_counter() - step:6.1f} s", flush=True)
        await conn.execute("INSERT INTO bench_meta VALUES ($1)", label)
        print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        await conn.close()
    return url


# ----------------------------------------------------------------------------- measuring


async def timed(fn: Callable[[], Awaitable[Any]], runs: int, warmup: int = 2) -> float:
    """p95 in ms of ``runs`` calls after ``warmup``."""
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return pct(samples, 0.95)


async def once(work: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await work
    return (time.perf_counter() - started) * 1000


class Sender:
    """A bot sender that posts nowhere: the digest's own cost, not Telegram's."""

    available = True
    username = "bench_bot"

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, chat_id: int, text_: str, **kwargs: Any) -> int:
        self.sent += 1
        return self.sent


async def old_retention(engine: Any, chat_ids: list[int], now: datetime) -> None:
    """Retention as it ran before: every statement for one chat and one kind."""
    from tgstats_privacy.retention import KINDS, chat_cutoffs

    cuts = chat_cutoffs(now, 90, 365)
    async with engine.connect() as conn:
        for chat_id in chat_ids:
            for kind in KINDS:
                order = f" ORDER BY {kind.order}" if kind.order else ""
                pick = f"SELECT ctid FROM {kind.table} WHERE {kind.one_chat}{order} LIMIT 5000"
                sql = f"DELETE FROM {kind.table} WHERE ctid = ANY(ARRAY({pick}))"
                if kind.clear_text:
                    sql = f"UPDATE {kind.table} SET text = NULL WHERE ctid = ANY(ARRAY({pick}))"
                await conn.execute(text(sql), {"chat": chat_id, **cuts})
                await conn.rollback()  # the baseline must not change what the new pass finds


async def old_digest(engine: Any, now: datetime) -> int:
    """The digest run as it was: every subscription read and checked in Python, and a claim
    insert for each due chat (claimed already here, so none is sent)."""
    async with engine.connect() as conn:
        rows = list(
            await conn.execute(
                text(
                    "SELECT d.chat_id, d.weekday, d.hour, coalesce(s.timezone, 'UTC')"
                    " FROM digest_subscriptions d JOIN chats c ON c.id = d.chat_id"
                    " LEFT JOIN chat_settings s ON s.chat_id = d.chat_id"
                    " WHERE c.bot_present ORDER BY d.chat_id"
                )
            )
        )
        await conn.commit()
        due = 0
        for chat_id, weekday, hour, zone in rows:
            local = now.astimezone(zoneinfo.ZoneInfo(zone))
            if local.weekday() != weekday or local.hour < hour:
                continue
            due += 1
            await conn.execute(
                text(
                    "INSERT INTO digest_deliveries (chat_id, period_end, status)"
                    " VALUES (:chat, :day, 'sending') ON CONFLICT (chat_id, period_end)"
                    " DO NOTHING RETURNING chat_id"
                ),
                {"chat": chat_id, "day": local.date()},
            )
            await conn.commit()
        return due


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from tgstats.app import create_app
    from tgstats.plugin_api.testing import serve_lifespan
    from tgstats.stats import list_chats
    from tgstats_privacy.digest import DigestJob
    from tgstats_privacy.retention import RetentionJob

    settings = Settings.from_env(
        {
            "DATABASE_URL": url,
            "ADMIN_API_TOKEN": ADMIN_TOKEN,
            "ENABLE_CACHE": "false",
            "LOG_LEVEL": "WARNING",
            "ENVIRONMENT": "test",
            # The passes are run here, one at a time; no Telegram client.
            "PLUGINS_DISABLED": "privacy,mtproto,statsbot",
            "API_RATE_LIMIT_PER_MINUTE": "100000000",
            "API_RATE_LIMIT_PER_HOUR": "1000000000",
        }
    )
    app = create_app(settings)
    headers = {"X-API-Token": ADMIN_TOKEN}
    rng = random.Random(25)
    rounds: list[dict[str, float]] = []
    facts: dict[str, Any] = {}
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with (
        serve_lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client,
    ):
        services = app.state.services
        summaries = services.get("chat_summaries")
        await summaries.stop()  # its pass runs below, measured, not in the middle of a round
        database = services.get("database")
        factory = services.get("session_factory")
        async with factory() as session:
            all_ids = list((await session.execute(text("SELECT id FROM chats"))).scalars())
            big = list(
                (
                    await session.execute(
                        text(
                            "SELECT chat_id FROM chat_day_rollup GROUP BY 1"
                            " ORDER BY sum(messages) DESC LIMIT 200"
                        )
                    )
                ).scalars()
            )
        facts["chats"] = len(all_ids)
        sender = Sender()
        services.register("bot_sender", sender)

        async def get(path: str, params: dict[str, Any] | None = None) -> Any:
            response = await client.get(path, params=params or {}, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:300]}")
            return response

        for number in range(args.rounds):
            row: dict[str, float] = {}
            print(f"\nround {number + 1} (load {load()})", flush=True)
            row["summary pass (s)"] = await once(summaries.run_pass()) / 1000
            for sort in SORTS:
                for order in ("desc", "asc"):

                    async def page(sort: str = sort, order: str = order) -> None:
                        offset = rng.randrange(0, 2000)
                        await get("/api/v1/chats", {"sort": sort, "order": order,
                                                    "limit": 50, "offset": offset})  # fmt: skip

                    row[f"page {sort} {order}"] = await timed(page, args.runs)
            for query in SEARCHES:
                row[f"search '{query}'"] = await timed(
                    lambda q=query: get("/api/v1/chats", {"search": q, "limit": 50}), args.runs
                )
            for flt in FILTERS:
                name = ",".join(f"{k}={v}" for k, v in flt.items())
                row[f"filter {name}"] = await timed(
                    lambda f=flt: get("/api/v1/chats", {**f, "limit": 50}), args.runs
                )
            row["summary, random chat"] = await timed(
                lambda: get(f"/api/v1/chats/{rng.choice(all_ids)}/summary"), args.runs
            )
            row["summary, large chat"] = await timed(
                lambda: get(f"/api/v1/chats/{rng.choice(big)}/summary"), args.runs
            )
            row["/metrics scrape"] = await timed(lambda: get("/metrics"), args.runs)

            async def gauge_query() -> None:
                async with factory() as session:
                    await session.execute(text("SELECT count(*) FROM chats WHERE bot_present"))

            row["active chats gauge query"] = await timed(gauge_query, args.runs)
            # Baselines: the unpaged list, and the old passes on a sample.
            async with factory() as session:
                row["baseline: unpaged list (s)"] = await once(list_chats(session)) / 1000
            sample = rng.sample(all_ids, min(args.sample, len(all_ids)))
            now = datetime.now(UTC)
            took = await once(old_retention(database.engine, sample, now))
            row["baseline: old retention, all chats (s, scaled)"] = (
                took / 1000 * len(all_ids) / len(sample)
            )
            metrics = services.get("metrics")
            job = RetentionJob(engine=database.engine, grace_days=30, metrics=metrics)
            started = time.perf_counter()
            report = await job.run(now=now)
            row["retention pass (s)"] = time.perf_counter() - started
            if number == 0:
                facts["retention first pass removed rows"] = sum(report.removed.values())
                facts["retention first pass s"] = round(row["retention pass (s)"], 2)
            digest = DigestJob(session_factory=factory, services=services, metrics=metrics)
            first = True
            while True:  # every run until nothing is due: the whole backlog
                took = await once(digest.run(now=now))
                if first:
                    row["digest run (s)"] = took / 1000
                    first = False
                    if number == 0:
                        facts["digest first run s"] = round(took / 1000, 2)
                if not metrics.pass_backlogs.get("digest"):
                    break
            row["digest run, nothing due (s)"] = await once(digest.run(now=now)) / 1000
            row["baseline: old digest run, nothing due (s)"] = (
                await once(old_digest(database.engine, now)) / 1000
            )
            rounds.append(row)
            for key, value in row.items():
                print(f"  {key:<52}{value:>10.2f}", flush=True)
        facts["digests sent"] = sender.sent
        facts["rss_mb"] = round(rss_mb(), 1)
        facts["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    return {"median": median, "rounds": rounds, "facts": facts}


def report(result: dict[str, Any], load_before: str, load_after: str) -> dict[str, Any]:
    median = result["median"]
    pages = [v for k, v in median.items() if k.startswith("page ")]
    searches = [v for k, v in median.items() if k.startswith("search ")]
    unpaged_ms = median["baseline: unpaged list (s)"] * 1000
    summary = {
        "chats": result["facts"]["chats"],
        "page_p95_ms_worst": round(max(pages), 1),
        "search_p95_ms_worst": round(max(searches), 1),
        "unpaged_list_ms": round(unpaged_ms),
        "page_speedup": round(unpaged_ms / max(pages), 1),
        "metrics_scrape_p95_ms": round(median["/metrics scrape"], 2),
        "retention_pass_s": round(median["retention pass (s)"], 2),
        "old_retention_s": round(median["baseline: old retention, all chats (s, scaled)"], 1),
        "digest_idle_run_s": round(median["digest run, nothing due (s)"], 3),
        "old_digest_idle_run_s": round(median["baseline: old digest run, nothing due (s)"], 3),
        "summary_pass_s": round(median["summary pass (s)"], 2),
        **result["facts"],
        "load_before": load_before,
        "load_after": load_after,
    }
    print(f"\nmedians over {len(result['rounds'])} rounds (ms unless marked s):")
    for key, value in median.items():
        print(f"  {key:<52}{value:>10.2f}")
    print(
        f"\nworst page p95 {summary['page_p95_ms_worst']} ms (target 30), worst search p95 "
        f"{summary['search_p95_ms_worst']} ms (target 50), scrape p95 "
        f"{summary['metrics_scrape_p95_ms']} ms (target 10); unpaged list {unpaged_ms:.0f} ms "
        f"= {summary['page_speedup']}x a page; retention {summary['retention_pass_s']} s vs "
        f"{summary['old_retention_s']} s before; idle digest run {summary['digest_idle_run_s']}"
        f" s vs {summary['old_digest_idle_run_s']} s before; memory {result['facts']['rss_mb']}"
        f" MB (peak {result['facts']['max_rss_mb']} MB); load {load_before} -> {load_after}"
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=40, help="requests per measured figure")
    parser.add_argument(
        "--sample", type=int, default=2000, help="chats the old retention loop is timed on"
    )
    parser.add_argument("--database", default="tgstats_scale")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--seed-only", action="store_true", help="seed, measure nothing")
    args = parser.parse_args()
    admin = os.environ.get("TGSTATS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
    load_before = load()
    print(f"load average {load_before}", flush=True)
    url = asyncio.run(prepare(admin, args.database, args.chats, args.reseed))
    if args.seed_only:
        return
    result = asyncio.run(measure(url, args))
    summary = report(result, load_before, load())
    print(json.dumps(summary, separators=(",", ":"), ensure_ascii=False))


if __name__ == "__main__":
    main()
