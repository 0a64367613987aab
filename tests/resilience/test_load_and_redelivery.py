"""Scenarios 1 and 2: steady load with readers, and every update delivered twice out of order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tests.resilience.simulator import (
    build_workload,
    diff_counts,
    read_stats_under_load,
    send,
    stored_counts,
)
from tgstats_mtproto.testing import RawUpdates

READ_SECONDS = 8.0


async def test_steady_load(
    deploy: Callable[..., Any], admin_headers: dict[str, str], report: Callable[..., None]
) -> None:
    workload = build_workload(RawUpdates(), chats=12, messages_per_chat=120, seed=1)
    updates = workload.updates
    async with deploy() as d, d.client() as client:
        # Readers read chats that exist (a chat not seen yet is a correct 404, not a fault).
        prime = await send(client, updates[:300], batch=50)
        (await client.post("/_sim/flush")).raise_for_status()
        conn = await d.pg.connect(d.database)
        try:
            known = [r["id"] for r in await conn.fetch("SELECT id FROM chats")]
        finally:
            await conn.close()
        stop = asyncio.Event()
        readers = asyncio.create_task(
            read_stats_under_load(client, known, stop, headers=admin_headers, concurrency=3)
        )
        began = time.perf_counter()
        sent = await send(client, updates[300:], batch=50)
        sent.unacked.extend(prime.unacked)
        (await client.post("/_sim/flush")).raise_for_status()
        ingest_s = time.perf_counter() - began
        # Readers run at least READ_SECONDS, so p99 rests on a few hundred reads.
        await asyncio.sleep(max(0.0, READ_SECONDS - ingest_s))
        stop.set()
        load = await readers
        conn = await d.pg.connect(d.database)
        try:
            problems = diff_counts(workload.expected, await stored_counts(conn))
        finally:
            await conn.close()
    passed = not problems and not sent.unacked and set(load.statuses) == {200}
    passed = passed and load.transport_errors == 0
    report(
        "steady load",
        f"{len(updates)} updates ({len(workload.expected)} chats: messages, edits, reactions, "
        f"joins/leaves); {len(updates) - 300} of them in {ingest_s:.1f}s "
        f"({(len(updates) - 300) / ingest_s:.0f} updates/s) while "
        f"{load.requests} stats reads ran over {max(READ_SECONDS, ingest_s):.0f}s; "
        f"reads p50 {load.percentile(50) * 1000:.0f} ms, "
        f"p99 {load.percentile(99) * 1000:.0f} ms, statuses {dict(load.statuses)}; "
        f"counts {'exact' if not problems else 'WRONG'}",
        passed,
    )
    assert not problems, problems[:5]
    assert not sent.unacked, sent.error
    assert load.server_errors() == 0 and load.transport_errors == 0, load.statuses
    assert set(load.statuses) == {200}, load.statuses


async def test_redelivery_out_of_order(
    deploy: Callable[..., Any], report: Callable[..., None]
) -> None:
    workload = build_workload(RawUpdates(), chats=6, messages_per_chat=80, seed=2)
    stream = workload.redelivered(window=30, seed=3)
    async with deploy() as d, d.client() as client:
        sent = await send(client, stream, batch=25)
        (await client.post("/_sim/flush")).raise_for_status()
        conn = await d.pg.connect(d.database)
        try:
            problems = diff_counts(workload.expected, await stored_counts(conn))
        finally:
            await conn.close()
    totals = workload.totals()
    report(
        "re-delivery",
        f"{len(stream)} deliveries = each of {len(workload.updates)} updates twice, shuffled in "
        f"windows of 30; stored messages={totals.messages} edits={totals.edits} "
        f"reactions={totals.reactions} joins={totals.joins} leaves={totals.leaves} "
        f"{'exactly once' if not problems else 'WRONG: ' + '; '.join(problems[:2])}",
        not problems and not sent.unacked,
    )
    assert not sent.unacked, sent.error
    assert not problems, problems[:5]
