"""The stats cache: both stores, msgspec values, data versions, metrics, Redis outage."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import msgspec
import pytest

from tgstats.plugin_api import Cache, cached, versioned_key
from tgstats.plugin_api.redis_link import RedisLink
from tgstats.settings import RedisSettings, SecretStr
from tgstats_cache import MemoryStore, RedisStore, StatsCache
from tgstats_cache.version_feed import follow_version_bumps


class Summary(msgspec.Struct, frozen=True):
    chat_id: int
    messages: int
    top: list[str]


class CountingMetrics:
    """Records what the cache reports (the real ``Metrics`` is an OTel object)."""

    def __init__(self) -> None:
        self.results: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        metrics = self

        class _Counter:
            def add(self, amount: int, attributes: dict[str, Any]) -> None:
                metrics.results[attributes["result"]] += amount

        self.cache_requests = _Counter()

    def error(self, error_type: str) -> None:
        self.errors[error_type] += 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _link(url: str, prefix: str, metrics: Any = None, retry: float = 1.0) -> RedisLink:
    settings = RedisSettings(url=SecretStr(url), key_prefix=prefix, socket_timeout=0.3)
    return RedisLink.from_settings(settings, name="cache", metrics=metrics, retry_interval=retry)


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest, redis_url: str, redis_prefix: str) -> Any:
    metrics = CountingMetrics()
    if request.param == "memory":
        yield StatsCache(MemoryStore(100), default_ttl=60, metrics=metrics)
        return
    link = _link(redis_url, f"{redis_prefix}cache-{request.node.name}:", metrics)
    yield StatsCache(RedisStore(link), default_ttl=60, metrics=metrics)
    keys = [k async for k in link.client.scan_iter(match=link.key_prefix + "*")]
    if keys:
        await link.client.delete(*keys)
    await link.close()


async def test_round_trip_of_structs_and_metrics(cache: StatsCache) -> None:
    assert isinstance(cache, Cache)
    value = Summary(chat_id=-100, messages=5, top=["O'Brien", "select"])
    assert await cache.get("summary", "k", Summary) is None
    await cache.set("summary", "k", value)
    assert await cache.get("summary", "k", Summary) == value
    assert await cache.get("other", "k", Summary) is None  # namespaces are separate
    await cache.delete("summary", "k")
    assert await cache.get("summary", "k", Summary) is None
    assert cache.metrics.results == Counter({"miss": 3, "hit": 1})


async def test_value_of_another_shape_is_a_miss(cache: StatsCache) -> None:
    await cache.set("summary", "k", {"unexpected": True})
    assert await cache.get("summary", "k", Summary) is None
    assert await cache.get("summary", "k", dict) is None  # dropped, not kept


async def test_namespace_is_checked(cache: StatsCache) -> None:
    with pytest.raises(ValueError, match="namespace"):
        await cache.get("a:b", "k", int)


async def test_cached_answer_is_never_older_than_the_last_commit(cache: StatsCache) -> None:
    calls = 0

    async def compute() -> Summary:
        nonlocal calls
        calls += 1
        return Summary(chat_id=7, messages=calls, top=[])

    first = await cached(cache, "summary", "30d", Summary, compute, chat_id=7)
    again = await cached(cache, "summary", "30d", Summary, compute, chat_id=7)
    assert first == again and calls == 1
    await cache.bump_data_version([7, 8])
    fresh = await cached(cache, "summary", "30d", Summary, compute, chat_id=7)
    assert calls == 2 and fresh.messages == 2
    assert await cache.data_version(7) == 1
    assert await cache.data_version(9) == 0


async def test_lookup_builds_the_same_key_as_cached(cache: StatsCache) -> None:
    await cache.bump_data_version([3, 3])  # one bump per call, however often listed
    assert await cache.data_version(3) == 1
    await cache.set("summary", versioned_key(3, 1, "7d:UTC"), 99)
    assert await cache.lookup("summary", "7d:UTC", int, chat_id=3) == (1, 99)
    assert await cache.lookup("summary", "7d:UTC", int, chat_id=4) == (0, None)


async def test_metrics_are_reported_in_batches() -> None:
    metrics = CountingMetrics()
    cache = StatsCache(MemoryStore(10), default_ttl=60, metrics=metrics, metrics_interval=3600)
    for _ in range(5):
        await cache.get("n", "k", int)
    assert metrics.results["miss"] == 0
    cache.report_metrics()
    assert metrics.results["miss"] == 5


async def test_cached_without_a_cache_computes() -> None:
    async def compute() -> int:
        return 41 + 1

    assert await cached(None, "x", "k", int, compute) == 42


async def test_memory_store_is_bounded_lru_with_ttl() -> None:
    clock = FakeClock()
    store = MemoryStore(3, clock=clock)
    for key in "abc":
        await store.set(key, b"v", ttl=10)
    await store.get("a")  # a is now the most recently used
    await store.set("d", b"v", ttl=10)
    assert len(store) == 3
    assert await store.get("b") is None
    assert await store.get("a") == b"v"
    clock.now = 10
    assert await store.get("a") is None
    assert len(store) == 2


async def test_redis_entries_expire_with_the_ttl(redis_url: str, redis_prefix: str) -> None:
    link = _link(redis_url, redis_prefix + "ttl:")
    cache = StatsCache(RedisStore(link), default_ttl=60)
    try:
        await cache.set("summary", "k", 1, ttl=30)
        ttl = await link.client.ttl(link.key("cache", "summary:k"))
        assert 0 < ttl <= 30
        await cache.set("summary", "k2", 1)
        assert 30 < await link.client.ttl(link.key("cache", "summary:k2")) <= 60
    finally:
        await link.client.delete(link.key("cache", "summary:k"), link.key("cache", "summary:k2"))
        await link.close()


async def test_redis_outage_serves_uncached_then_resumes(
    private_redis: Any, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Stop the (private) Redis mid-use, keep answering, bump versions, start it again."""
    caplog.set_level(logging.WARNING, logger="tgstats.redis")
    metrics = CountingMetrics()
    link = _link(private_redis.url, redis_prefix, metrics, retry=0.1)
    cache = StatsCache(RedisStore(link), default_ttl=60, metrics=metrics)
    calls = 0

    async def compute() -> Summary:
        nonlocal calls
        calls += 1
        return Summary(chat_id=1, messages=calls, top=[])

    async def ask() -> Summary:
        return await cached(cache, "summary", "7d", Summary, compute, chat_id=1)

    try:
        assert (await ask()).messages == 1
        assert (await ask()).messages == 1  # cached
        private_redis.stop()
        for _ in range(5):  # every request still answers, computed fresh
            await ask()
        assert calls == 6
        await cache.bump_data_version([1])  # a batch committed during the outage
        assert cache.pending_bumps == 1
        assert [r.getMessage() for r in caplog.records].count(
            "Redis unavailable (ConnectionError); cache continues without it until it returns"
        ) == 1
        assert metrics.errors["redis_unavailable"] == 1
        assert metrics.results["unavailable"] == 5  # counted, and the answers computed

        private_redis.start()  # a fresh, empty server: the old entry is gone
        await asyncio.sleep(0.15)
        assert (await ask()).messages == 7  # the held bump was written first
        assert cache.pending_bumps == 0
        assert await cache.data_version(1) == 1
        assert (await ask()).messages == 7  # caching again
        assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        await link.close()


async def test_held_bump_invalidates_surviving_entries(
    private_redis: Any, redis_prefix: str
) -> None:
    """Redis unreachable but its data intact (a network blip): no stale answer afterwards."""
    link = _link(private_redis.url, redis_prefix, retry=0.05)
    cache = StatsCache(RedisStore(link), default_ttl=60)
    answer = 1

    async def compute() -> int:
        return answer

    try:
        assert await cached(cache, "n", "k", int, compute, chat_id=5) == 1
        good_client = link.client
        link.client = _unreachable_client()  # only this process loses Redis
        answer = 2
        await cache.bump_data_version([5])
        assert await cached(cache, "n", "k", int, compute, chat_id=5) == 2
        await link.client.aclose()
        link.client = good_client
        await asyncio.sleep(0.06)
        assert await cached(cache, "n", "k", int, compute, chat_id=5) == 2
    finally:
        await link.close()


def _unreachable_client() -> Any:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # Port 1 on loopback: connection refused at once (and no retrying with backoff).
    return aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )


async def test_recent_version_is_a_bounded_local_copy(redis_url: str, redis_prefix: str) -> None:
    """Copies are kept only while bumps are followed, and never past ``version_max_age``."""
    prefix = f"{redis_prefix}recent-version:"
    reader_link, writer_link = _link(redis_url, prefix), _link(redis_url, prefix)
    reader = StatsCache(RedisStore(reader_link), default_ttl=60, version_max_age=0.2)
    writer = StatsCache(RedisStore(writer_link), default_ttl=60)
    try:
        # Not following the announcements: every call is an exact read.
        assert await reader.recent_version(7) == 0
        await writer.bump_data_version([7])
        assert await reader.recent_version(7) == 1
        reader.follow_bumps(True)  # as if subscribed, but nothing will announce here
        assert await reader.recent_version(7) == 1
        await writer_link.client.incr(writer_link.key("dv", 7))  # a bump nobody announced
        assert await reader.recent_version(7) == 1  # the copy, younger than 0.2 s
        await asyncio.sleep(0.25)
        assert await reader.recent_version(7) == 2  # ... but never older than that
        await reader.bump_data_version([7])  # its own bump drops its copy
        assert await reader.recent_version(7) == 3
        # Versions going backwards (Redis restarted empty) raise the epoch.
        epoch = reader.epoch
        await writer_link.client.delete(writer_link.key("dv", 7))
        await asyncio.sleep(0.25)
        assert await reader.recent_version(7) == 0
        assert reader.epoch == epoch + 1
        # In-process (max age 0) it is always the exact version.
        memory = StatsCache(MemoryStore(10), default_ttl=60)
        await memory.bump_data_version([7])
        assert await memory.recent_version(7) == 1
    finally:
        await writer_link.client.delete(writer_link.key("dv", 7))
        await reader_link.close()
        await writer_link.close()


async def test_another_process_bump_shows_at_once_through_the_feed(
    redis_url: str, redis_prefix: str
) -> None:
    """With the feed, a copy is dropped when another process announces its bump."""
    prefix = f"{redis_prefix}version-feed:"
    reader_link, writer_link = _link(redis_url, prefix), _link(redis_url, prefix)
    store = RedisStore(reader_link)
    # A max age of an hour: only the announcement can make the reader see the bump.
    reader = StatsCache(store, default_ttl=60, version_max_age=3600)
    writer = StatsCache(RedisStore(writer_link), default_ttl=60)
    stop = asyncio.Event()
    feed = asyncio.create_task(
        follow_version_bumps(reader, redis_url, store.bumps_channel, stop=stop)
    )
    try:
        for _ in range(100):
            if reader.following_bumps:
                break
            await asyncio.sleep(0.02)
        assert reader.following_bumps
        epoch = reader.epoch
        assert await reader.recent_version(8) == 0
        await writer_link.client.incr(writer_link.key("dv", 8))  # not announced: copy kept
        assert await reader.recent_version(8) == 0
        await writer.bump_data_version([8])  # announced
        seen = 0
        for _ in range(100):
            seen = await reader.recent_version(8)
            if seen == 2:
                break
            await asyncio.sleep(0.01)
        assert seen == 2
        assert reader.epoch == epoch  # an announcement drops copies, not the epoch
    finally:
        stop.set()
        await asyncio.wait_for(feed, 5)
        await writer_link.client.delete(writer_link.key("dv", 8))
        await reader_link.close()
        await writer_link.close()
    # Stopped: no longer following, so copies are not trusted any more.
    assert not reader.following_bumps and reader.epoch > epoch


async def test_the_feed_stops_trusting_copies_when_redis_is_unreachable() -> None:
    cache = StatsCache(MemoryStore(10), default_ttl=60, version_max_age=3600)
    cache.follow_bumps(True)
    stop = asyncio.Event()
    feed = asyncio.create_task(
        follow_version_bumps(
            cache, "redis://127.0.0.1:1/0", "x", connect_timeout=0.2, retry_after=0.05, stop=stop
        )
    )
    try:
        for _ in range(100):
            if not cache.following_bumps:
                break
            await asyncio.sleep(0.02)
        assert not cache.following_bumps
    finally:
        stop.set()
        await asyncio.wait_for(feed, 5)
