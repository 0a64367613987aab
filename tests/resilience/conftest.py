"""Fixtures of the resilience suite: private servers, the simulator plugin, a service factory.

The suite runs only when ``TGSTATS_RESILIENCE=1`` (``nox -s resilience`` sets
it): it starts real processes and takes a few minutes, so the default
``pytest`` run deselects it rather than run it twice. Each scenario records
one line (``report``) that is printed at the end of the run and written to
``test-artifacts/resilience.txt``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.resilience.processes import (
    REPO_ROOT,
    PrivatePostgres,
    PrivateRedis,
    ServiceProcess,
    service_env,
)
from tests.resilience.sim_plugin import write_simulator_distribution
from tests.support.opt_in_suite import deselect_unless, report_result_lines

ENABLED = os.environ.get("TGSTATS_RESILIENCE") == "1"
HERE = Path(__file__).parent
RESULT_LINES: list[str] = []
ADMIN_TOKEN = "resilience-admin-" + secrets.token_hex(8)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_unless(ENABLED, HERE, config, items)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    report_result_lines(terminalreporter, "resilience scenarios", RESULT_LINES, "resilience.txt")


@pytest.fixture
def report() -> Callable[[str, str, bool], None]:
    """``report(name, "did X; measured Y", passed)``: the scenario's one line."""

    def record(name: str, detail: str, passed: bool) -> None:
        line = f"[{'PASS' if passed else 'FAIL'}] {name}: {detail}"
        RESULT_LINES.append(line)
        print(line)

    return record


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    """Not under pytest's basetemp: parallel pytest runs prune each other's old basetemps,
    and the embedded PostgreSQL runs as another user (``pgserver``) when we are root."""
    path = Path(tempfile.mkdtemp(prefix="tgstats-resilience-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def private_postgres(work_dir: Path) -> Iterator[PrivatePostgres]:
    """PostgreSQL of the suite's own (Unix socket only): stopping it harms no one else."""
    server = PrivatePostgres(work_dir / "pg")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def private_redis(work_dir: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(work_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sim_path(work_dir: Path) -> Path:
    return write_simulator_distribution(work_dir / "sim-dist")


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"X-API-Token": ADMIN_TOKEN}


class Deployment:
    """One scenario's service: its database, its env, and the process (restartable)."""

    def __init__(self, pg: PrivatePostgres, database: str, env: dict[str, str], log: Path) -> None:
        self.pg = pg
        self.database = database
        self.env = env
        self.log = log
        self.service = ServiceProcess(env, log)

    @property
    def base_url(self) -> str:
        return self.service.base_url

    def client(self, timeout: float = 30) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def restart(self) -> None:
        port = self.service.port
        self.service = ServiceProcess(self.env, self.log)
        self.service.port, self.service.base_url = port, f"http://127.0.0.1:{port}"
        await self.service.start()


@pytest.fixture
def deploy(private_postgres: PrivatePostgres, sim_path: Path, work_dir: Path) -> Callable[..., Any]:
    """``async with deploy(redis_url=..., **env) as d``: a started service on a fresh database."""

    @asynccontextmanager
    async def start(*, redis_url: str | None = None, **env: str) -> AsyncIterator[Deployment]:
        database = await private_postgres.create_database()
        full_env = service_env(
            database_url=private_postgres.url(database),
            redis_url=redis_url,
            sim_path=sim_path,
            admin_token=ADMIN_TOKEN,
            **env,
        )
        logs = REPO_ROOT / "test-artifacts" / "resilience-logs"
        logs.mkdir(parents=True, exist_ok=True)
        deployment = Deployment(private_postgres, database, full_env, logs / f"{database}.log")
        await deployment.service.start()
        try:
            yield deployment
        finally:
            await deployment.service.stop()

    return start
