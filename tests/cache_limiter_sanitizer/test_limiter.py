"""The sliding-window rate limiter: exactness, both stores, atomicity, Redis outage fallback."""

from __future__ import annotations

import asyncio
import logging
import secrets
from bisect import bisect_left

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from tgstats.plugin_api import RateLimiter
from tgstats.plugin_api.redis_link import RedisLink
from tgstats.settings import RedisSettings
from tgstats_ratelimit import MemoryRateLimiter, RedisRateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _max_in_any_window(times: list[float], window: float) -> int:
    """The most admitted times inside any half-open window [t, t + window)."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect_left(times, start + window) - i)
    return best


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(
        st.one_of(st.just(0.0), st.floats(0.0, 5.0), st.floats(5.0, 400.0)), max_size=250
    ),
    per_minute=st.integers(0, 8),
    per_hour=st.integers(0, 30),
)
def test_never_admits_more_than_the_limit_in_any_window(
    gaps: list[float], per_minute: int, per_hour: int
) -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.now += gap
        result = limiter.check("k", per_minute=per_minute, per_hour=per_hour, record=True)
        in_minute = len([t for t in admitted if t > clock.now - 60])
        in_hour = len([t for t in admitted if t > clock.now - 3600])
        # Exact: admitted if and only if both windows have room.
        expected = (per_minute == 0 or in_minute < per_minute) and (
            per_hour == 0 or in_hour < per_hour
        )
        assert result.allowed == expected
        if result.allowed:
            admitted.append(clock.now)
        else:
            assert result.retry_after > 0
            assert result.remaining == 0
    if per_minute:
        assert _max_in_any_window(admitted, 60) <= per_minute
    if per_hour:
        assert _max_in_any_window(admitted, 3600) <= per_hour


def test_headers_values_and_retry_after() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    first = limiter.check("k", per_minute=3, per_hour=100, record=True)
    assert (first.allowed, first.limit, first.remaining) == (True, 3, 2)
    assert first.reset_after == pytest.approx(60)
    clock.now += 10
    limiter.check("k", per_minute=3, per_hour=100, record=True)
    clock.now += 10
    third = limiter.check("k", per_minute=3, per_hour=100, record=True)
    assert third.remaining == 0
    clock.now += 5
    refused = limiter.check("k", per_minute=3, per_hour=100, record=True)
    assert not refused.allowed
    # The first hit (25 s ago) leaves the minute window in 35 s.
    assert refused.retry_after == pytest.approx(35)
    clock.now += 35
    assert limiter.check("k", per_minute=3, per_hour=100, record=True).allowed


def test_peek_records_nothing() -> None:
    limiter = MemoryRateLimiter(FakeClock())
    for _ in range(5):
        assert limiter.check("k", per_minute=1, per_hour=0, record=False).allowed
    assert limiter.check("k", per_minute=1, per_hour=0, record=True).allowed
    assert not limiter.check("k", per_minute=1, per_hour=0, record=False).allowed


def test_in_process_store_forgets_idle_keys() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    for i in range(100):
        limiter.check(f"user:{i}", per_minute=5, per_hour=50, record=True)
    assert len(limiter) == 100
    clock.now += 3601
    limiter.check("fresh", per_minute=5, per_hour=50, record=True)  # triggers the sweep
    assert len(limiter) == 1


def _link(url: str, prefix: str, timeout: float = 0.3, **kwargs: object) -> RedisLink:
    settings = RedisSettings(url=_secret(url), key_prefix=prefix, socket_timeout=timeout)
    return RedisLink.from_settings(settings, name="rate limiter test", **kwargs)  # type: ignore[arg-type]


def _secret(value: str) -> object:
    from tgstats.settings import SecretStr

    return SecretStr(value)


async def test_redis_limiter_matches_the_policy(redis_url: str, redis_prefix: str) -> None:
    link = _link(redis_url, redis_prefix + "rl1:")
    limiter = RedisRateLimiter(link)
    assert isinstance(limiter, RateLimiter)
    key = f"cmd:{secrets.token_hex(4)}"
    try:
        results = [await limiter.hit(key, per_minute=3, per_hour=5) for _ in range(4)]
        assert [r.allowed for r in results] == [True, True, True, False]
        assert [r.remaining for r in results[:3]] == [2, 1, 0]
        assert 59 <= results[3].retry_after <= 60
        assert results[3].limit == 3
        peeked = await limiter.peek(key, per_minute=3, per_hour=5)
        assert not peeked.allowed
        # Refusals are not recorded: the log still holds three entries.
        assert await link.client.zcard(link.key("rl", key)) == 3
        ttl = await link.client.pttl(link.key("rl", key))
        assert 3_500_000 < ttl <= 3_600_000
        other = await limiter.hit(key + "-other", per_minute=3, per_hour=5)
        assert other.allowed and other.remaining == 2
    finally:
        await link.client.delete(link.key("rl", key), link.key("rl", key + "-other"))
        await link.close()


async def test_redis_limiter_is_atomic_across_clients(redis_url: str, redis_prefix: str) -> None:
    """Six replicas (own pools) race 300 hits at one key: exactly the limit gets through."""
    # A generous timeout: 300 connections opening at once on a 2-core machine are slow,
    # and a timeout would (correctly) fall back to in-process limits, which is not under test.
    links = [_link(redis_url, redis_prefix + "rl2:", timeout=5.0) for _ in range(6)]
    limiters = [RedisRateLimiter(link) for link in links]
    key = f"race:{secrets.token_hex(4)}"
    try:
        results = await asyncio.gather(
            *(limiters[i % 6].hit(key, per_minute=37, per_hour=1000) for i in range(300))
        )
        assert all(link.outages == 0 for link in links)
        assert sum(r.allowed for r in results) == 37
        assert await links[0].client.zcard(links[0].key("rl", key)) == 37
    finally:
        await links[0].client.delete(links[0].key("rl", key))
        for link in links:
            await link.close()


async def test_redis_outage_falls_back_in_process_and_says_so_once(
    private_redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    link = _link(private_redis.url, redis_prefix, retry_interval=0.2)
    limiter = RedisRateLimiter(link)
    caplog.set_level(logging.WARNING, logger="tgstats.redis")
    try:
        assert (await limiter.hit("u", per_minute=2, per_hour=10)).allowed
        private_redis.stop()
        during = [await limiter.hit("u", per_minute=2, per_hour=10) for _ in range(5)]
        await asyncio.sleep(0.3)  # past the retry interval: tries Redis again, still down
        during += [await limiter.hit("u", per_minute=2, per_hour=10) for _ in range(2)]
        # Still limiting, from the in-process log.
        assert [r.allowed for r in during] == [True, True, False, False, False, False, False]
        outage_logs = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(outage_logs) == 1
        assert link.outages == 1
        private_redis.start()
        await asyncio.sleep(0.25)
        back = await limiter.hit("fresh", per_minute=2, per_hour=10)
        assert back.allowed
        raw = aioredis.from_url(private_redis.url)
        assert await raw.zcard(redis_prefix + "rl:fresh") == 1  # Redis is used again
        await raw.aclose()
        assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        await link.close()


def test_batch_sizes_leave_ordinary_limits_exact() -> None:
    from tgstats_ratelimit.limiter import lease_size

    assert lease_size(120, 3000) == 1  # the API defaults: one Redis round trip per request
    assert lease_size(10, 100) == 1
    assert lease_size(0, 0) == 1
    assert lease_size(1000, 0) == 10
    assert lease_size(0, 50_000) == 100
    assert lease_size(10**9, 10**9) == 100  # capped


async def test_redis_batches_stay_within_their_documented_bound(
    redis_url: str, redis_prefix: str
) -> None:
    """Three processes, a limit of 1000/min (batches of 10): at most limit + P x (B - 1)."""
    links = [_link(redis_url, redis_prefix + "rl3:", timeout=5.0) for _ in range(3)]
    limiters = [RedisRateLimiter(link) for link in links]
    key = f"batch:{secrets.token_hex(4)}"
    try:
        results = await asyncio.gather(
            *(limiters[i % 3].hit(key, per_minute=1000, per_hour=0) for i in range(1500))
        )
        admitted = sum(r.allowed for r in results)
        recorded = await links[0].client.zcard(links[0].key("rl", key))
        assert recorded == 1000  # Redis never records past the limit
        assert 1000 - 3 * 9 <= admitted <= 1000
        refused = [r for r in results if not r.allowed]
        assert refused and all(r.retry_after > 0 and r.remaining == 0 for r in refused)
        # Within one process the reported budget only goes down.
        own = [r.remaining for i, r in enumerate(results) if i % 3 == 0 and r.allowed]
        assert own == sorted(own, reverse=True)
        # peek stays exact: the window is full.
        assert not (await limiters[1].peek(key, per_minute=1000, per_hour=0)).allowed
    finally:
        await links[0].client.delete(links[0].key("rl", key))
        for link in links:
            await link.close()


async def test_unused_batch_expires(redis_url: str, redis_prefix: str) -> None:
    clock = FakeClock()
    link = _link(redis_url, redis_prefix + "rl4:")
    limiter = RedisRateLimiter(link, clock=clock)
    key = f"lease:{secrets.token_hex(4)}"
    try:
        first = await limiter.hit(key, per_minute=500, per_hour=0)  # takes a batch of 5
        assert first.allowed and first.remaining == 499
        assert await link.client.zcard(link.key("rl", key)) == 5
        second = await limiter.hit(key, per_minute=500, per_hour=0)  # from the batch
        assert second.remaining == 498
        assert await link.client.zcard(link.key("rl", key)) == 5
        clock.now += 1.0  # LEASE_SECONDS: the 3 left are not handed out any more
        third = await limiter.hit(key, per_minute=500, per_hour=0)
        assert third.allowed
        assert await link.client.zcard(link.key("rl", key)) == 10
    finally:
        await link.client.delete(link.key("rl", key))
        await link.close()
