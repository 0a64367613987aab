"""The interactions stat's threshold top-N (``stats.subqueries.reply_pair_top``).

A chat with many reply pairs of skewed counts over six weeks (five sealed), written
straight into the day rollup and sealed by the writer's own ``seal_weeks``; the
expected answers are summed from the same day rows in Python. With small head
depths the threshold decides some questions and must say so only when its answer
is exact; ``stats.interactions`` (which falls back to summing every pair) must
always be exact.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from tests.support.scratch_db import asyncpg_dsn, scratch_database
from tgstats import stats
from tgstats.db.engine import Database, open_database, run_migrations
from tgstats.pipeline.rollups import seal_weeks
from tgstats.settings import DatabaseSettings
from tgstats.stats import subqueries
from tgstats.stats.common import fetch_all
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.subqueries import reply_pair_top

from .conftest import _truncate

CHAT = -1007000000001
FIRST_DAY = date(2026, 9, 28)  # a Monday; six weeks of days
DAYS = [FIRST_DAY + timedelta(days=i) for i in range(42)]
SEALED_BEFORE = date(2026, 11, 2)  # the last week stays open

PERIODS = [
    Period(start=date(2026, 10, 5), end=date(2026, 10, 25)),  # three whole sealed weeks
    Period(start=date(2026, 10, 6), end=date(2026, 10, 24)),  # week rows minus 1 day each end
    Period(start=date(2026, 10, 7), end=date(2026, 10, 23)),  # minus 2 days each end
    Period(start=date(2026, 10, 8), end=date(2026, 10, 22)),  # edges from day rows
    Period(start=date(2026, 10, 13), end=date(2026, 11, 5)),  # into the open week
    Period(start=date(2026, 11, 2), end=date(2026, 11, 8)),  # the open week only
    Period(start=date(2026, 10, 14), end=date(2026, 10, 14)),  # one day
    Period(start=FIRST_DAY, end=DAYS[-1]),  # everything
]


def _day_rows(rng: random.Random) -> list[tuple[date, int, int, int]]:
    """Per day ~120 (replier, replied-to) rows over 80 members: a few busy pairs, a long
    tail of ones and twos, some self-replies and some rows counted back to zero."""
    rows = []
    for day in DAYS:
        pairs: Counter[tuple[int, int]] = Counter()
        for _ in range(rng.randint(60, 240)):
            sender = 1 + min(int(rng.paretovariate(1.2)) - 1, 79)
            target = 1 + (sender + int(rng.expovariate(0.3))) % 80
            if rng.random() < 0.05:
                target = sender
            pairs[(sender, target)] += 1
        for (sender, target), n in pairs.items():
            rows.append((day, sender, target, 0 if rng.random() < 0.02 else n))
    return rows


@pytest.fixture(scope="module")
async def pairs_db(database_url: str) -> AsyncIterator[tuple[Database, list[Any]]]:
    database = open_database(database_url, DatabaseSettings(pool_size=2, max_overflow=2))
    await _truncate(database)
    rows = _day_rows(random.Random(20261202))
    async with database.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO chats (id, type, title) VALUES (:id, 'supergroup', 'pairs')"),
            {"id": CHAT},
        )
        await conn.execute(
            text("INSERT INTO reply_pair_day_rollup VALUES (:chat, :day, :sender, :target, :n)"),
            [{"chat": CHAT, "day": d, "sender": s, "target": t, "n": n} for d, s, t, n in rows],
        )
        # The writer keeps the day's replies between members beside the pairs.
        between: Counter[date] = Counter()
        for day, sender, target, n in rows:
            between[day] += n if sender != target else 0
        await conn.execute(
            text(
                "INSERT INTO chat_day_rollup (chat_id, local_day, member_replies)"
                " VALUES (:chat, :day, :n)"
            ),
            [{"chat": CHAT, "day": day, "n": n} for day, n in between.items()],
        )
        raw = await conn.get_raw_connection()
        assert await seal_weeks(raw.driver_connection, CHAT, SEALED_BEFORE)
    yield database, rows
    await database.dispose()


def _truth(rows: list[Any], period: Period) -> Counter[tuple[int, int]]:
    sums: Counter[tuple[int, int]] = Counter()
    for day, sender, target, n in rows:
        if period.start <= day <= period.end and sender != target:
            sums[(sender, target)] += n
    return sums


def _top(sums: Counter[tuple[int, int]], limit: int) -> list[tuple[int, int, int, int]]:
    ranked = sorted((-n, s, t) for (s, t), n in sums.items() if n > 0)[:limit]
    return [(s, t, -n, sums.get((t, s), 0)) for n, s, t in ranked]


async def test_the_week_rows_are_sealed(pairs_db: tuple[Database, list[Any]]) -> None:
    database, rows = pairs_db
    async with database.session_factory() as session:
        weeks = await fetch_all(
            session,
            "SELECT week, sum(replies) AS n FROM reply_pair_week_rollup WHERE chat_id = :c"
            " GROUP BY week ORDER BY week",
            {"c": CHAT},
        )
    assert [w.week for w in weeks] == [FIRST_DAY + timedelta(weeks=i) for i in range(5)]
    assert all(
        w.n == sum(n for d, _, _, n in rows if w.week <= d < w.week + timedelta(days=7))
        for w in weeks
    )


@pytest.mark.parametrize("period", PERIODS, ids=lambda p: p.label())
async def test_a_decided_answer_is_exact(
    pairs_db: tuple[Database, list[Any]], period: Period, monkeypatch
) -> None:
    # Every week may be a block here (the stat stops at a few: see MAX_PAIR_BLOCKS).
    monkeypatch.setattr(subqueries, "MAX_PAIR_BLOCKS", 10)
    database, rows = pairs_db
    scope = ChatScope(chat_id=CHAT)
    sums = _truth(rows, period)
    decided = undecided = 0
    async with database.stats_session_factory() as session:
        for limit in (1, 5, 20, 100):
            for depth in (1, 2, 5, 20, 1000):
                top = reply_pair_top(scope, period, limit=limit, depth=depth)
                if top is None:  # no week of the period can be a block: sum every pair
                    assert period.end - period.start < timedelta(days=7)
                    continue
                found = await fetch_all(session, *top)
                listed = [r for r in found if r.from_user_id is not None]
                lowest_listed = listed[-1].replies if len(listed) == limit else 1
                assert found[0].total == sum(sums.values())
                got = [(r.from_user_id, r.to_user_id, r.replies, r.replies_back) for r in listed]
                if found[0].bound < lowest_listed:
                    decided += 1
                    assert got == _top(sums, limit), (limit, depth)
                else:
                    undecided += 1
                # Listed pairs are always summed exactly, decided or not.
                assert all(sums[(s, t)] == n and sums.get((t, s), 0) == b for s, t, n, b in got)
    if period.start >= SEALED_BEFORE:
        # No sealed week: every pair of the period is summed at once; always decided.
        assert undecided == 0
    elif period.end - period.start >= timedelta(days=6):
        # Deep heads see every pair: always decided. Shallow heads over weeks can't be.
        assert decided >= 4 and undecided > 0


async def test_longer_periods_read_deeper_heads(pairs_db: tuple[Database, list[Any]]) -> None:
    """Six weeks are six blocks: tried with the default settings (up to a quarter), with
    heads twice as deep as a month's (the bound grows with the blocks), and exact when
    decided."""
    database, rows = pairs_db
    period = PERIODS[-1]  # everything: six weeks
    top = reply_pair_top(ChatScope(chat_id=CHAT), period, limit=5)
    assert top is not None
    sql, params = top
    assert len(params["pair_weeks"]) == 6
    assert params["depth"] == subqueries.pair_head_depth(6) == 2 * subqueries.PAIR_HEAD_DEPTH
    assert subqueries.pair_head_depth(4) == subqueries.PAIR_HEAD_DEPTH
    assert subqueries.pair_head_depth(13) > subqueries.pair_head_depth(9)
    async with database.stats_session_factory() as session:
        found = await fetch_all(session, sql, params)
    listed = [(r.from_user_id, r.to_user_id, r.replies, r.replies_back) for r in found]
    assert found[0].bound < listed[-1][2], "decided by the heads"
    assert listed == _top(_truth(rows, period), 5)


async def test_with_the_seal_reset_every_pair_is_summed_at_once(
    pairs_db: tuple[Database, list[Any]],
) -> None:
    """A chat whose seal was reset (weeks not yet resealed): no week is a block, the
    period's days are summed whole and the answer is decided from them, exact."""
    database, rows = pairs_db
    period = PERIODS[0]  # three whole weeks, sealed until the reset below
    sums = _truth(rows, period)
    async with database.session_factory() as session:
        await session.execute(
            text("UPDATE chats SET rollup_sealed_before = NULL WHERE id = :id"), {"id": CHAT}
        )
        top = reply_pair_top(ChatScope(chat_id=CHAT), period, limit=20, depth=1)
        assert top is not None
        found = await fetch_all(session, *top)
        assert found[0].bound == 0
        assert [(r.from_user_id, r.to_user_id, r.replies, r.replies_back) for r in found] == _top(
            sums, 20
        )
        await session.rollback()


@pytest.mark.parametrize("depth", [None, 1], ids=["default-depth", "undecided"])
@pytest.mark.parametrize("period", PERIODS, ids=lambda p: p.label())
async def test_interactions_match_the_day_rows(
    pairs_db: tuple[Database, list[Any]], period: Period, depth: int | None, monkeypatch
) -> None:
    """Decided by the heads or, with heads of one row, by summing every pair: the same."""
    if depth is not None:
        monkeypatch.setattr(subqueries, "PAIR_HEAD_DEPTH", depth)
    database, rows = pairs_db
    sums = _truth(rows, period)
    async with database.stats_session_factory() as session:
        scope = await stats.load_chat_scope(session, CHAT)
        for limit in (3, 20):
            result = await stats.interactions(session, scope, period, limit=limit)
            assert [
                (p.from_user_id, p.to_user_id, p.replies, p.replies_back) for p in result.pairs
            ] == _top(sums, limit)
            assert result.total_replies == sum(sums.values())


async def test_migration_0008_fills_member_replies_from_the_pairs(pg_admin_url: str) -> None:
    """A database from before 0008 gets each day's replies between members from its pair
    rows (self-replies left out; days without pairs stay at zero)."""
    async with scratch_database(pg_admin_url, "tgstats_mig_0008_test") as url:
        await run_migrations(url, "0007")
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute(
                "INSERT INTO chat_day_rollup (chat_id, local_day, messages) VALUES"
                " ($1, '2026-10-01', 9), ($1, '2026-10-02', 4), ($1, '2026-10-03', 1)",
                CHAT,
            )
            await conn.execute(
                "INSERT INTO reply_pair_day_rollup VALUES ($1, '2026-10-01', 1, 2, 3),"
                " ($1, '2026-10-01', 2, 1, 2), ($1, '2026-10-01', 3, 3, 5),"
                " ($1, '2026-10-02', 4, 4, 1)",
                CHAT,
            )
            await run_migrations(url)
            filled = await conn.fetch(
                "SELECT local_day, member_replies FROM chat_day_rollup ORDER BY local_day"
            )
        finally:
            await conn.close()
    assert [(r["local_day"], r["member_replies"]) for r in filled] == [
        (date(2026, 10, 1), 5), (date(2026, 10, 2), 0), (date(2026, 10, 3), 0),
    ]  # fmt: skip
