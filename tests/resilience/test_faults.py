"""Scenarios 3 and 4: PostgreSQL and Redis failing under a running service."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import redis.asyncio as aioredis

from tests.resilience.simulator import (
    SendResult,
    build_workload,
    diff_counts,
    read_stats_under_load,
    send,
    stored_counts,
)
from tgstats_mtproto.testing import RawUpdates

OUTAGE_SECONDS = 10.0


class ReadinessMonitor:
    """Polls ``/health/ready`` and keeps the sequence of distinct statuses seen."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.timeline: list[tuple[float, int]] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._began = time.monotonic()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = (await self.client.get("/health/ready", timeout=5)).status_code
            except httpx.TransportError:
                status = 0
            if not self.timeline or self.timeline[-1][1] != status:
                self.timeline.append((round(time.monotonic() - self._began, 1), status))
            await asyncio.sleep(0.2)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def statuses(self) -> list[int]:
        return [status for _, status in self.timeline]

    async def until(self, status: int, limit: float) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.timeline and self.timeline[-1][1] == status:
                return True
            await asyncio.sleep(0.1)
        return False


async def _until_acked(result: SendResult, count: int, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while len(result.acked) < count and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a list
        await asyncio.sleep(0.05)


async def test_database_faults(deploy: Callable[..., Any], report: Callable[..., None]) -> None:
    tg = RawUpdates()
    workload = build_workload(tg, chats=6, messages_per_chat=60, seed=4)
    # Chats whose first update arrives while PostgreSQL is down: nothing about them is cached.
    newcomers = build_workload(tg, chats=2, messages_per_chat=20, seed=5, chat_base=7000)
    expected = {**workload.expected, **newcomers.expected}
    updates = workload.updates
    third = len(updates) // 3
    async with deploy(DB_CONNECT_TIMEOUT="1") as d, d.client() as client:
        monitor = ReadinessMonitor(client)
        monitor.start()
        result = SendResult()
        sender = asyncio.create_task(send(client, updates, batch=10, pause=0.02, into=result))
        await _until_acked(result, third)
        killed = await d.pg.terminate_backends(d.database)
        await _until_acked(result, 2 * third)
        await asyncio.to_thread(d.pg.stop)
        down_at = time.monotonic()
        saw_503 = await monitor.until(503, OUTAGE_SECONDS)
        outage_sent = await send(client, newcomers.updates, batch=10)
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        await asyncio.to_thread(d.pg.start)
        outage_s = time.monotonic() - down_at
        await sender
        recovered_at = time.monotonic()
        flush = await client.post("/_sim/flush", timeout=120)
        back = await monitor.until(200, 60)
        catch_up_s = time.monotonic() - recovered_at
        await monitor.stop()
        conn = await d.pg.connect(d.database)
        try:
            problems = diff_counts(expected, await stored_counts(conn))
        finally:
            await conn.close()
    unacked = len(result.unacked) + len(outage_sent.unacked)
    passed = not problems and unacked == 0 and saw_503 and back and flush.status_code == 200
    report(
        "database faults",
        f"{len(updates) + len(newcomers.updates)} updates; terminated {killed} backends at 1/3, "
        f"PostgreSQL stopped {outage_s:.1f}s at 2/3 ({len(newcomers.updates)} updates of 2 new "
        f"chats sent meanwhile); /health/ready {monitor.statuses()}; caught up {catch_up_s:.1f}s "
        f"after restart; unacknowledged {unacked}; counts "
        f"{'exact' if not problems else 'WRONG: ' + '; '.join(problems[:2])}",
        passed,
    )
    assert killed > 0
    assert saw_503 and back, monitor.timeline
    assert unacked == 0, (result.error, outage_sent.error)
    assert not problems, problems[:5]


async def _probe_rate_limit(client: httpx.AsyncClient, address: str, limit: int) -> list[int]:
    """``limit + 1`` sign-in page loads from one client address (through a trusted proxy)."""
    statuses = []
    for _ in range(limit + 1):
        response = await client.get("/login", headers={"X-Forwarded-For": address})
        statuses.append(response.status_code)
    return statuses


async def test_redis_faults(
    deploy: Callable[..., Any],
    private_redis: Any,
    admin_headers: dict[str, str],
    report: Callable[..., None],
) -> None:
    limit = 120
    tg = RawUpdates()
    workload = build_workload(tg, chats=4, messages_per_chat=60, seed=6)
    updates = workload.updates
    env = {
        "API_RATE_LIMIT_PER_MINUTE": str(limit),
        "TRUSTED_PROXIES": "127.0.0.1",
        "REDIS_SOCKET_TIMEOUT": "2",  # a slow answer on a busy CI box is not an outage
    }
    async with deploy(redis_url=private_redis.url, **env) as d, d.client() as client:
        prime = await send(client, updates[:100], batch=50)
        await client.post("/_sim/flush")
        conn = await d.pg.connect(d.database)
        try:
            known = [r["id"] for r in await conn.fetch("SELECT id FROM chats")]
        finally:
            await conn.close()
        stop = asyncio.Event()
        # The admin token is one budget: the readers stay under it (about 2 reads/s, < 1 min).
        load_tasks = [
            asyncio.create_task(
                read_stats_under_load(
                    client, known, stop, concurrency=1, interval=1.0, seed=i, headers=admin_headers
                )
            )
            for i in range(2)
        ]
        result = SendResult()
        sender = asyncio.create_task(send(client, updates[100:], batch=10, pause=0.05, into=result))
        before = await _probe_rate_limit(client, "10.2.0.1", limit)
        private_redis.stop()
        down_at = time.monotonic()
        await asyncio.sleep(1.0)
        during = await _probe_rate_limit(client, "10.2.0.2", limit)
        await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - down_at)))
        private_redis.start()
        outage_s = time.monotonic() - down_at
        await asyncio.sleep(2.0)  # the link's breaker retries after its interval
        after = await _probe_rate_limit(client, "10.2.0.3", limit)
        await sender
        stop.set()
        loads = await asyncio.gather(*load_tasks)
        await client.post("/_sim/flush")
        redis = aioredis.from_url(private_redis.url)
        try:
            recovered_keys = [k async for k in redis.scan_iter(match="*10.2.0.3*")]
        finally:
            await redis.aclose()
        conn = await d.pg.connect(d.database)
        try:
            problems = diff_counts(workload.expected, await stored_counts(conn))
        finally:
            await conn.close()
    statuses: dict[int, int] = {}
    for load in loads:
        for status, n in load.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    transport_errors = sum(load.transport_errors for load in loads)
    expected_probe = [200] * limit + [429]
    limited_ok = before == expected_probe and during == expected_probe and after == expected_probe
    unacked = len(result.unacked) + len(prime.unacked)
    passed = (
        not problems and unacked == 0 and set(statuses) == {200} and transport_errors == 0
        and limited_ok and bool(recovered_keys)
    )  # fmt: skip
    report(
        "redis faults",
        f"Redis stopped {outage_s:.1f}s under ingest + {sum(statuses.values())} stats reads "
        f"(statuses {statuses}, transport errors {transport_errors}); rate limit {limit}/min "
        f"held before/during/after the outage: {limited_ok} (in-process fallback, then Redis "
        f"again: {len(recovered_keys)} keys); unacknowledged {unacked}; counts "
        f"{'exact' if not problems else 'WRONG'}",
        passed,
    )
    for phase, got in (("before", before), ("during", during), ("after", after)):
        assert got == expected_probe, f"{phase} the outage: {Counter(got)}"
    assert recovered_keys, "the limiter did not go back to Redis"
    assert set(statuses) == {200} and transport_errors == 0, statuses
    assert unacked == 0, result.error
    assert not problems, problems[:5]
