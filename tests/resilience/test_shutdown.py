"""Scenario 5: SIGTERM and SIGKILL in the middle of a stream.

Both deployments hold events in the queue for up to a second
(``PIPELINE_FLUSH_INTERVAL_MS=1000``) so that a signal always finds accepted,
uncommitted events to lose or to save.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pyrogram import utils

from tests.resilience.sim_plugin import SESSION_ENV, SESSION_NAME
from tests.resilience.simulator import (
    Counts,
    SendResult,
    build_workload,
    diff_counts,
    send,
    stored_counts,
)
from tgstats_mtproto.testing import RawUpdates

SLOW_FLUSH = {"PIPELINE_FLUSH_INTERVAL_MS": "1000", "PIPELINE_BATCH_SIZE": "5000"}
BATCH = 20


def _within(lower: dict[int, Counts], stored: dict[int, Counts], upper: dict[int, Counts]) -> bool:
    for chat_id in set(lower) | set(stored) | set(upper):
        low = vars(lower.get(chat_id, Counts()))
        got = vars(stored.get(chat_id, Counts()))
        high = vars(upper.get(chat_id, Counts()))
        if any(not low[k] <= got[k] <= high[k] for k in low):
            return False
    return True


def _total(counts: dict[int, Counts], field: str) -> int:
    return sum(getattr(c, field) for c in counts.values())


async def _uncommitted_messages(d: Any, workload: Any, acked: list[Any]) -> int:
    """Acknowledged messages not committed yet (events waiting in the pipeline)."""
    conn = await d.pg.connect(d.database)
    try:
        committed = int(await conn.fetchval("SELECT count(*) FROM messages"))
    finally:
        await conn.close()
    return _total(workload.expected_for(acked), "messages") - committed


async def _until_acked(result: SendResult, count: int) -> None:
    while len(result.acked) < count and result.error is None:  # noqa: ASYNC110 - polls a list
        await asyncio.sleep(0.02)


async def test_sigterm_flushes_the_queue(
    deploy: Callable[..., Any], report: Callable[..., None]
) -> None:
    workload = build_workload(RawUpdates(), chats=6, messages_per_chat=60, seed=7)
    updates = workload.updates
    async with deploy(**SLOW_FLUSH) as d:
        async with d.client() as client:
            result = SendResult()
            sender = asyncio.create_task(
                send(client, updates, batch=BATCH, stop_on_error=True, into=result)
            )
            await _until_acked(result, len(updates) // 2)
            pending = await _uncommitted_messages(d, workload, result.acked)
            signalled = time.monotonic()
            d.service.signal(signal.SIGTERM)
            code = await d.service.wait(60)
            shutdown_s = time.monotonic() - signalled
            await sender
        conn = await d.pg.connect(d.database)
        try:
            after_exit = await stored_counts(conn)
        finally:
            await conn.close()
        acked, unacked = result.acked, result.unacked
        lower = workload.expected_for(acked)
        upper = workload.expected_for(acked + unacked[:BATCH])  # + the batch in flight
        kept = _within(lower, after_exit, upper)
        # Restarted, the bot gets again what it never acknowledged (Telegram re-sends it).
        await d.restart()
        async with d.client() as client:
            resent = await send(client, unacked, batch=BATCH)
            (await client.post("/_sim/flush")).raise_for_status()
        conn = await d.pg.connect(d.database)
        try:
            problems = diff_counts(workload.expected, await stored_counts(conn))
        finally:
            await conn.close()
    passed = code == 0 and pending > 0 and kept and not problems and not resent.unacked
    report(
        "shutdown (SIGTERM)",
        f"SIGTERM after {len(acked)}/{len(updates)} updates acknowledged, {pending} of their "
        f"messages not yet committed: exit code {code} in {shutdown_s:.1f}s, "
        f"{_total(after_exit, 'messages')} messages committed (acknowledged "
        f"{_total(lower, 'messages')}) -> nothing acknowledged lost: {kept}; after restart "
        f"and re-delivery of {len(unacked)} unacknowledged: counts "
        f"{'exact' if not problems else 'WRONG'}",
        passed,
    )
    assert code == 0, d.service.tail()
    assert pending > 0, "nothing was pending when the signal came; the scenario proved nothing"
    assert kept, (lower, after_exit)
    assert not problems, problems[:5]


def _has_pts(updates: Any) -> bool:
    return getattr(updates.updates[0], "pts", None) is not None


def _pts_of(updates: Any) -> tuple[int, int]:
    """(kurigram's state id of the channel, pts) of a channel message or edit."""
    inner = updates.updates[0]
    return utils.get_channel_id(inner.message.peer_id.channel_id), inner.pts


def _telegram_order(updates: list[Any], *, seed: int) -> list[Any]:
    """Channels interleaved at random, each channel's updates in its pts order."""
    by_channel: dict[int, list[Any]] = {}
    for update in sorted(updates, key=lambda u: _pts_of(u)[1]):
        by_channel.setdefault(_pts_of(update)[0], []).append(update)
    queues = [deque(channel) for channel in by_channel.values()]
    rng = random.Random(seed)
    ordered = []
    while queues:
        queue = rng.choice(queues)
        ordered.append(queue.popleft())
        if not queue:
            queues.remove(queue)
    return ordered


async def _stored_keys(conn: Any) -> set[tuple[str, int, int, int]]:
    """Every committed message and edit, as (kind, chat, msg id, edit date)."""
    rows = await conn.fetch("SELECT chat_id, msg_id FROM messages")
    edits = await conn.fetch(
        "SELECT chat_id, msg_id, extract(epoch FROM edit_date)::bigint AS at FROM message_edits"
    )
    return {("message", r["chat_id"], r["msg_id"], 0) for r in rows} | {
        ("edit", r["chat_id"], r["msg_id"], r["at"]) for r in edits
    }


def _key_of(updates: Any) -> tuple[str, int, int, int]:
    inner = updates.updates[0]
    chat_id = utils.get_channel_id(inner.message.peer_id.channel_id)
    if type(inner).__name__ == "UpdateEditChannelMessage":
        return ("edit", chat_id, inner.message.id, inner.message.edit_date)
    return ("message", chat_id, inner.message.id, 0)


async def test_sigkill_then_catch_up(
    deploy: Callable[..., Any], report: Callable[..., None]
) -> None:
    workload = build_workload(RawUpdates(), chats=5, messages_per_chat=60, seed=8)
    # Messages and edits travel in the channels' pts sequences, which catch-up recovers;
    # Telegram sends each channel's updates in pts order.
    stream = _telegram_order([u for u in workload.updates if _has_pts(u)], seed=9)
    first = len(stream) // 3
    async with deploy(**SLOW_FLUSH, **{SESSION_ENV: "database"}) as d:
        async with d.client() as client:
            committed = await send(client, stream[:first], batch=BATCH)
            (await client.post("/_sim/flush")).raise_for_status()
            # The session storage saves the update state in the background (every 0.25 s
            # in this simulator), also while the rest streams below.
            await asyncio.sleep(0.5)
            result = SendResult()
            sender = asyncio.create_task(
                send(client, stream[first:], batch=BATCH, stop_on_error=True, into=result)
            )
            await _until_acked(result, (len(stream) - first) // 2)
            pending = await _uncommitted_messages(d, workload, committed.acked + result.acked)
            d.service.signal(signal.SIGKILL)
            code = await d.service.wait(30)
            await sender
        conn = await d.pg.connect(d.database)
        try:
            after_kill = await stored_counts(conn)  # raises when rollups disagree with rows
            persisted = dict(
                await conn.fetch(
                    "SELECT id, pts FROM mtproto_update_state WHERE session_name = $1 AND id <> 0",
                    SESSION_NAME,
                )
            )
        finally:
            await conn.close()
        sent = committed.acked + result.acked
        lower = workload.expected_for(committed.acked)
        upper = workload.expected_for(sent + result.unacked[:BATCH])
        intact = _within(lower, after_kill, upper)
        lost = _total(workload.expected_for(sent), "messages") - _total(after_kill, "messages")
        # Catch-up: getChannelDifference from each channel's persisted pts returns every
        # later update of that channel; the simulator plays Telegram's part.
        channels = {_pts_of(u)[0] for u in stream}
        difference = [u for u in stream if _pts_of(u)[1] > persisted.get(_pts_of(u)[0], 10**9)]
        await d.restart()
        async with d.client() as client:
            caught_up = await send(client, difference, batch=BATCH)
            (await client.post("/_sim/flush")).raise_for_status()
        conn = await d.pg.connect(d.database)
        try:
            final = await stored_counts(conn)
            keys = await _stored_keys(conn)
        finally:
            await conn.close()
    missing = [u for u in stream if _key_of(u) not in keys]
    # The saved update state never runs ahead of what was committed (the plugin's
    # update_state_gate.py), so nothing at or before it can be missing: catch-up brings back
    # everything after it, including what died with the queue.
    unrecoverable = [u for u in missing if _pts_of(u)[1] <= persisted.get(_pts_of(u)[0], 0)]
    recovered_exactly = not set(map(id, missing)) - set(map(id, unrecoverable))
    no_doubles = not diff_counts(workload.expected_for([u for u in stream if u not in missing]),
                                 final)  # fmt: skip
    passed = (
        code == -signal.SIGKILL and pending > 0 and intact and set(persisted) == channels
        and recovered_exactly and no_doubles and not caught_up.unacked and not unrecoverable
    )  # fmt: skip
    report(
        "crash (SIGKILL) + catch-up",
        f"SIGKILL after {len(sent)}/{len(stream)} channel updates acknowledged ({pending} "
        f"messages not yet committed): committed rows intact, rollups consistent: {intact}; "
        f"{lost} acknowledged messages died with the queue; catch-up from the persisted pts of "
        f"{len(persisted)}/{len(channels)} channels re-delivered {len(difference)} updates, "
        f"everything after the persisted state recovered: {recovered_exactly}, nothing doubled: "
        f"{no_doubles}; {len(unrecoverable)} updates at or before the persisted state stay lost",
        passed,
    )
    assert code == -signal.SIGKILL
    assert pending > 0, "nothing was pending when the process died; the scenario proved nothing"
    assert intact, (lower, after_kill)
    assert set(persisted) == channels, persisted
    assert recovered_exactly, [(_key_of(u), _pts_of(u)) for u in missing][:5]
    assert not unrecoverable, [(_key_of(u), _pts_of(u)) for u in unrecoverable][:5]
    assert no_doubles
