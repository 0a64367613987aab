"""Following other processes' data-version bumps through Redis pub/sub.

Every bump is announced on ``RedisStore.bumps_channel`` right after its
``INCR``s. A process that keeps local copies of versions (``StatsCache.
recent_version``, used by the HTTP response cache) subscribes here; each
announcement drops the bumped chats' copies, so the next request reads the new
version. Pub/sub delivers nothing while a subscriber is disconnected, so the
cache trusts its copies only while the subscription stands: on any error it
stops (every request reads Redis again) and subscribes anew a second later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis

from .cache import StatsCache

__all__ = ["follow_version_bumps"]

log = logging.getLogger("tgstats.cache")


def _chat_ids(data: object) -> list[int]:
    if not isinstance(data, bytes | str):
        return []
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    ids = []
    for part in text.split(","):
        with contextlib.suppress(ValueError):
            ids.append(int(part))
    return ids


async def follow_version_bumps(
    cache: StatsCache,
    url: str,
    channel: str,
    *,
    connect_timeout: float = 2.0,
    retry_after: float = 1.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Keep ``cache`` told of every announced bump until ``stop`` is set (or cancelled).

    Stopping by the event is the clean way: redis-py's pub/sub read does not always
    let a cancellation through.
    """
    stop = stop or asyncio.Event()
    reported = False
    while not stop.is_set():
        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=connect_timeout, health_check_interval=5
        )
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            cache.follow_bumps(True)
            if reported:
                log.info("cache: following data-version bumps again")
                reported = False
            while not stop.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None and message.get("type") == "message":
                    ids = _chat_ids(message.get("data"))
                    # A malformed announcement is treated as "something changed".
                    cache.invalidate_versions(ids or None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not reported:
                log.warning(
                    "cache: not following data-version bumps (%s); reading versions from Redis",
                    type(exc).__name__,
                )
                reported = True
        finally:
            cache.follow_bumps(False)
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), retry_after)
