"""Which time zone names tgstats accepts: the IANA zones both Python and PostgreSQL know.

A chat's zone is used on both sides: Python (``zoneinfo``) turns instants into
local days at ingest, PostgreSQL (``AT TIME ZONE``) does it for raw-row
answers and the chat list. A name only one side knows breaks the other, so
every path that takes a zone (the settings API, ``/set_timezone``, ``?tz=``,
imports, ``DEFAULT_TIMEZONE``) checks it here with ``check_timezone``.

Accepted: names in Python's zone database that are IANA zone or link names.
Not accepted: the system files that are not zones (``localtime``,
``posixrules``, ``Factory``) and the ``posix/`` and ``right/`` trees (copies
of the database, ``right/`` with leap seconds, which PostgreSQL does not
read). Once the app (or the importer) has a database connection it calls
``learn_database_timezones``, and from then on only names also in the
server's ``pg_timezone_names`` pass: an older PostgreSQL without a new zone
refuses it before a chat stores it.

A zone already stored that no longer passes (hand-edited, or from before this
check) is read as ``effective_timezone`` says: the configured default.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from typing import Any

from sqlalchemy import text

__all__ = [
    "MAX_TIMEZONE_LENGTH",
    "accepted_timezones",
    "check_timezone",
    "effective_timezone",
    "is_accepted_timezone",
    "learn_database_timezones",
]

#: The longest IANA name is 32 characters; anything much longer is not a zone.
MAX_TIMEZONE_LENGTH = 64

_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_NOT_ZONE_TREES = ("posix/", "right/")

_database_zones: frozenset[str] | None = None


@lru_cache(maxsize=1)
def _python_zones() -> frozenset[str]:
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name not in _NOT_ZONES and not name.startswith(_NOT_ZONE_TREES)
    )


def accepted_timezones() -> frozenset[str]:
    """Every accepted name (Python's IANA names, narrowed to the database's once learned)."""
    python = _python_zones()
    return python & _database_zones if _database_zones is not None else python


def is_accepted_timezone(name: object) -> bool:
    return isinstance(name, str) and name in accepted_timezones()


def check_timezone(name: object) -> str:
    """``name`` if it is an accepted zone; else ``ValueError`` with a bounded, escaped echo."""
    if is_accepted_timezone(name):
        return str(name)
    shown = repr(name[:MAX_TIMEZONE_LENGTH]) if isinstance(name, str) else type(name).__name__
    raise ValueError(f"expected an IANA time zone like Europe/Berlin, got {shown}")


def effective_timezone(stored: str | None, default: str) -> str:
    """The zone a chat's days are counted in: its stored zone, or ``default`` if that fails."""
    if stored and is_accepted_timezone(stored):
        return stored
    return default if is_accepted_timezone(default) else "UTC"


async def learn_database_timezones(connection: Any) -> None:
    """Narrow the accepted names to those the database server knows too (one query).

    ``connection`` is a SQLAlchemy ``AsyncConnection`` or ``AsyncSession``. The set is
    process-wide: one process talks to one database.
    """
    global _database_zones
    result = await connection.execute(text("SELECT name FROM pg_timezone_names"))
    _database_zones = frozenset(row[0] for row in result)
