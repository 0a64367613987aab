"""Where cached bytes live: an in-process LRU or Redis. Both hold msgpack bytes, never objects.

Storing encoded bytes in-process too means a caller can never mutate a cached
value, and both backends behave the same way (a test runs against each).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from tgstats.plugin_api.redis_link import RedisLink, RedisUnavailable

__all__ = ["MemoryStore", "RedisStore", "Store", "StoreUnavailable"]


class StoreUnavailable(RuntimeError):
    """The backend cannot answer now; the cache treats this as a miss."""


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: int) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def version(self, chat_id: int) -> int: ...

    async def get_versioned(
        self, chat_id: int, before: str, after: str
    ) -> tuple[int, bytes | None]:
        """The chat's version ``v`` and the value at ``before + str(v) + after``, together."""
        ...

    async def bump_versions(self, chat_ids: Sequence[int]) -> None: ...


#: Chats per version-bump round trip to Redis.
BUMP_CHUNK = 1000


class MemoryStore:
    """A size-bounded LRU with per-entry expiry, for a single process."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._versions: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def version(self, chat_id: int) -> int:
        return self._versions.get(chat_id, 0)

    async def get_versioned(
        self, chat_id: int, before: str, after: str
    ) -> tuple[int, bytes | None]:
        version = self._versions.get(chat_id, 0)
        return version, await self.get(f"{before}{version}{after}")

    async def bump_versions(self, chat_ids: Sequence[int]) -> None:
        for chat_id in set(chat_ids):
            self._versions[chat_id] = self._versions.get(chat_id, 0) + 1


# The version and the value it selects in one round trip. The value's key is
# built in the script, so this is not Redis Cluster safe (tgstats uses one Redis).
_GET_VERSIONED = """
local version = redis.call('GET', KEYS[1]) or '0'
return {version, redis.call('GET', ARGV[1] .. version .. ARGV[2])}
"""


class RedisStore:
    """Redis, shared by every replica. Versions: ``INCR`` counters at ``<prefix>dv:<chat>``."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._get_versioned = link.client.register_script(_GET_VERSIONED)

    def _key(self, key: str) -> str:
        return self.link.key("cache", key)

    def _version_key(self, chat_id: int) -> str:
        return self.link.key("dv", chat_id)

    async def get(self, key: str) -> bytes | None:
        full = self._key(key)
        try:
            value: bytes | None = await self.link.call(lambda r: r.get(full))  # type: ignore[arg-type, return-value]
        except RedisUnavailable as exc:
            raise StoreUnavailable(str(exc)) from None
        return value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        full = self._key(key)
        try:
            await self.link.call(lambda r: r.set(full, value, ex=max(ttl, 1)))
        except RedisUnavailable as exc:
            raise StoreUnavailable(str(exc)) from None

    async def delete(self, key: str) -> None:
        full = self._key(key)
        try:
            await self.link.call(lambda r: r.delete(full))
        except RedisUnavailable as exc:
            raise StoreUnavailable(str(exc)) from None

    async def version(self, chat_id: int) -> int:
        key = self._version_key(chat_id)
        try:
            raw = await self.link.call(lambda r: r.get(key))
        except RedisUnavailable as exc:
            raise StoreUnavailable(str(exc)) from None
        return int(raw) if raw is not None else 0

    async def get_versioned(
        self, chat_id: int, before: str, after: str
    ) -> tuple[int, bytes | None]:
        keys = [self._version_key(chat_id)]
        args = [self._key(before), after]
        try:
            version, value = await self.link.call(
                lambda r: self._get_versioned(keys=keys, args=args)
            )
        except RedisUnavailable as exc:
            raise StoreUnavailable(str(exc)) from None
        return int(version), value

    @property
    def bumps_channel(self) -> str:
        """Pub/sub channel announcing bumped chats (``version_feed``): ``1,2,3``."""
        return self.link.key("dv-bumps")

    async def bump_versions(self, chat_ids: Sequence[int]) -> None:
        """``INCR`` each chat's version and announce them, ``BUMP_CHUNK`` chats per round
        trip (a bump of many chats never builds one huge pipeline or message). A chunk
        that fails leaves the caller to bump again: a version bumped twice is still new."""
        chats = sorted(set(chat_ids))
        for start in range(0, len(chats), BUMP_CHUNK):
            await self._bump_chunk(chats[start : start + BUMP_CHUNK])

    async def _bump_chunk(self, chats: Sequence[int]) -> None:
        keys = [self._version_key(c) for c in chats]
        announcement = ",".join(map(str, chats))

        async def incr_all(r: object) -> None:
            pipe = self.link.client.pipeline(transaction=False)
            for key in keys:
                pipe.incr(key)
            # After the INCRs on the same connection: a process that hears of the bump
            # and reads the version again reads the new one.
            pipe.publish(self.bumps_channel, announcement)
            await pipe.execute()

        try:
            await self.link.call(incr_all)
        except RedisUnavailable as exc:
            raise StoreUnavailable(str(exc)) from None
