"""HTTP benchmark: a cached stats endpoint with auth, rate limiter and cache on, vs a bare endpoint.

Each server is granian with one worker on 127.0.0.1; the load generator is
``wrk`` (Debian package ``wrk``) on loopback, one thread, a fixed duration per
round, so every run is bounded. Configurations, measured in interleaved rounds:

- ``bare``: one Litestar endpoint returning the same JSON bytes (the ceiling);
- ``full-memory``: the whole tgstats app, in-process cache and limiter;
- ``full-redis``: the whole app with ``REDIS_URL`` (cache and limiter in Redis).

The endpoint is ``/api/v1/chats/{id}/summary`` when the app has it, else a
stand-in route using the same auth + cache stack (said in the output). The
rate limit is on with limits high enough that the benchmark is never refused:
every request still runs the limiter. The last output line is one JSON object
with ``bare_rps``, ``full_rps`` (the slower full configuration), ``full_vs_bare``
and ``full_p99_ms``.

    .venv/bin/python bench/http.py [--seconds 5] [--rounds 3] [--connections 32]

Needs PostgreSQL (``TGSTATS_BENCH_PG``, default the test server) and Redis
(``TGSTATS_BENCH_REDIS``, default redis://127.0.0.1:6379/0; a private key prefix
is used and deleted afterwards).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib ``http`` package: keep its folder off the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

ROOT = _HERE.parent
ADMIN_TOKEN = "bench-admin-" + secrets.token_hex(8)
CHAT_ID = -1009990001
STATS_PATH = "/api/v1/chats/{chat_id:int}/summary"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _prepare_database(admin_url: str) -> str:
    import asyncpg

    from tgstats.db.engine import run_migrations

    name = "tgstats_bench_http"
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(admin_url)
    url = parts._replace(path=f"/{name}").geturl()
    await run_migrations(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO chats (id, type, title) VALUES ($1, 'supergroup', 'bench') "
            "ON CONFLICT (id) DO NOTHING",
            CHAT_ID,
        )
    finally:
        await conn.close()
    return url


def _has_stats_route() -> bool:
    from bench.http_targets import full_app

    app = full_app()
    return any(route.path == STATS_PATH for route in app.routes)


class Server:
    def __init__(self, name: str, factory: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = _free_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--working-dir",
                str(ROOT),
                "--log-level",
                "warning",
                factory,
            ],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, path: str, timeout: float = 60.0) -> bytes:
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(self.url(path), headers={"X-API-Token": ADMIN_TOKEN})
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return bytes(response.read())
            except Exception as exc:
                last = exc
                time.sleep(0.2)
        self.stop()
        log = Path(self.log.name).read_text(errors="replace")[-3000:]
        raise SystemExit(f"{self.name} did not answer {path}: {last}\n{log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


_LAT = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def run_wrk(url: str, seconds: int, connections: int) -> tuple[float, float]:
    """(requests/s, p99 ms) from one bounded wrk run against a loopback URL."""
    assert url.startswith("http://127.0.0.1:"), "loopback only"
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "5s",
            "-H",
            f"X-API-Token: {ADMIN_TOKEN}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    non2xx = _NON2XX.search(out)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} responses were not 2xx for {url}:\n{out}")
    rps = float(_RPS.search(out).group(1))  # type: ignore[union-attr]
    value, unit = _LAT.search(out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rps, p99_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")

    pg = os.environ.get("TGSTATS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("TGSTATS_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    redis_prefix = f"tgstats-bench-{secrets.token_hex(4)}:"
    database_url = asyncio.run(_prepare_database(pg))
    common = {
        "DATABASE_URL": database_url,
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
        "API_RATE_LIMIT_PER_MINUTE": "1000000000",
        "API_RATE_LIMIT_PER_HOUR": "1000000000",
        "TGSTATS_ROLE": "web",
        "LOG_LEVEL": "WARNING",
        "ENABLE_METRICS": "true",
        "REDIS_KEY_PREFIX": redis_prefix,
    }
    os.environ.update(common)  # for the in-process route check below
    real = _has_stats_route()
    path = STATS_PATH if real else "/bench/chats/{chat_id:int}/summary"
    concrete = path.replace("{chat_id:int}", str(CHAT_ID))
    print(
        f"endpoint: {concrete} ({'the stats API' if real else 'STAND-IN: the stats API is absent'})"
    )

    full_memory = Server("full-memory", "bench.http_targets:full_app", common)
    full_redis = Server(
        "full-redis", "bench.http_targets:full_app", {**common, "REDIS_URL": redis_url}
    )
    servers = [full_memory, full_redis]
    try:
        body = full_memory.wait_ready(concrete)
        full_redis.wait_ready(concrete)
        body_file = Path(tempfile.mkstemp(prefix="bench-body-", suffix=".json")[1])
        body_file.write_bytes(body)
        bare = Server(
            "bare",
            "bench.http_targets:bare_app",
            {"BENCH_BODY_FILE": str(body_file), "BENCH_PATH": path},
        )
        servers.append(bare)
        assert bare.wait_ready(concrete) == body, "the bare endpoint must return the same bytes"
        print(
            f"response: {len(body)} bytes; {args.rounds} rounds x {args.seconds} s, "
            f"{args.connections} connections"
        )

        results: dict[str, list[tuple[float, float]]] = {s.name: [] for s in servers}
        for server in servers:  # warm-up: JIT-free, but fills caches and pools
            run_wrk(server.url(concrete), 1, args.connections)
        for round_no in range(args.rounds):
            for server in (bare, full_memory, full_redis):
                rps, p99 = run_wrk(server.url(concrete), args.seconds, args.connections)
                results[server.name].append((rps, p99))
                print(
                    f"round {round_no + 1} {server.name:12s} {rps:10.0f} req/s  p99 {p99:7.2f} ms"
                )
    finally:
        for server in servers:
            server.stop()
        _delete_prefix(redis_url, redis_prefix)

    med = {
        name: (statistics.median(r for r, _ in rows), statistics.median(p for _, p in rows))
        for name, rows in results.items()
    }
    bare_rps = med["bare"][0]
    print()
    print(f"{'config':14s} {'req/s':>10s} {'p99 ms':>8s} {'vs bare':>8s}")
    for name in ("bare", "full-memory", "full-redis"):
        rps, p99 = med[name]
        print(f"{name:14s} {rps:10.0f} {p99:8.2f} {rps / bare_rps:8.1%}")
    slower = min(("full-memory", "full-redis"), key=lambda n: med[n][0])
    summary = {
        "endpoint": concrete,
        "stand_in": not real,
        "bare_rps": round(bare_rps),
        "bare_p99_ms": round(med["bare"][1], 2),
        "full_memory_rps": round(med["full-memory"][0]),
        "full_memory_p99_ms": round(med["full-memory"][1], 2),
        "full_redis_rps": round(med["full-redis"][0]),
        "full_redis_p99_ms": round(med["full-redis"][1], 2),
        "full_rps": round(med[slower][0]),
        "full_vs_bare": round(med[slower][0] / bare_rps, 3),
        "full_p99_ms": round(med[slower][1], 2),
        "target_full_vs_bare": 0.6,
    }
    print(json.dumps(summary))


def _delete_prefix(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


if __name__ == "__main__":
    main()
