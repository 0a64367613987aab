"""``message_reaction_totals`` (kept by triggers, alembic 0007) against independent counts.

The reference total of a message is computed here in Python from the raw
``message_reactions`` and ``reaction_counts`` rows: per emoji the larger of
the present per-user reactions and the anonymous count, summed over emoji;
messages without any have no row.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from tests.pipeline.test_event_kinds import CHAT, T0, msg, rows, write
from tgstats.db.engine import Database
from tgstats.events import ReactionCountEvent, ReactionEvent

EMOJI = ("👍", "🔥", "❤", "custom:7")


async def totals(db: Database) -> dict[tuple[int, int], int]:
    return {
        (c, m): t
        for c, m, t in await rows(db, "SELECT chat_id, msg_id, total FROM message_reaction_totals")
    }


async def reference(db: Database) -> dict[tuple[int, int], int]:
    per_user: Counter[tuple[int, int, str]] = Counter()
    for chat_id, msg_id, reaction in await rows(
        db, "SELECT chat_id, msg_id, reaction FROM message_reactions WHERE removed_at IS NULL"
    ):
        per_user[(chat_id, msg_id, reaction)] += 1
    anonymous: dict[tuple[int, int, str], int] = {}
    for chat_id, msg_id, reaction, count in await rows(
        db, "SELECT chat_id, msg_id, reaction, count FROM reaction_counts"
    ):
        anonymous[(chat_id, msg_id, reaction)] = count
    out: Counter[tuple[int, int]] = Counter()
    for key in set(per_user) | set(anonymous):
        out[key[:2]] += max(per_user.get(key, 0), anonymous.get(key, 0))
    return {key: n for key, n in out.items() if n > 0}


@pytest.fixture
async def pipeline(make_pipeline: Callable[..., Any]) -> Any:
    async with make_pipeline(batch_size=50) as built:
        yield built


async def test_worked_example(db: Database, pipeline: Any) -> None:
    def react(minutes: int, user: int, *, added: tuple[str, ...] = (),
              removed: tuple[str, ...] = ()) -> ReactionEvent:  # fmt: skip
        return ReactionEvent(chat_id=CHAT, msg_id=1, date=T0 + timedelta(minutes=minutes),
                             user_id=user, added=added, removed=removed)  # fmt: skip

    await write(pipeline, msg(1), react(5, 2, added=("👍",)), react(5, 3, added=("👍",)),
                react(6, 4, added=("🔥",)))  # fmt: skip
    assert await totals(db) == {(CHAT, 1): 3}
    # Anonymous totals: 👍 5 beats the 2 users seen; ❤ only there; 🔥 1 user either way.
    await write(pipeline, ReactionCountEvent(chat_id=CHAT, msg_id=1, date=T0 + timedelta(
        minutes=7), counts=(("👍", 5), ("❤", 1))))  # fmt: skip
    assert await totals(db) == {(CHAT, 1): 5 + 1 + 1}
    await write(pipeline, react(8, 2, removed=("👍",)))  # 1 user left, the report still says 5
    assert await totals(db) == {(CHAT, 1): 7}
    await write(pipeline, ReactionCountEvent(chat_id=CHAT, msg_id=1, date=T0 + timedelta(
        minutes=9), counts=(("👍", 1),)))  # fmt: skip
    assert await totals(db) == {(CHAT, 1): 1 + 1}
    await write(pipeline, react(10, 3, removed=("👍",)), react(10, 4, removed=("🔥",)),
                ReactionCountEvent(chat_id=CHAT, msg_id=1, date=T0 + timedelta(minutes=11),
                                   counts=()))  # fmt: skip
    assert await totals(db) == {}


async def test_random_changes_match_the_raw_rows(db: Database, pipeline: Any) -> None:
    rng = random.Random(4)
    await write(pipeline, *(msg(m, user_id=m % 5 + 1) for m in range(1, 16)))
    for step in range(12):
        events: list[Any] = []
        for _ in range(rng.randint(5, 40)):
            at = T0 + timedelta(minutes=20 + step * 10, seconds=rng.randint(0, 500))
            msg_id = rng.randint(1, 15)
            if rng.random() < 0.15:
                counts = tuple((e, rng.randint(0, 6)) for e in rng.sample(EMOJI, rng.randint(0, 3)))
                events.append(ReactionCountEvent(chat_id=CHAT, msg_id=msg_id, date=at,
                                                 counts=counts))  # fmt: skip
            else:
                emoji = rng.choice(EMOJI)
                add = rng.random() < 0.65
                events.append(ReactionEvent(
                    chat_id=CHAT, msg_id=msg_id, date=at, user_id=rng.randint(1, 8),
                    added=(emoji,) if add else (), removed=() if add else (emoji,)))  # fmt: skip
        await write(pipeline, *events)
        want = await reference(db)
        assert await totals(db) == want
    assert len(want) >= 5 and max(want.values()) >= 3


async def test_other_writers_keep_totals(db: Database, pipeline: Any) -> None:
    """Deletes outside the pipeline (privacy, retention) recount through the triggers."""
    await write(pipeline, msg(1), msg(2), *(
        ReactionEvent(chat_id=CHAT, msg_id=m, date=T0 + timedelta(minutes=9), user_id=u,
                      added=("👍",)) for m in (1, 2) for u in (7, 8)))  # fmt: skip
    assert await totals(db) == {(CHAT, 1): 2, (CHAT, 2): 2}
    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM message_reactions WHERE user_id = 7"))
    assert await totals(db) == {(CHAT, 1): 1, (CHAT, 2): 1} == await reference(db)
    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM message_reactions WHERE msg_id = 2"))
    assert await totals(db) == {(CHAT, 1): 1} == await reference(db)


def _asyncpg_url(db: Database) -> str:
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def test_concurrent_writers_of_one_message_both_count(db: Database, pipeline: Any) -> None:
    """The second writer waits for the first's lock and counts its committed reaction too
    (without the lock it would count only its own and overwrite the first's total)."""
    await write(pipeline, msg(1))
    url = _asyncpg_url(db)
    first, second = await asyncpg.connect(url), await asyncpg.connect(url)
    insert = (
        "INSERT INTO message_reactions (chat_id, msg_id, user_id, reaction, added_at)"
        " VALUES ($1, 1, $2, '👍', $3)"
    )
    try:
        one = first.transaction()
        await one.start()
        await first.execute(insert, CHAT, 11, T0)
        two = second.transaction()
        await two.start()
        waiting = asyncio.ensure_future(second.execute(insert, CHAT, 12, T0))
        pid = second.get_server_pid()
        for _ in range(500):  # until the second is blocked on the first's lock
            blocked = await first.fetchval("SELECT cardinality(pg_blocking_pids($1)) > 0", pid)
            if blocked:
                break
            await asyncio.sleep(0.01)
        assert blocked
        assert not waiting.done()
        await one.commit()
        await waiting
        await two.commit()
    finally:
        await first.close()
        await second.close()
    assert await totals(db) == {(CHAT, 1): 2} == await reference(db)
