"""The ``ratelimit`` plugin: provides the ``RateLimiter`` service (DI key ``rate_limiter``).

Redis when ``REDIS_URL`` is set (one budget shared by every replica), in-process
otherwise. Bot commands call it per chat and user::

    result = await rate_limiter.hit(
        f"cmd:{chat_id}:{user_id}",
        per_minute=settings.ratelimit.per_minute,
        per_hour=settings.ratelimit.per_hour,
    )
    if not result.allowed:
        ...  # one short notice, then silence until result.retry_after

The HTTP API limit and the failed-sign-in limit (``tgstats.web.security`` and
``tgstats.web.auth``) use the same service.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from tgstats.plugin_api import HealthCheck, Plugin
from tgstats.plugin_api.redis_link import RedisLink

from .limiter import MemoryRateLimiter, RedisRateLimiter, decide

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ["MemoryRateLimiter", "RateLimitPlugin", "RedisRateLimiter", "decide"]

log = logging.getLogger("tgstats.ratelimit")


class RateLimitPlugin(Plugin):
    """Sliding-window limits per minute and per hour."""

    provides = ("rate_limiter",)
    priority = 10

    limiter: MemoryRateLimiter | RedisRateLimiter | None = None
    link: RedisLink | None = None

    @asynccontextmanager
    async def lifespan(self, *, app: Litestar) -> AsyncIterator[None]:
        redis_settings = self.settings.redis
        if redis_settings.url is not None:
            self.link = RedisLink.from_settings(
                redis_settings,
                name="rate limiter (in-process limits meanwhile)",
                metrics=self.services.get("metrics"),
            )
            self.limiter = RedisRateLimiter(self.link)
        else:
            self.limiter = MemoryRateLimiter()
        self.services.register("rate_limiter", self.limiter)
        log.info("rate limiter: %s", "redis" if self.link is not None else "in-process")
        try:
            yield
        finally:
            self.services.unregister("rate_limiter")
            if self.link is not None:
                await self.link.close()
            self.limiter = self.link = None

    async def health(self) -> HealthCheck | None:
        if self.limiter is None:
            return None
        if self.link is None:
            return HealthCheck("rate_limiter", ok=True, detail="in-process")
        if await self.link.ping():
            return HealthCheck("rate_limiter", ok=True, detail="redis")
        return HealthCheck(
            "rate_limiter", ok=False, degraded=True, detail="redis unreachable; in-process limits"
        )
