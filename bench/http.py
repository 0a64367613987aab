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
every request still runs the limiter (with Redis, limits that high let each
process take admissions in batches of 100, see ``tgstats_ratelimit.limiter``).
The same request repeats, so the full app answers it from the HTTP response
cache (``tgstats.web.response_cache``) after the first miss.

Besides requests/s, each round reads the server's CPU time (the granian process
tree, from /proc) and prints CPU microseconds per request: on a shared machine
the rate depends on what else runs, the CPU cost per request much less. The
last output line is one JSON object with ``bare_rps``, ``full_rps`` (the slower
full configuration), ``full_vs_bare``, ``full_p99_ms`` and the CPU figures
(``*_cpu_us``; ``*_vs_bare_cpu`` is bare's CPU per request over the config's).

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
STANDIN_PATH = "/bench/chats/{chat_id:int}/summary"


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
_COUNT = re.compile(r"^\s*(\d+) requests in", re.M)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, stack, seen = 0.0, [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        for task in tasks:
            try:
                stack.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return total


def run_wrk(url: str, seconds: int, connections: int) -> tuple[float, float, int]:
    """(requests/s, p99 ms, requests) from one bounded wrk run against a loopback URL."""
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
    return rps, p99_ms, int(_COUNT.search(out).group(1))  # type: ignore[union-attr]


def _measure(
    endpoints: dict[str, str], servers: dict[str, Server], args: argparse.Namespace
) -> dict[str, tuple[float, float, float]]:
    """Median (req/s, p99 ms, CPU us/request) per ``endpoint/server``, rounds interleaved."""
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for label, path in endpoints.items():
        for server in servers.values():
            run_wrk(server.url(path), 1, args.connections)  # warm-up: caches, pools
            rows[f"{label}/{server.name}"] = []
    for round_no in range(args.rounds):
        for label, path in endpoints.items():
            for server in servers.values():
                cpu_before = tree_cpu_seconds(server.process.pid)
                rps, p99, count = run_wrk(server.url(path), args.seconds, args.connections)
                cpu_us = (tree_cpu_seconds(server.process.pid) - cpu_before) / count * 1e6
                rows[f"{label}/{server.name}"].append((rps, p99, cpu_us))
                print(
                    f"round {round_no + 1} {label:8s} {server.name:12s} "
                    f"{rps:10.0f} req/s  p99 {p99:7.2f} ms  {cpu_us:6.1f} us CPU/request"
                )
    return {
        key: tuple(statistics.median(row[i] for row in v) for i in range(3))  # type: ignore[misc]
        for key, v in rows.items()
    }


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
    templates = {"standin": STANDIN_PATH}
    if _has_stats_route():
        templates = {"stats": STATS_PATH, **templates}
    else:
        print("the stats API is absent: only the stand-in endpoint is measured")
    endpoints = {k: v.replace("{chat_id:int}", str(CHAT_ID)) for k, v in templates.items()}
    headline = next(iter(endpoints))

    servers = {
        # One all-in-one process: without Redis only role "all" caches (it owns the writer).
        "full-memory": Server(
            "full-memory", "bench.http_targets:full_app", {**common, "TGSTATS_ROLE": "all"}
        ),
        "full-redis": Server(
            "full-redis", "bench.http_targets:full_app", {**common, "REDIS_URL": redis_url}
        ),
    }
    try:
        bodies: dict[str, str] = {}
        for label, path in endpoints.items():
            body = servers["full-memory"].wait_ready(path)
            assert servers["full-redis"].wait_ready(path) == body
            body_file = Path(tempfile.mkstemp(prefix=f"bench-{label}-", suffix=".json")[1])
            body_file.write_bytes(body)
            bodies[templates[label]] = str(body_file)
            print(f"{label}: {path}, {len(body)} bytes")
        servers = {
            "bare": Server(
                "bare", "bench.http_targets:bare_app", {"BENCH_BODIES": json.dumps(bodies)}
            ),
            **servers,
        }
        for label, path in endpoints.items():
            expected = Path(bodies[templates[label]]).read_bytes()
            assert servers["bare"].wait_ready(path) == expected, "bare must answer the same bytes"
        print(f"{args.rounds} rounds x {args.seconds} s, {args.connections} connections, wrk -t1")
        med = _measure(endpoints, servers, args)
    finally:
        for server in servers.values():
            server.stop()
        _delete_prefix(redis_url, redis_prefix)

    print()
    print(
        f"{'endpoint':9s} {'config':12s} {'req/s':>10s} {'p99 ms':>8s} {'vs bare':>8s} "
        f"{'CPU us/req':>10s} {'bare/this CPU':>13s}"
    )
    summary: dict[str, object] = {"endpoint": endpoints[headline], "stand_in": headline != "stats"}
    for label in endpoints:
        bare_rps, _, bare_cpu = med[f"{label}/bare"]
        for name in servers:
            rps, p99, cpu = med[f"{label}/{name}"]
            print(
                f"{label:9s} {name:12s} {rps:10.0f} {p99:8.2f} {rps / bare_rps:8.1%} "
                f"{cpu:10.1f} {bare_cpu / cpu:13.1%}"
            )
            prefix = "" if label == headline else f"{label}_"
            summary[f"{prefix}{name.replace('-', '_')}_rps"] = round(rps)
            summary[f"{prefix}{name.replace('-', '_')}_p99_ms"] = round(p99, 2)
            summary[f"{prefix}{name.replace('-', '_')}_cpu_us"] = round(cpu, 1)
            if name != "bare":
                summary[f"{prefix}{name.replace('-', '_')}_vs_bare_cpu"] = round(bare_cpu / cpu, 3)
    bare_rps = med[f"{headline}/bare"][0]
    slower = min(("full-memory", "full-redis"), key=lambda n: med[f"{headline}/{n}"][0])
    summary.update(
        {
            "bare_rps": round(bare_rps),
            "full_rps": round(med[f"{headline}/{slower}"][0]),
            "full_vs_bare": round(med[f"{headline}/{slower}"][0] / bare_rps, 3),
            "full_p99_ms": round(med[f"{headline}/{slower}"][1], 2),
            "full_memory_vs_bare": round(med[f"{headline}/full-memory"][0] / bare_rps, 3),
            "target_full_vs_bare": 0.6,
        }
    )
    if "standin" in endpoints and headline != "standin":
        standin_bare = med["standin/bare"][0]
        summary["standin_memory_vs_bare"] = round(med["standin/full-memory"][0] / standin_bare, 3)
        summary["standin_redis_vs_bare"] = round(med["standin/full-redis"][0] / standin_bare, 3)
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
