"""A Redis connection that degrades instead of failing: the shared piece of the cache and limiter.

``RedisLink`` owns one connection pool (bounded, short timeouts) and a circuit
breaker. Every operation goes through ``call``; when Redis is unreachable the
call raises ``RedisUnavailable`` at once, the outage is logged once (not once
per request) and counted in ``bot_errors_total{error_type="redis_unavailable"}``,
and the next attempt waits ``retry_interval`` seconds so that requests do not
each pay the socket timeout during an outage. The first call that succeeds
after an outage closes the breaker and logs the recovery::

    link = RedisLink.from_settings(settings.redis, name="cache", metrics=metrics)
    try:
        raw = await link.call(lambda r: r.get(link.key("cache", "summary", "42")))
    except RedisUnavailable:
        raw = None  # serve uncached
    ...
    await link.close()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from tgstats.settings import RedisSettings

__all__ = ["RedisLink", "RedisUnavailable"]

log = logging.getLogger("tgstats.redis")

T = TypeVar("T")


class RedisUnavailable(RuntimeError):
    """Redis could not answer (down, timed out, or the breaker is open)."""


class RedisLink:
    """One bounded Redis pool with a circuit breaker. See the module docstring."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        key_prefix: str,
        name: str,
        metrics: Any = None,
        retry_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self.name = name
        self.metrics = metrics
        self.retry_interval = retry_interval
        self._clock = clock
        self._down_since: float | None = None
        self._next_attempt = 0.0
        self.outages = 0

    @classmethod
    def from_settings(
        cls, settings: RedisSettings, *, name: str, metrics: Any = None, retry_interval: float = 1.0
    ) -> RedisLink:
        if settings.url is None:
            raise ValueError("RedisLink needs REDIS_URL")
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.url.get(),
            max_connections=settings.max_connections,
            # Waiting for a free pooled connection is bounded like any other operation.
            timeout=settings.socket_timeout,
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.socket_timeout,
            health_check_interval=30,
            # No retries with backoff or on timeouts: the breaker decides, so an outage
            # costs one failed attempt, not seconds of redis-py's own retrying. One
            # immediate retry on a connection error only: after Redis restarts, every
            # pooled connection is dead and fails once; the retry reconnects (during an
            # outage the refused connect fails fast).
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        client = aioredis.Redis(connection_pool=pool)
        return cls(
            client,
            key_prefix=settings.key_prefix,
            name=name,
            metrics=metrics,
            retry_interval=retry_interval,
        )

    def key(self, *parts: object) -> str:
        """A namespaced key: ``<prefix><part>:<part>...``."""
        return self.key_prefix + ":".join(str(p) for p in parts)

    async def call(self, operation: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """Run one operation; raise ``RedisUnavailable`` when Redis cannot answer."""
        if self._down_since is not None and self._clock() < self._next_attempt:
            raise RedisUnavailable(f"redis ({self.name}) unavailable")
        try:
            result = await operation(self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            self._mark_down(exc)
            raise RedisUnavailable(f"redis ({self.name}) unavailable") from exc
        if self._down_since is not None:
            log.warning(
                "Redis is reachable again; %s resumed after %.1f s",
                self.name,
                self._clock() - self._down_since,
            )
            self._down_since = None
        return result

    async def ping(self) -> bool:
        """True when Redis answers now (bypasses the breaker's wait, for health checks)."""
        self._next_attempt = 0.0
        try:
            await self.call(lambda r: r.ping())
        except RedisUnavailable:
            return False
        return True

    def _mark_down(self, exc: BaseException) -> None:
        now = self._clock()
        self._next_attempt = now + self.retry_interval
        if self._down_since is not None:
            return
        self._down_since = now
        self.outages += 1
        # The error class only: a connection error's text can carry the URL (and its password).
        log.error(
            "Redis unavailable (%s); %s continues without it until it returns",
            type(exc).__name__,
            self.name,
        )
        if self.metrics is not None:
            self.metrics.error("redis_unavailable")

    async def close(self) -> None:
        await self.client.aclose()
        await self.client.connection_pool.disconnect()
