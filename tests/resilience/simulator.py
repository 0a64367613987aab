"""The bot simulator: a Telegram-shaped update stream, what it must count to, and the readers.

``build_workload`` makes raw MTProto ``Updates`` (the MTProto harness's
``RawUpdates`` builders) for many supergroups: messages, edits, reactions,
joins and leaves, and tallies alongside, independently of tgstats' own code,
what each chat must end up with (``Counts``). ``send`` posts them to the
simulator plugin in the service under test; ``stored_counts`` reads what the
service committed straight from PostgreSQL (raw rows and rollups), so a test
compares the two.

The stream is made in two phases: messages and joins first, then edits,
reactions and leaves of those. Re-delivery shuffles updates only within a
window inside a phase, as Telegram's re-sends do; an edit is never moved
before the message it edits.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from tests.resilience.sim_plugin import encode_updates
from tgstats_mtproto.testing import RawUpdates, bot_api_id

__all__ = ["Counts", "LoadResult", "Workload", "build_workload", "read_stats_under_load", "send",
           "stored_counts"]  # fmt: skip

TEXTS = ("hello there", "see https://example.org/page", "ok", "привет всем", "lunch at noon?")
EMOJI = ("👍", "❤", "🔥", "🎉")


@dataclass
class Counts:
    """What one chat must hold: raw rows and rollup sums must both equal these."""

    messages: int = 0
    text_length: int = 0
    edits: int = 0
    reactions: int = 0
    joins: int = 0
    leaves: int = 0

    def add(self, other: Counts) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Workload:
    phases: list[list[Any]]  # raw Updates, in the order Telegram would send them
    expected: dict[int, Counts]  # Bot API chat id -> counts
    # id(update) -> (chat id, what that one update adds): expectations for any prefix
    contributions: dict[int, tuple[int, Counts]] = field(default_factory=dict)

    def expected_for(self, updates: Sequence[Any]) -> dict[int, Counts]:
        """What ``updates`` (a subset of this workload, each once) must count to."""
        found: dict[int, Counts] = {}
        for update in updates:
            chat_id, delta = self.contributions[id(update)]
            found.setdefault(chat_id, Counts()).add(delta)
        return found

    @property
    def updates(self) -> list[Any]:
        return [u for phase in self.phases for u in phase]

    def redelivered(self, *, window: int, seed: int) -> list[Any]:
        """Every update twice, shuffled within windows of ``window`` inside each phase."""
        rng = random.Random(seed)
        out: list[Any] = []
        for phase in self.phases:
            doubled = [u for u in phase for _ in range(2)]
            for start in range(0, len(doubled), window):
                chunk = doubled[start : start + window]
                rng.shuffle(chunk)
                out.extend(chunk)
        return out

    def totals(self) -> Counts:
        total = Counts()
        for counts in self.expected.values():
            total.add(counts)
        return total


def build_workload(
    tg: RawUpdates, *, chats: int, messages_per_chat: int, seed: int, chat_base: int = 5000
) -> Workload:
    """Messages in ``chats`` supergroups, a third edited, half reacted to; members join/leave."""
    rng = random.Random(seed)
    base = tg.now - 3600  # every date distinct and within the last hour
    clock = iter(range(base, base + 10**6))
    first: list[Any] = []
    second: list[Any] = []
    expected: dict[int, Counts] = {}
    contributions: dict[int, tuple[int, Counts]] = {}

    def emit(phase: list[Any], update: Any, chat_id: int, **delta: int) -> None:
        phase.append(update)
        contributions[id(update)] = (chat_id, Counts(**delta))
        expected[chat_id].add(Counts(**delta))

    for c in range(chats):
        group = tg.supergroup(chat_base + c, f"Chat {c}")
        chat_id = bot_api_id(group)
        expected[chat_id] = Counts()
        users = [tg.user(chat_base * 100 + c * 20 + i, f"U{i}") for i in range(8)]
        for i in range(messages_per_chat):
            tg.now = next(clock)
            sender = rng.choice(users)
            text = rng.choice(TEXTS)
            msg_id = tg.next_msg_id()
            message = tg.new_message(group, sender, text, msg_id=msg_id)
            emit(first, message, chat_id, messages=1, text_length=len(text))
            if i % 3 == 0:
                tg.now = next(clock)
                edit = tg.edited_message(
                    group, sender, text + " (edited)", msg_id=msg_id, edit_date=tg.now
                )
                emit(second, edit, chat_id, edits=1)
            if i % 2 == 0:
                tg.now = next(clock)
                giver = rng.choice(users)
                reaction = tg.reaction(group, giver, msg_id, new=[tg.emoji(rng.choice(EMOJI))])
                emit(second, reaction, chat_id, reactions=1)
        newcomers = [tg.user(chat_base * 100 + c * 20 + 10 + i, f"N{i}") for i in range(4)]
        for i, member in enumerate(newcomers):
            tg.now = next(clock)
            join = tg.channel_member(group, member, member, old=None, new=tg.participant(member))
            emit(first, join, chat_id, joins=1)
            if i % 2 == 0:  # half of them leave again, later
                tg.now = next(clock)
                leave = tg.channel_member(
                    group, member, member, old=tg.participant(member), new=tg.left(member)
                )
                emit(second, leave, chat_id, leaves=1)
    # Chats interleave; inside a phase only kinds whose order does not matter are mixed
    # (an edit or a reaction never comes before its message, a leave never before its join).
    rng.shuffle(first)
    rng.shuffle(second)
    return Workload(phases=[first, second], expected=expected, contributions=contributions)


@dataclass
class SendResult:
    acked: list[Any] = field(default_factory=list)
    unacked: list[Any] = field(default_factory=list)  # in flight or never sent when it failed
    error: str | None = None


async def send(
    client: httpx.AsyncClient,
    updates: Sequence[Any],
    *,
    batch: int = 40,
    stop_on_error: bool = False,
    pause: float = 0.0,
    into: SendResult | None = None,
) -> SendResult:
    """POST ``updates`` in batches to ``/_sim/updates``; a 200 acknowledges a whole batch.

    ``into``: a result to fill as it goes, so that a scenario can act mid-stream.
    """
    result = into if into is not None else SendResult()
    for start in range(0, len(updates), batch):
        chunk = list(updates[start : start + batch])
        try:
            response = await client.post("/_sim/updates", content=encode_updates(chunk))
            response.raise_for_status()
        except httpx.HTTPError as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:200]
            if stop_on_error:
                result.unacked.extend(updates[start:])
                return result
            result.unacked.extend(chunk)
            continue
        result.acked.extend(chunk)
        if pause:
            await asyncio.sleep(pause)
    return result


async def stored_counts(conn: asyncpg.Connection) -> dict[int, Counts]:
    """Per chat, from raw rows; raises when a rollup disagrees with its raw rows."""
    found: dict[int, Counts] = {}
    rows = await conn.fetch(
        "SELECT chat_id, sum(messages) AS messages, sum(text_length) AS text_length, "
        "sum(edits) AS edits, sum(reactions) AS reactions, sum(joins) AS joins, "
        "sum(leaves) AS leaves FROM chat_day_rollup GROUP BY chat_id"
    )
    rollup = {r["chat_id"]: Counts(**{k: int(r[k] or 0) for k in vars(Counts())}) for r in rows}
    raw_messages = dict(await conn.fetch("SELECT chat_id, count(*) FROM messages GROUP BY chat_id"))
    raw_edits = dict(
        await conn.fetch("SELECT chat_id, count(*) FROM message_edits GROUP BY chat_id")
    )
    raw_reactions = dict(await conn.fetch(
        "SELECT chat_id, count(*) FROM message_reactions WHERE removed_at IS NULL GROUP BY chat_id"
    ))  # fmt: skip
    member_rows = await conn.fetch(
        "SELECT chat_id, action, count(*) AS n FROM membership_events GROUP BY chat_id, action"
    )
    raw_members: Counter[tuple[int, str]] = Counter(
        {(r["chat_id"], r["action"]): r["n"] for r in member_rows}
    )
    for chat_id in set(rollup) | set(raw_messages):
        raw = Counts(
            messages=int(raw_messages.get(chat_id, 0)),
            text_length=rollup.get(chat_id, Counts()).text_length,
            edits=int(raw_edits.get(chat_id, 0)),
            reactions=int(raw_reactions.get(chat_id, 0)),
            joins=raw_members[(chat_id, "join")],
            leaves=raw_members[(chat_id, "leave")],
        )
        if rollup.get(chat_id, Counts()) != raw:
            raise AssertionError(f"chat {chat_id}: rollups {rollup.get(chat_id)} != raw rows {raw}")
        found[chat_id] = raw
    return found


def diff_counts(expected: dict[int, Counts], stored: dict[int, Counts]) -> list[str]:
    """Human-readable differences; empty when every chat matches exactly."""
    problems = []
    for chat_id in sorted(set(expected) | set(stored)):
        want, got = expected.get(chat_id, Counts()), stored.get(chat_id, Counts())
        if want != got:
            problems.append(f"chat {chat_id}: expected {want}, stored {got}")
    return problems


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self.transport_errors

    def percentile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]

    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


STATS_PATHS = ("summary", "timeseries", "heatmap", "users", "media", "reactions", "members")


async def read_stats_under_load(
    client: httpx.AsyncClient,
    chat_ids: Sequence[int],
    stop: asyncio.Event,
    *,
    headers: dict[str, str],
    concurrency: int = 4,
    interval: float = 0.0,
    seed: int = 1,
) -> LoadResult:
    """Readers hitting stats endpoints until ``stop`` is set; every response recorded."""
    result = LoadResult()
    rng = random.Random(seed)

    async def reader() -> None:
        while not stop.is_set():
            path = f"/api/v1/chats/{rng.choice(chat_ids)}/{rng.choice(STATS_PATHS)}"
            began = time.perf_counter()
            try:
                response = await client.get(path, headers=headers)
            except httpx.TransportError:
                result.transport_errors += 1
            else:
                result.statuses[response.status_code] += 1
                result.latencies.append(time.perf_counter() - began)
            if interval:
                await asyncio.sleep(interval)

    await asyncio.gather(*(reader() for _ in range(concurrency)))
    return result
