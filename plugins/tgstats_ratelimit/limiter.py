"""The one rate limiter: an exact sliding-window log over a minute and an hour.

Every admitted request is remembered with its time for an hour. A request is
admitted when fewer than ``per_minute`` admitted requests fall in the last 60
seconds and fewer than ``per_hour`` in the last 3600 seconds; refused requests
are not recorded, so a client hammering a closed window does not extend it.
Unlike a fixed window or GCRA, no window of 60 s (or 3600 s) anywhere in time
ever holds more than the limit. A limit of 0 means no limit for that window.

Two stores keep the log: a dict of sorted lists in this process, or a Redis
sorted set per key updated by one Lua script (atomic across replicas, clocked
by the Redis server so replicas' clocks do not matter). When Redis is down the
Redis limiter answers from its in-process log and says so once (``RedisLink``).

Batches (Redis only, high limits only): with a limit of ``LEASE_DIVISOR`` x 2
or more (200/min; the API default of 120/min is exact) a process takes up to
``limit // LEASE_DIVISOR`` admissions at once (at most ``LEASE_MAX``), all
recorded in Redis at the time they are taken, and hands them out locally for
up to ``LEASE_SECONDS``; what is left then expires unused. Each process holds
one batch per key at a time. So, with ``P`` processes and batch size ``B``:
no window ever admits more than ``limit + P x (B - 1)`` (at most 1% over the
limit per process), and a client may be refused up to ``P x (B - 1)`` early
while unused batches are still counted. ``peek`` is always exact.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from tgstats.plugin_api import RateLimitResult
from tgstats.plugin_api.redis_link import RedisLink, RedisUnavailable

__all__ = [
    "HOUR",
    "MAX_KEYS",
    "MINUTE",
    "MemoryRateLimiter",
    "RedisRateLimiter",
    "WindowState",
    "decide",
]

MINUTE = 60.0
HOUR = 3600.0
_SWEEP_EVERY = 60.0
#: Keys the in-process log keeps at most (each holds at most its hourly limit of times).
MAX_KEYS = 50_000
_MAX_LEASES = 10_000
LEASE_DIVISOR = 100
LEASE_MAX = 100
LEASE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class WindowState:
    """One window's view of the log just before this request (times in seconds)."""

    limit: int
    seconds: float
    count: int
    oldest: float | None  # the oldest admitted time inside the window
    unblocking: float | None  # the admitted time whose expiry makes room for one more


def decide(now: float, windows: tuple[WindowState, ...], *, allowed: bool) -> RateLimitResult:
    """Turn the windows' counts into the caller's answer (shared by both stores)."""
    active = [w for w in windows if w.limit > 0]
    if not active:
        return RateLimitResult(allowed=True, limit=0, remaining=0, reset_after=0.0)
    added = 1 if allowed else 0

    def remaining(w: WindowState) -> int:
        return max(w.limit - w.count - added, 0)

    # Report the window closest to its limit; on a tie the shorter one.
    binding = min(active, key=lambda w: (remaining(w), w.seconds))
    oldest = binding.oldest if binding.oldest is not None else (now if allowed else None)
    reset_after = max(oldest + binding.seconds - now, 0.0) if oldest is not None else 0.0
    retry_after = 0.0
    if not allowed:
        retry_after = max(
            (
                w.unblocking + w.seconds - now
                for w in active
                if w.count >= w.limit and w.unblocking is not None
            ),
            default=1.0,  # unreachable with a consistent log; never a crash
        )
        retry_after = max(retry_after, 0.0)
    return RateLimitResult(
        allowed=allowed,
        limit=binding.limit,
        remaining=remaining(binding),
        reset_after=reset_after,
        retry_after=retry_after,
    )


class MemoryRateLimiter:
    """Implements ``RateLimiter`` for one process. Old entries and idle keys are swept.

    At most ``max_keys`` keys are kept: past that, idle keys are swept at once and
    then the least recently admitted ones are forgotten (a forgotten key starts
    afresh, which favours a flood of new keys over memory, never the other way).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, max_keys: int = MAX_KEYS
    ) -> None:
        self._clock = clock
        self._logs: dict[str, list[float]] = {}
        self._next_sweep = clock() + _SWEEP_EVERY
        self.max_keys = max_keys

    def __len__(self) -> int:
        return len(self._logs)

    async def hit(self, key: str, *, per_minute: int, per_hour: int) -> RateLimitResult:
        return self.check(key, per_minute=per_minute, per_hour=per_hour, record=True)

    async def peek(self, key: str, *, per_minute: int, per_hour: int) -> RateLimitResult:
        return self.check(key, per_minute=per_minute, per_hour=per_hour, record=False)

    def check(self, key: str, *, per_minute: int, per_hour: int, record: bool) -> RateLimitResult:
        """Synchronous on purpose: with no await inside, it is atomic on the event loop."""
        now = self._clock()
        if now >= self._next_sweep:
            self.sweep(now)
        log = self._logs.pop(key, None)  # re-inserted below: the dict keeps recent use last
        if log is None:
            log = []
            if record and len(self._logs) >= self.max_keys:
                self._make_room(now)
        if record or log:
            self._logs[key] = log
        expired = bisect_right(log, now - HOUR)
        if expired:
            del log[:expired]
        windows = (
            _window(log, now, per_minute, MINUTE),
            _window(log, now, per_hour, HOUR),
        )
        allowed = all(w.limit <= 0 or w.count < w.limit for w in windows)
        if allowed and record and (per_minute > 0 or per_hour > 0):
            log.append(now)
        elif not log:
            self._logs.pop(key, None)
        return decide(now, windows, allowed=allowed)

    def _make_room(self, now: float) -> None:
        self.sweep(now)
        while len(self._logs) >= self.max_keys:
            del self._logs[next(iter(self._logs))]

    def sweep(self, now: float | None = None) -> None:
        """Forget keys with nothing admitted in the last hour."""
        now = self._clock() if now is None else now
        self._next_sweep = now + _SWEEP_EVERY
        horizon = now - HOUR
        for key in [k for k, log in self._logs.items() if not log or log[-1] <= horizon]:
            del self._logs[key]


def _window(log: list[float], now: float, limit: int, seconds: float) -> WindowState:
    first = bisect_right(log, now - seconds)
    count = len(log) - first
    if limit <= 0 or count == 0:
        return WindowState(limit, seconds, count, log[first] if count else None, None)
    unblocking = log[first + count - limit] if count >= limit else None
    return WindowState(limit, seconds, count, log[first], unblocking)


# KEYS[1]: the log. ARGV: per_minute, per_hour, how many to record (0: peek), a unique
# member suffix. Records as many as both windows have room for (none when refused).
# Times are integer microseconds from the Redis clock; '%.0f' keeps them exact in strings.
_LUA = """
local key = KEYS[1]
local per_minute = tonumber(ARGV[1])
local per_hour = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local minute, hour = 60000000, 3600000000
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now - hour))
local minute_floor = '(' .. string.format('%.0f', now - minute)
local hour_count = redis.call('ZCARD', key)
local minute_count = redis.call('ZCOUNT', key, minute_floor, '+inf')
local allowed = 1
if per_minute > 0 and minute_count >= per_minute then allowed = 0 end
if per_hour > 0 and hour_count >= per_hour then allowed = 0 end
local function nth_in_minute(n)
  local r = redis.call('ZRANGEBYSCORE', key, minute_floor, '+inf', 'WITHSCORES', 'LIMIT', n, 1)
  if r[2] then return r[2] end
  return false
end
local function nth_in_hour(n)
  local r = redis.call('ZRANGE', key, n, n, 'WITHSCORES')
  if r[2] then return r[2] end
  return false
end
local m_oldest, m_unblock, h_oldest, h_unblock = false, false, false, false
if minute_count > 0 then m_oldest = nth_in_minute(0) end
if per_minute > 0 and minute_count >= per_minute then
  m_unblock = nth_in_minute(minute_count - per_minute)
end
if hour_count > 0 then h_oldest = nth_in_hour(0) end
if per_hour > 0 and hour_count >= per_hour then h_unblock = nth_in_hour(hour_count - per_hour) end
local granted = 0
if allowed == 1 and want > 0 and (per_minute > 0 or per_hour > 0) then
  granted = want
  if per_minute > 0 then granted = math.min(granted, per_minute - minute_count) end
  if per_hour > 0 then granted = math.min(granted, per_hour - hour_count) end
  local stamp = string.format('%.0f', now) .. '-' .. ARGV[4]
  for i = 1, granted do redis.call('ZADD', key, now, stamp .. '-' .. i) end
  redis.call('PEXPIRE', key, 3600000)
end
return {allowed, minute_count, hour_count, string.format('%.0f', now),
        m_oldest, m_unblock, h_oldest, h_unblock, granted}
"""


def _micros(value: bytes | str | None) -> float | None:
    return None if value is None else float(value) / 1_000_000


class _Lease:
    """Admissions taken from Redis in one batch, handed out here (see the module docstring)."""

    __slots__ = ("first", "left", "taken_at", "used")

    def __init__(self, first: RateLimitResult, left: int, taken_at: float) -> None:
        self.first = first
        self.left = left
        self.taken_at = taken_at
        self.used = 0

    def take(self, now: float) -> RateLimitResult | None:
        if self.left <= 0 or now - self.taken_at >= LEASE_SECONDS:
            return None
        self.left -= 1
        self.used += 1
        first = self.first
        return RateLimitResult(
            allowed=True,
            limit=first.limit,
            remaining=max(first.remaining - self.used, 0),
            reset_after=max(first.reset_after - (now - self.taken_at), 0.0),
        )


def lease_size(per_minute: int, per_hour: int) -> int:
    """How many admissions one Redis round trip takes for these limits (1: exact)."""
    limits = [limit for limit in (per_minute, per_hour) if limit > 0]
    if not limits:
        return 1
    return max(1, min(min(limits) // LEASE_DIVISOR, LEASE_MAX))


class RedisRateLimiter:
    """Implements ``RateLimiter`` over Redis for every replica; in-process during an outage."""

    def __init__(
        self,
        link: RedisLink,
        fallback: MemoryRateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.fallback = fallback or MemoryRateLimiter()
        self._script = link.client.register_script(_LUA)
        self._clock = clock
        self._leases: dict[tuple[str, int, int], _Lease] = {}
        self._taking: dict[tuple[str, int, int], asyncio.Future[None]] = {}

    async def hit(self, key: str, *, per_minute: int, per_hour: int) -> RateLimitResult:
        batch = lease_size(per_minute, per_hour)
        if batch <= 1:
            return await self._check(key, per_minute, per_hour, record=1)
        lease_key = (key, per_minute, per_hour)
        while True:
            lease = self._leases.get(lease_key)
            if lease is not None:
                result = lease.take(self._clock())
                if result is not None:
                    return result
            taking = self._taking.get(lease_key)
            if taking is None:
                break
            await asyncio.shield(taking)  # one batch per key at a time, then try again
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._taking[lease_key] = done
        try:
            return await self._take_batch(key, lease_key, per_minute, per_hour, batch)
        finally:
            del self._taking[lease_key]
            done.set_result(None)

    async def _take_batch(
        self,
        key: str,
        lease_key: tuple[str, int, int],
        per_minute: int,
        per_hour: int,
        batch: int,
    ) -> RateLimitResult:
        self._leases.pop(lease_key, None)
        if len(self._leases) >= _MAX_LEASES:
            now = self._clock()
            for stale in [k for k, v in self._leases.items() if now - v.taken_at >= LEASE_SECONDS]:
                del self._leases[stale]
        taken_at = self._clock()
        result, granted = await self._call(key, per_minute, per_hour, batch)
        if granted > 1:
            self._leases[lease_key] = _Lease(result, granted - 1, taken_at)
        return result

    async def peek(self, key: str, *, per_minute: int, per_hour: int) -> RateLimitResult:
        return await self._check(key, per_minute, per_hour, record=0)

    async def _check(
        self, key: str, per_minute: int, per_hour: int, *, record: int
    ) -> RateLimitResult:
        return (await self._call(key, per_minute, per_hour, record))[0]

    async def _call(
        self, key: str, per_minute: int, per_hour: int, record: int
    ) -> tuple[RateLimitResult, int]:
        """One script run recording up to ``record`` admissions: (result, how many recorded)."""
        args: list[int | str] = [per_minute, per_hour, record, secrets.token_hex(6)]
        redis_key = self.link.key("rl", key)
        try:
            reply = await self.link.call(lambda r: self._script(keys=[redis_key], args=args))
        except RedisUnavailable:
            result = self.fallback.check(
                key, per_minute=per_minute, per_hour=per_hour, record=record > 0
            )
            return result, 0
        allowed, minute_count, hour_count, now_raw, m_old, m_unb, h_old, h_unb, granted = (
            list(reply) + [None] * 9
        )[:9]
        now = float(now_raw) / 1_000_000
        windows = (
            WindowState(per_minute, MINUTE, int(minute_count), _micros(m_old), _micros(m_unb)),
            WindowState(per_hour, HOUR, int(hour_count), _micros(h_old), _micros(h_unb)),
        )
        return decide(now, windows, allowed=bool(allowed)), int(granted or 0)
