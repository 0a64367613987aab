"""Which write failures are the database's fault (retry) and which are the batch's (bisect).

A connection lost, a server restarting, too many connections or a
serialization failure say nothing about the events: the whole batch is kept
and retried with backoff. Anything else (a value PostgreSQL rejects, a bug
tripped by one odd event) is blamed on the batch, which is bisected until the
one poison event is found and dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg

__all__ = ["ConcurrentWrite", "describe_error", "is_transient"]

# SQLSTATE classes: 08 connection exception, 53 insufficient resources,
# 57 operator intervention (admin shutdown, cannot connect now), 58 system error,
# 40 transaction rollback (serialization failure, deadlock). Also the classes that
# mean the schema or server is not what the code expects (42 undefined table or
# column, 0A unsupported, 25 transaction state, 55 object state, XX internal): no
# event is to blame, and dropping events one by one would lose the whole stream.
_TRANSIENT_SQLSTATE_CLASSES = frozenset(
    {"08", "53", "57", "58", "40", "42", "0A", "25", "55", "XX"}
)


class ConcurrentWrite(RuntimeError):
    """Another writer inserted some of this batch's rows meanwhile: retry the batch."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's ``orig``) and its causes."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(nested, BaseException):
                stack.append(nested)


def is_transient(exc: BaseException) -> bool:
    """True when the failure is the database's (retry the batch), not the data's (bisect)."""
    for item in _chain(exc):
        if isinstance(item, ConcurrentWrite):
            return True
        if isinstance(item, asyncpg.exceptions._base.DataError):
            return False  # a value asyncpg could not encode: the batch's fault
        if isinstance(item, (OSError, ConnectionError, asyncio.TimeoutError, TimeoutError)):
            return True
        if isinstance(item, asyncpg.PostgresError):
            sqlstate = getattr(item, "sqlstate", None) or ""
            if sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES:
                return True
        if isinstance(item, asyncpg.InterfaceError) and (
            "connection" in str(item).lower() or "closed" in str(item).lower()
        ):
            return True
        if getattr(item, "connection_invalidated", False):
            return True
    return False


def describe_error(exc: BaseException) -> str:
    """A short description for logs and ``/health/ready``: the type and SQLSTATE, no values."""
    for item in _chain(exc):
        sqlstate = getattr(item, "sqlstate", None)
        if isinstance(item, asyncpg.PostgresError) and sqlstate:
            return f"{type(item).__name__} (SQLSTATE {sqlstate})"
    root = exc
    for item in _chain(exc):
        root = item
        if isinstance(item, (OSError, asyncpg.InterfaceError)):
            break
    return type(root).__name__
