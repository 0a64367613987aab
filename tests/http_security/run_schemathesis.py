"""Fuzz the HTTP API from its own OpenAPI schema with schemathesis, on seeded data.

Run by ``nox -s schemathesis`` (or directly with the project's Python). Steps:

1. a fresh database on the test PostgreSQL, migrated, seeded with the demo group;
2. the real app under granian on a free loopback port (the app's own process
   layout, auth, rate limiter and cache included; limits raised so the fuzzer
   is not throttled);
3. an auth sweep: every operation under ``/api/`` is called without
   credentials and with a wrong token and must answer 401 (or 429 once the
   failed-sign-in limit is reached): auth is enforced on every protected operation;
4. ``schemathesis run`` with the admin token and ``path.chat_id`` fixed to the
   seeded chat: no 5xx (``not_a_server_error``), status codes, content types
   and bodies conform to the schema. The schema states the input edges
   (``tgstats.web.openapi_errors``): bodies that refuse unknown fields say
   ``additionalProperties: false`` (the coverage phase then sends unknown
   fields), ``from``/``to`` are ``format: date`` (extreme dates such as
   9999-12-31 and 0001-01-01), and the stateful phase follows the links
   schemathesis infers between operations.

Exits non-zero on any finding. ``--max-examples`` bounds the run (default 25).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "schemathesis-admin-" + secrets.token_hex(8)
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _seeded_database(admin_url: str) -> tuple[str, str, int]:
    """(database name, async URL, seeded chat id)."""
    import asyncpg

    from tgstats.db.engine import open_database, run_migrations
    from tgstats.demo import DEMO_CHAT_ID, seed_demo
    from tgstats.settings import DatabaseSettings, Settings

    name = f"tgstats_fuzz_{os.getpid()}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = urlsplit(admin_url)._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    await run_migrations(url)
    database = open_database(url, DatabaseSettings(pool_size=2, max_overflow=2))
    try:
        settings = Settings.from_env({"DATABASE_URL": url, "ADMIN_API_TOKEN": ADMIN_TOKEN})
        await seed_demo(database.session_factory, settings=settings)
    finally:
        await database.dispose()
    return name, url, DEMO_CHAT_ID


async def _drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the app exited during startup")
        try:
            if _request(f"{base}/health/ready") == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("the app did not become ready")


def auth_sweep(base: str, chat_id: int) -> list[str]:
    """Every /api/ operation refuses requests without a valid credential."""
    with urllib.request.urlopen(f"{base}/schema/openapi.json", timeout=30) as response:
        schema = json.load(response)
    problems: list[str] = []
    operations = 0
    for path, item in sorted(schema.get("paths", {}).items()):
        if not path.startswith("/api/"):
            continue
        concrete = re.sub(r"\{chat_id\}", str(chat_id), path)
        concrete = re.sub(r"\{[^}]+\}", "1", concrete)
        for method in item:
            if method.lower() not in {"get", "post", "put", "patch", "delete"}:
                continue
            operations += 1
            for label, headers in (("no credential", {}), ("a wrong token", {"X-API-Token": "x"})):
                status = _request(base + concrete, method.upper(), headers)
                if status not in (401, 429):
                    problems.append(f"{method.upper()} {path} with {label}: {status}, not 401")
    print(f"auth sweep: {operations} protected operations checked")
    if operations == 0:
        problems.append("the schema lists no /api/ operation")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()
    admin_url = os.environ.get("TGSTATS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    name, database_url, chat_id = asyncio.run(_seeded_database(admin_url))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
        "TGSTATS_ROLE": "web",
        "API_RATE_LIMIT_PER_MINUTE": "1000000",
        "API_RATE_LIMIT_PER_HOUR": "10000000",
        "AUTH_FAILURES_PER_MINUTE": "1000000",
        "LOG_LEVEL": "WARNING",
    }
    log = tempfile.NamedTemporaryFile(prefix="schemathesis-app-", suffix=".log", delete=False)
    server = subprocess.Popen(
        [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "tgstats.app:app_from_env",
        ],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_ready(base, server)
        problems = auth_sweep(base, chat_id)
        for problem in problems:
            print("AUTH:", problem)
        config = Path(tempfile.mkdtemp()) / "schemathesis.toml"
        config.write_text(f'[parameters]\n"path.chat_id" = {chat_id}\n', encoding="utf-8")
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
            f"{base}/schema/openapi.json",
            "--checks", CHECKS,
            "--header", f"X-API-Token: {ADMIN_TOKEN}",
            "--max-examples", str(args.max_examples),
            "--seed", str(args.seed),
            "--workers", "1",
            "--request-timeout", "30",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--suppress-health-check", "all",
        ]  # fmt: skip
        fuzz = subprocess.run(command, cwd=ROOT, check=False)
        failed = bool(problems) or fuzz.returncode != 0
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        asyncio.run(_drop_database(admin_url, name))
    if failed:
        print(f"schemathesis: FAILED (app log: {log.name})")
        return 1
    print("schemathesis: no findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
