"""Query benchmark: stats functions and API endpoints over rollups vs scanning raw messages.

    python bench/query.py            # 10M messages in one chat over two years + 100 small chats
    python bench/query.py --quick    # 1M messages
    python bench/query.py --runs 50 --period-days 30
    python bench/query.py --period-days all   # the big chat's whole history ("All time")

The database (``tgstats_bench`` / ``tgstats_bench_quick``, or ``--database NAME``, on
TGSTATS_BENCH_PG, default ``postgresql://postgres@127.0.0.1:5432/test``) is seeded once
and reused while its seed label (size and seed version) matches. Each stats function and
each API endpoint is timed ``--runs`` times for the big chat's last ``--period-days``
local days (``all``: its whole history, from its first day; the API gets ``from=all``)
(cache off), and the same questions are answered by scanning raw ``messages``
(the old design). Each function is also timed with the big chat's week seal cleared,
i.e. from day rollups only (the design before week rollups), in the same run. The last
line printed is one JSON object: ``stats_p95_ms`` (the slowest function), ``api_p95_ms``
(the slowest endpoint), ``raw_scan_p95_ms`` (the slowest raw scan), ``speedup``
(geometric mean of raw/rollup p95 per question with a raw equivalent), ``week_speedup``
(the same against day rollups only) and the per-question numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

# bench/ holds scripts named like stdlib modules (http.py): keep it off the import path and
# load the seeding module by file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent / "plugins"))
_spec = importlib.util.spec_from_file_location("query_seed", _HERE / "query_seed.py")
assert _spec is not None and _spec.loader is not None
query_seed = importlib.util.module_from_spec(_spec)
sys.modules["query_seed"] = query_seed
_spec.loader.exec_module(query_seed)
BIG_CHAT, FULL, QUICK = query_seed.BIG_CHAT, query_seed.FULL, query_seed.QUICK
SeedSize, seed, seeded_label = query_seed.SeedSize, query_seed.seed, query_seed.seeded_label

from sqlalchemy import text  # noqa: E402

from tgstats import stats  # noqa: E402
from tgstats.db.engine import open_database, run_migrations  # noqa: E402
from tgstats.settings import DatabaseSettings, Settings  # noqa: E402
from tgstats.stats.period import Period  # noqa: E402
from tgstats.stats.subqueries import source_params  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


async def timed(fn: Callable[[], Awaitable[Any]], runs: int, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50": statistics.median(samples), "p95": pct(samples, 0.95)}


async def prepare(admin_url: str, name: str, size: SeedSize) -> str:
    admin = await asyncpg.connect(admin_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(admin_url)
    url = parts._replace(path=f"/{name}").geturl()
    await run_migrations(url)
    conn = await asyncpg.connect(url)
    try:
        label = await seeded_label(conn)
        if label == size.label:
            print(f"reusing seeded database {name} ({label})", flush=True)
        else:
            print(f"seeding {name}: {size}", flush=True)
            await conn.execute("DROP TABLE IF EXISTS bench_meta")
            await seed(conn, size)
    finally:
        await conn.close()
    return url


# Raw-scan answers (the old design): the same questions straight from ``messages``.
RAW = {
    "summary": """
        SELECT count(*), count(DISTINCT user_id), sum(text_length),
               count(*) FILTER (WHERE media_type <> 'text'),
               count(*) FILTER (WHERE reply_to_msg_id IS NOT NULL)
        FROM messages WHERE chat_id = :chat_id AND date >= :lo AND date < :hi
          AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end""",
    "timeseries": """
        SELECT (date AT TIME ZONE :tz)::date, count(*), count(DISTINCT user_id)
        FROM messages WHERE chat_id = :chat_id AND date >= :lo AND date < :hi
          AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end GROUP BY 1""",
    "heatmap": """
        SELECT extract(isodow FROM date AT TIME ZONE :tz), extract(hour FROM date AT TIME ZONE :tz),
               count(*)
        FROM messages WHERE chat_id = :chat_id AND date >= :lo AND date < :hi
          AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end GROUP BY 1, 2""",
    "users": """
        SELECT user_id, count(*), count(DISTINCT (date AT TIME ZONE :tz)::date),
               avg(text_length)
        FROM messages WHERE chat_id = :chat_id AND date >= :lo AND date < :hi
          AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end
        GROUP BY user_id ORDER BY 2 DESC LIMIT 50""",
    "user_profile": """
        SELECT extract(hour FROM date AT TIME ZONE :tz), count(*)
        FROM messages WHERE chat_id = :chat_id AND user_id = :user_id
          AND date >= :lo AND date < :hi
          AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end GROUP BY 1""",
    "media": """
        SELECT media_type, count(*) FROM messages
        WHERE chat_id = :chat_id AND date >= :lo AND date < :hi
          AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end GROUP BY 1""",
    "interactions": """
        SELECT user_id, reply_to_user_id, count(*) FROM messages
        WHERE chat_id = :chat_id AND date >= :lo AND date < :hi AND reply_to_user_id IS NOT NULL
          AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end
        GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 20""",
    "topics": """
        SELECT topic_id, count(*), count(DISTINCT user_id) FROM messages
        WHERE chat_id = :chat_id AND date >= :lo AND date < :hi
          AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end GROUP BY 1""",
    "engagement": """
        SELECT user_id, count(*), count(DISTINCT (date AT TIME ZONE :tz)::date),
               sum(text_length), sum(url_count), count(*) FILTER (WHERE media_type <> 'text'),
               count(*) FILTER (WHERE reply_to_msg_id IS NOT NULL)
        FROM messages WHERE chat_id = :chat_id AND date >= :lo AND date < :hi
          AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end GROUP BY 1""",
}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tgstats_engagement import engagement

    size = QUICK if args.quick else FULL
    admin_url = os.environ.get("TGSTATS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
    name = args.database or ("tgstats_bench_quick" if args.quick else "tgstats_bench")
    url = await prepare(admin_url, name, size)
    db = open_database(url, DatabaseSettings(pool_size=4, max_overflow=2))
    async with db.session_factory() as session:
        scope = await stats.load_chat_scope(session, BIG_CHAT)
        today = scope.today()
        if args.period_days == "all":
            first = await stats.chat_first_day(session, scope)
            period = Period(start=first or today, end=today)
        else:
            period = Period(start=today - timedelta(days=int(args.period_days) - 1), end=today)
        top_user = await session.scalar(
            text(
                "SELECT user_id FROM chat_user_day_rollup WHERE chat_id = :c "
                "AND local_day BETWEEN :s AND :e GROUP BY user_id ORDER BY sum(messages) DESC "
                "LIMIT 1"
            ),
            {"c": BIG_CHAT, "s": period.start, "e": period.end},
        )
    print(f"big chat {BIG_CHAT}, period {period.label()} ({scope.timezone}), runs {args.runs}")

    def call(fn: Callable[..., Awaitable[Any]], *a: Any, **kw: Any) -> Callable[[], Awaitable[Any]]:
        async def go() -> Any:
            async with db.stats_session_factory() as s:
                return await fn(s, scope, period, *a, **kw)

        return go

    functions: dict[str, Callable[[], Awaitable[Any]]] = {
        "list_chats": lambda: _list_chats(db),
        "summary": call(stats.summary),
        "timeseries": call(stats.timeseries),
        "heatmap": call(stats.heatmap),
        "users": call(stats.users),
        "user_profile": call(stats.user_profile, top_user),
        "media": call(stats.media_breakdown),
        "words": call(stats.top_terms, "word"),
        "links": call(stats.links),
        "reactions": call(stats.reactions),
        "interactions": call(stats.interactions),
        "members": call(stats.members),
        "topics": call(stats.topics),
        "engagement": call(engagement),
    }
    results: dict[str, dict[str, Any]] = {}
    print(
        f"\n{'question':<14}{'rollup p50':>11}{'p95':>8}{'days p95':>9}{'raw p50':>10}"
        f"{'p95':>9}{'ratio':>8}"
    )
    raw_params = {
        "chat_id": BIG_CHAT,
        "tz": scope.timezone,
        "start": period.start,
        "end": period.end,
        "user_id": top_user,
    }
    bounds = source_params(scope, period)
    raw_params["lo"], raw_params["hi"] = bounds["utc_lo"], bounds["utc_hi"]

    async def set_seal(value: Any) -> None:
        async with db.session_factory() as s:
            await s.execute(
                text("UPDATE chats SET rollup_sealed_before = :v WHERE id = :c"),
                {"v": value, "c": BIG_CHAT},
            )
            await s.commit()

    async with db.session_factory() as s:
        seal = await s.scalar(
            text("SELECT rollup_sealed_before FROM chats WHERE id = :c"), {"c": BIG_CHAT}
        )
    for question, fn in functions.items():
        row: dict[str, Any] = {"stats": await timed(fn, args.runs)}
        await set_seal(None)  # the same function from day rollups only
        try:
            row["days"] = await timed(fn, max(5, args.runs // 2), warmup=1)
        finally:
            await set_seal(seal)
        row["week_ratio"] = row["days"]["p95"] / row["stats"]["p95"]
        if question in RAW:
            sql = text(RAW[question])

            async def raw(sql: Any = sql) -> None:
                async with db.stats_session_factory() as s:
                    (await s.execute(sql, raw_params)).all()

            row["raw"] = await timed(raw, max(5, args.runs // 3), warmup=1)
            row["ratio"] = row["raw"]["p95"] / row["stats"]["p95"]
        results[question] = row
        raw_text = (
            f"{row['raw']['p50']:>10.1f}{row['raw']['p95']:>9.1f}{row['ratio']:>7.1f}x"
            if "raw" in row
            else f"{'-':>10}{'-':>9}{'-':>8}"
        )
        print(
            f"{question:<14}{row['stats']['p50']:>11.1f}{row['stats']['p95']:>8.1f}"
            f"{row['days']['p95']:>9.1f}{raw_text}"
        )
    api = await _bench_api(url, period, top_user, args.runs, whole=args.period_days == "all")
    await db.dispose()
    ratios = [r["ratio"] for r in results.values() if "ratio" in r]
    summary = {
        "messages_big_chat": size.big_messages,
        "period_days": period.days,
        "whole_history": args.period_days == "all",
        "stats_p95_ms": round(max(r["stats"]["p95"] for r in results.values()), 2),
        "stats_p95_slowest": max(results, key=lambda q: results[q]["stats"]["p95"]),
        "stats_p50_median_ms": round(
            statistics.median(r["stats"]["p50"] for r in results.values()), 2
        ),
        "api_p95_ms": round(max(v["p95"] for v in api.values()), 2),
        "api_p95_slowest": max(api, key=lambda q: api[q]["p95"]),
        "api_p50_median_ms": round(statistics.median(v["p50"] for v in api.values()), 2),
        "raw_scan_p95_ms": round(max(r["raw"]["p95"] for r in results.values() if "raw" in r), 2),
        "raw_scan_p50_median_ms": round(
            statistics.median(r["raw"]["p50"] for r in results.values() if "raw" in r), 2
        ),
        "speedup": round(math.exp(statistics.mean(math.log(r) for r in ratios)), 1),
        "speedup_min": round(min(ratios), 1),
        "week_speedup": round(
            math.exp(statistics.mean(math.log(r["week_ratio"]) for r in results.values())), 2
        ),
        "days_p95_ms": round(max(r["days"]["p95"] for r in results.values()), 2),
        "stats_ms": {
            q: {k: round(v, 2) for k, v in r["stats"].items()} for q, r in results.items()
        },
        "days_ms": {q: {k: round(v, 2) for k, v in r["days"].items()} for q, r in results.items()},
        "raw_ms": {
            q: {k: round(v, 2) for k, v in r["raw"].items()}
            for q, r in results.items()
            if "raw" in r
        },
        "api_ms": {q: {k: round(v, 2) for k, v in r.items()} for q, r in api.items()},
    }
    return summary


async def _list_chats(db: Any) -> Any:
    async with db.stats_session_factory() as s:
        return await stats.list_chats(s)


async def _bench_api(
    url: str, period: Period, top_user: int, runs: int, *, whole: bool = False
) -> dict[str, Any]:
    from litestar.testing import AsyncTestClient

    from tgstats.app import create_app

    settings = Settings.from_env(
        {
            "DATABASE_URL": url,
            "ADMIN_API_TOKEN": ADMIN_TOKEN,
            "ENABLE_CACHE": "false",
            "LOG_LEVEL": "WARNING",
            "ENVIRONMENT": "test",
            # Only what serves the API: no Telegram client, and no retention job deleting
            # the seeded history (metadata retention defaults to a year).
            "PLUGINS_DISABLED": "privacy,mtproto,statsbot",
            "API_RATE_LIMIT_PER_MINUTE": "1000000",
            "API_RATE_LIMIT_PER_HOUR": "100000000",
        }
    )
    app = create_app(settings)
    headers = {"X-API-Token": ADMIN_TOKEN}
    q = (
        {"from": "all"}
        if whole
        else {"from": period.start.isoformat(), "to": period.end.isoformat()}
    )
    base = f"/api/v1/chats/{BIG_CHAT}"
    endpoints = {
        "/chats": ("/api/v1/chats", {}),
        "/summary": (f"{base}/summary", q),
        "/timeseries": (f"{base}/timeseries", q),
        "/heatmap": (f"{base}/heatmap", q),
        "/users": (f"{base}/users", q),
        "/users/{id}": (f"{base}/users/{top_user}", q),
        "/media": (f"{base}/media", q),
        "/words": (f"{base}/words", q),
        "/links": (f"{base}/links", q),
        "/reactions": (f"{base}/reactions", q),
        "/interactions": (f"{base}/interactions", q),
        "/members": (f"{base}/members", q),
        "/topics": (f"{base}/topics", q),
        "/engagement": (f"{base}/engagement", q),
    }
    out: dict[str, Any] = {}
    print(f"\n{'endpoint':<16}{'p50':>8}{'p95':>8}")
    async with AsyncTestClient(app=app) as client:
        for name, (path, params) in endpoints.items():

            async def hit(path: str = path, params: dict[str, str] = params) -> None:
                response = await client.get(path, params=params, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")

            out[name] = await timed(hit, runs)
            print(f"{name:<16}{out[name]['p50']:>8.1f}{out[name]['p95']:>8.1f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M messages instead of 10M")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument(
        "--period-days",
        default="30",
        type=lambda v: v if v == "all" or v.isdigit() else parser.error("--period-days: N or all"),
        help="local days ending today, or all (the big chat's whole history)",
    )
    parser.add_argument(
        "--database", help="database name (default tgstats_bench, or tgstats_bench_quick)"
    )
    args = parser.parse_args()
    summary = asyncio.run(run(args))
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
