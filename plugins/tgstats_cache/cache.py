"""``StatsCache``: the one ``Cache`` implementation, over an LRU or Redis store.

Values are msgpack-encoded with msgspec and decoded into the type the caller
asks for; a value that no longer decodes (a Struct changed between releases)
is a miss, never an error. Keys are ``<namespace>:<key>``; the Redis store adds
the ``REDIS_KEY_PREFIX``.

Freshness comes from per-chat data versions, not from the TTL: the writer
calls ``bump_data_version`` after every committed batch and stats keys carry
the version (see ``tgstats.plugin_api.cached``). When Redis is down a bump
cannot be recorded, so the chat ids are kept and written first thing once
Redis answers again (a background task retries every second); until then
``data_version`` answers ``-1`` ("unknown") and callers skip the cache, so an
answer is never older than the last commit.

``recent_version`` is the same version through a local copy (the HTTP response
cache, ``tgstats.web.response_cache``, reads it on every request). With Redis the copy
is kept only while this process follows the bump announcements
(``version_feed``): every bump is published right after its ``INCR`` and drops
the bumped chats' copies here, so another process's commit shows as soon as the
announcement arrives, as it would through a Redis read. Without the feed (not
started yet, or its connection lost) every call reads Redis. A copy is also
never older than ``version_max_age`` seconds, a bound should an announcement be
missed. The in-process store (max age 0) is always exact.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import msgspec

from tgstats.plugin_api import versioned_key

from .stores import Store, StoreUnavailable

__all__ = ["StatsCache"]

log = logging.getLogger("tgstats.cache")

T = TypeVar("T")

UNKNOWN_VERSION = -1
_MAX_RECENT_VERSIONS = 100_000


class StatsCache:
    """Implements ``tgstats.plugin_api.Cache``."""

    def __init__(
        self,
        store: Store,
        *,
        default_ttl: int,
        metrics: Any = None,
        metrics_interval: float = 0.0,
        version_max_age: float = 0.0,
    ) -> None:
        self.store = store
        self.default_ttl = default_ttl
        self.metrics = metrics
        # Hit/miss counts go to the (comparatively slow) OTel counter at most this often.
        self.metrics_interval = metrics_interval
        self._unreported: Counter[str] = Counter()
        self._reported_at = time.monotonic()
        self._encoder = msgspec.msgpack.Encoder()
        self._decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}
        self._pending_bumps: set[int] = set()
        self.version_max_age = version_max_age
        self._recent_versions: dict[int, tuple[int, float]] = {}
        self.following_bumps = False  # set by the version feed while it is subscribed
        self._invalidations = 0
        # Goes up when the store's versions went backwards (Redis restarted empty):
        # anything kept by version elsewhere in this process must be dropped then.
        self.epoch = 0

    def _count(self, result: str) -> None:
        if self.metrics is None:
            return
        self._unreported[result] += 1
        if time.monotonic() - self._reported_at >= self.metrics_interval:
            self.report_metrics()

    def count_hit(self) -> None:
        """Count a hit served from a layer above the cache (the HTTP response cache)."""
        self._count("hit")

    def report_metrics(self) -> None:
        """Hand the counts gathered since the last report to the metrics counter."""
        self._reported_at = time.monotonic()
        if self.metrics is None or not self._unreported:
            return
        counts, self._unreported = self._unreported, Counter()
        for result, amount in counts.items():
            self.metrics.cache_requests.add(amount, {"result": result})

    def _decoder(self, type_: Any) -> msgspec.msgpack.Decoder[Any]:
        decoder = self._decoders.get(type_)
        if decoder is None:
            decoder = self._decoders[type_] = msgspec.msgpack.Decoder(type_)
        return decoder

    @staticmethod
    def _full_key(namespace: str, key: str) -> str:
        if not namespace or ":" in namespace:
            raise ValueError(
                f"cache namespace must be a non-empty word without ':', got {namespace!r}"
            )
        return f"{namespace}:{key}"

    async def get(self, namespace: str, key: str, type_: type[T]) -> T | None:
        full = self._full_key(namespace, key)
        try:
            raw = await self.store.get(full)
        except StoreUnavailable:
            self._count("unavailable")
            return None
        return await self._decode(full, raw, type_)

    async def lookup(
        self, namespace: str, key: str, type_: type[T], *, chat_id: int
    ) -> tuple[int, T | None]:
        """The chat's data version and the value cached for ``key`` at it: one round trip.

        ``(-1, None)`` when the version cannot be known (see ``data_version``).
        """
        if self._pending_bumps and not await self.flush_pending_bumps():
            return UNKNOWN_VERSION, None
        # versioned_key(chat_id, v, key) == f"{chat_id}:v" + str(v) + f":{key}" (a test checks)
        try:
            version, raw = await self.store.get_versioned(
                chat_id, self._full_key(namespace, f"{chat_id}:v"), f":{key}"
            )
        except StoreUnavailable:
            self._count("unavailable")
            return UNKNOWN_VERSION, None
        full = self._full_key(namespace, versioned_key(chat_id, version, key))
        return version, await self._decode(full, raw, type_)

    async def _decode(self, full: str, raw: bytes | None, type_: type[T]) -> T | None:
        if raw is None:
            self._count("miss")
            return None
        try:
            value: T = self._decoder(type_).decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.info("cached value for %s no longer decodes as %s; dropped", full, type_)
            self._count("miss")
            await self._delete_quietly(full)
            return None
        self._count("hit")
        return value

    async def set(self, namespace: str, key: str, value: Any, *, ttl: int | None = None) -> None:
        full = self._full_key(namespace, key)
        raw = self._encoder.encode(value)
        try:
            await self.store.set(full, raw, self.default_ttl if ttl is None else ttl)
        except StoreUnavailable:
            pass  # the caller already has its value; the outage is logged by the link

    async def delete(self, namespace: str, key: str) -> None:
        await self._delete_quietly(self._full_key(namespace, key))

    async def _delete_quietly(self, full_key: str) -> None:
        try:
            await self.store.delete(full_key)
        except StoreUnavailable:
            pass

    async def data_version(self, chat_id: int) -> int:
        """The chat's data version, or ``-1`` when it cannot be known (skip the cache then)."""
        if self._pending_bumps and not await self.flush_pending_bumps():
            return UNKNOWN_VERSION
        try:
            return await self.store.version(chat_id)
        except StoreUnavailable:
            return UNKNOWN_VERSION

    def follow_bumps(self, following: bool) -> None:
        """The version feed (re)subscribed or lost its connection: start over either way."""
        self.following_bumps = following
        self.invalidate_versions(None)
        # Bumps may have been missed (or Redis restarted empty and versions went
        # backwards): what was kept by version elsewhere in this process goes too.
        self.epoch += 1

    def invalidate_versions(self, chat_ids: Iterable[int] | None) -> None:
        """Drop local copies of these chats' versions (all of them for ``None``)."""
        self._invalidations += 1
        if chat_ids is None:
            self._recent_versions.clear()
            return
        for chat_id in chat_ids:
            self._recent_versions.pop(chat_id, None)

    async def recent_version(self, chat_id: int) -> int:
        """``data_version`` through a local copy (see the module docstring)."""
        if self.version_max_age <= 0 or not self.following_bumps:
            return await self.data_version(chat_id)
        now = time.monotonic()
        copy = self._recent_versions.get(chat_id)
        if copy is not None and now - copy[1] < self.version_max_age and not self._pending_bumps:
            return copy[0]
        invalidations = self._invalidations
        version = await self.data_version(chat_id)  # the copy's age counts from before the read
        if version < 0:
            self._recent_versions.pop(chat_id, None)
            return version
        if invalidations != self._invalidations:
            return version  # a bump was announced during the read: this one may be older
        if copy is not None and version < copy[0]:
            self.epoch += 1
        if len(self._recent_versions) >= _MAX_RECENT_VERSIONS:
            self._recent_versions.clear()
        self._recent_versions[chat_id] = (version, now)
        return version

    async def bump_data_version(self, chat_ids: Sequence[int]) -> None:
        if not chat_ids:
            return
        for chat_id in chat_ids:
            self._recent_versions.pop(chat_id, None)
        self._pending_bumps.update(chat_ids)
        await self.flush_pending_bumps()

    async def flush_pending_bumps(self) -> bool:
        """Write the bumps an outage held back. True when none are left."""
        if not self._pending_bumps:
            return True
        chat_ids = sorted(self._pending_bumps)
        try:
            await self.store.bump_versions(chat_ids)
        except StoreUnavailable:
            return False
        self._pending_bumps.difference_update(chat_ids)
        return not self._pending_bumps

    @property
    def pending_bumps(self) -> int:
        return len(self._pending_bumps)
