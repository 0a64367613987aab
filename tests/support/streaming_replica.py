"""A throwaway PostgreSQL primary and a streaming replica of it, on free loopback ports.

The primary is made with ``initdb`` (``wal_level=replica``, a ``replication`` line in
``pg_hba.conf``), the replica with ``pg_basebackup -R`` from it (``standby.signal`` and
``primary_conninfo`` written for it), both started with ``pg_ctl`` and removed afterwards.
PostgreSQL refuses to run as root: as root, every command runs as the ``postgres`` user
(``runuser``). The binaries are PostgreSQL's own (``TGSTATS_PG_BIN``, default Debian's
PostgreSQL 15).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("TGSTATS_PG_BIN", "/usr/lib/postgresql/15/bin"))
_SETTINGS = (
    "listen_addresses = '127.0.0.1'",
    "wal_level = replica",
    "max_wal_senders = 4",
    "hot_standby = on",
    # Throwaway servers: no fsync, small memory.
    "fsync = off",
    "full_page_writes = off",
    "shared_buffers = 32MB",
    "max_connections = 60",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StreamingPair:
    """``start()`` makes and starts both servers; ``stop()`` stops and deletes them."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tgstats-replica-"))
        self.primary_dir = self.root / "primary"
        self.replica_dir = self.root / "replica"
        self.primary_port = _free_port()
        self.replica_port = _free_port()
        self._as_postgres = os.geteuid() == 0
        self._started: list[Path] = []

    def url(self, which: str, database: str = "postgres") -> str:
        port = self.primary_port if which == "primary" else self.replica_port
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> str:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(args[:3])} exited {result.returncode}:\n"
                                 f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")  # fmt: skip
        return result.stdout

    def _pg_ctl_start(self, data_dir: Path, port: int) -> None:
        log = self.root / f"{data_dir.name}.log"
        self._run(
            "pg_ctl", "-D", str(data_dir), "-l", str(log), "-w", "-t", "60",
            "-o", f"-p {port} -k {self.root}", "start",
        )  # fmt: skip
        self._started.append(data_dir)

    def start(self) -> StreamingPair:
        assert (PG_BIN / "initdb").exists(), f"no PostgreSQL binaries in {PG_BIN}"
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        self._run(
            "initdb", "-D", str(self.primary_dir), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        with (self.primary_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(_SETTINGS) + "\n")
        with (self.primary_dir / "pg_hba.conf").open("a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        self._pg_ctl_start(self.primary_dir, self.primary_port)
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            "-D", str(self.replica_dir), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
        )  # fmt: skip
        self._pg_ctl_start(self.replica_dir, self.replica_port)
        return self

    def stop(self) -> None:
        for data_dir in reversed(self._started):
            try:
                self._run("pg_ctl", "-D", str(data_dir), "-m", "immediate", "-w", "stop")
            except AssertionError:
                pass
        self._started.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self, which: str) -> str:
        path = self.root / f"{which}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""
