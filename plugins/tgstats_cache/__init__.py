"""The ``cache`` plugin: provides the ``Cache`` service (DI key ``cache``).

Redis when ``REDIS_URL`` is set (shared by every replica), a size-bounded
in-process LRU otherwise. ``ENABLE_CACHE=false`` (or disabling the plugin)
leaves the service unregistered and the app computes every answer.

Stats code uses it through ``tgstats.plugin_api.cached``::

    summary = await cached(
        cache, "summary", f"{period.start}:{period.end}:{tz}", Summary,
        lambda: stats.summary(session, scope, period), chat_id=chat_id,
    )
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from tgstats.plugin_api import HealthCheck, Plugin
from tgstats.plugin_api.redis_link import RedisLink

from .cache import StatsCache
from .stores import MemoryStore, RedisStore
from .version_feed import follow_version_bumps

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = [
    "CachePlugin",
    "MemoryStore",
    "RedisStore",
    "RedisVersionBumper",
    "StatsCache",
    "build_cache",
]

log = logging.getLogger("tgstats.cache")

_BUMP_RETRY_SECONDS = 1.0
_METRICS_INTERVAL = 1.0  # seconds; hit/miss counters may lag /metrics by this much
# With Redis, the longest this process keeps a copy of a chat's data version for the
# HTTP response cache; bump announcements (version_feed) drop copies before that.
VERSION_MAX_AGE = 0.5


def build_cache(plugin: Plugin) -> tuple[StatsCache, RedisLink | None]:
    """The cache the settings ask for, and its Redis link when there is one."""
    settings = plugin.settings
    metrics = plugin.services.get("metrics")
    if settings.redis.url is not None:
        link = RedisLink.from_settings(settings.redis, name="cache", metrics=metrics)
        store: MemoryStore | RedisStore = RedisStore(link)
    else:
        store, link = MemoryStore(settings.cache.max_entries), None
    cache = StatsCache(
        store,
        default_ttl=settings.cache.ttl,
        metrics=metrics,
        metrics_interval=_METRICS_INTERVAL,
        version_max_age=VERSION_MAX_AGE if link is not None else 0.0,
    )
    return cache, link


class RedisVersionBumper:
    """Data-version bumps straight to Redis, for a process without the app."""

    def __init__(self, store: RedisStore, link: RedisLink) -> None:
        self._store = store
        self._link = link

    async def bump(self, chat_ids: Sequence[int]) -> None:
        await self._store.bump_versions(chat_ids)

    async def close(self) -> None:
        await self._link.close()


class CachePlugin(Plugin):
    """Stats result cache with per-chat data versions."""

    provides = ("cache",)
    priority = 10

    cache: StatsCache | None = None
    link: RedisLink | None = None

    @asynccontextmanager
    async def lifespan(self, *, app: Litestar) -> AsyncIterator[None]:
        if not self.settings.cache.enabled:
            log.info("cache disabled by ENABLE_CACHE; stats are computed on every request")
            yield
            return
        if self.settings.redis.url is None and self.settings.server.role != "all":
            # Data versions are bumped by the process that writes. A web-only or bot-only
            # process with an in-process cache would never see the other's bumps and serve
            # stale answers until the TTL, so without Redis it does not cache at all.
            log.warning(
                "cache off: TGSTATS_ROLE=%s needs REDIS_URL to share data versions with the "
                "writer; stats are computed on every request",
                self.settings.server.role,
            )
            yield
            return
        self.cache, self.link = build_cache(self)
        self.services.register("cache", self.cache)
        retry_task = asyncio.create_task(self._retry_held_bumps(), name="cache-bump-retry")
        feed_task = None
        feed_stop = asyncio.Event()
        if self.link is not None and self.settings.redis.url is not None:
            store = self.cache.store
            assert isinstance(store, RedisStore)
            feed_task = asyncio.create_task(
                follow_version_bumps(
                    self.cache,
                    self.settings.redis.url.get(),
                    store.bumps_channel,
                    connect_timeout=self.settings.redis.socket_timeout,
                    stop=feed_stop,
                ),
                name="cache-version-feed",
            )
        log.info("cache: %s", "redis" if self.link is not None else "in-process LRU")
        try:
            yield
        finally:
            self.services.unregister("cache")
            retry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retry_task
            if feed_task is not None:
                feed_stop.set()
                try:
                    await asyncio.wait_for(asyncio.shield(feed_task), 3)
                except Exception:
                    feed_task.cancel()
            self.cache.report_metrics()
            if self.link is not None:
                await self.link.close()
            self.cache = self.link = None

    def shared_version_bumper(self) -> RedisVersionBumper | None:
        """For ``tgstats import``, which writes from its own process: with a Redis cache,
        bump the versions there (the same keys and announcements a service writer uses).
        An in-process cache lives in the service's memory, out of reach."""
        if self.settings.redis.url is None or not self.settings.cache.enabled:
            return None
        link = RedisLink.from_settings(self.settings.redis, name="cache")
        return RedisVersionBumper(RedisStore(link), link)

    async def _retry_held_bumps(self) -> None:
        while True:
            await asyncio.sleep(_BUMP_RETRY_SECONDS)
            if self.cache is not None:
                self.cache.report_metrics()
                if self.cache.pending_bumps:
                    await self.cache.flush_pending_bumps()

    async def health(self) -> HealthCheck | None:
        if self.cache is None:
            return HealthCheck("cache", ok=True, detail="disabled")
        if self.link is None:
            return HealthCheck("cache", ok=True, detail="in-process LRU")
        if await self.link.ping():
            return HealthCheck("cache", ok=True, detail="redis")
        return HealthCheck(
            "cache", ok=False, degraded=True, detail="redis unreachable; serving uncached"
        )
