"""Load test: locust (``bench/locustfile.py``) against a ``tgstats demo`` started here.

``nox -s load`` runs this. It makes a scratch database on the test PostgreSQL
(``TGSTATS_TEST_PG``), starts ``tgstats demo`` on a free loopback port with it (the demo
seeds its group, about four months of messages, and serves it with one granian worker),
waits for ``/health/ready``, then runs locust headless with a bounded number of users for a
bounded time, and stops the demo and drops the database.

The API rate limit is raised for the run: every locust user signs in with the same admin
token from 127.0.0.1, and the limiter (120 requests a minute per token by default) would
answer most of the load with 429 and the test would measure the limiter.

Prints locust's summary table, then one line ``load: {...}`` (p50/p95/p99 ms over all
requests and for the ``/health/live`` baseline, requests/s, failures, 5xx), the load average
before and after, and ``p95 vs baseline``. Exits non-zero on any failed request or 5xx.

    python bench/load.py [--users 20] [--spawn-rate 5] [--seconds 60]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py is named like the stdlib ``http`` package: keep this folder off the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("TGSTATS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, limit: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if process.poll() is not None:
            raise SystemExit(
                f"tgstats demo exited {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"tgstats demo not ready after {limit:.0f} s:\n{log.read_text()[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent locust users")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second")
    parser.add_argument("--seconds", type=int, default=60, help="how long the load runs")
    args = parser.parse_args()

    from tgstats.plugin_api.testing import create_test_database, drop_test_database

    url = asyncio.run(create_test_database(ADMIN_URL, prefix="tgstats_load"))
    work = Path(tempfile.mkdtemp(prefix="tgstats-load-"))
    token = "load-" + secrets.token_hex(16)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = work / "demo.log"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ADMIN_API_TOKEN": token,
        "API_RATE_LIMIT_PER_MINUTE": "1000000",
        "API_RATE_LIMIT_PER_HOUR": "100000000",
        "TGSTATS_DATA_DIR": str(work / "data"),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "tgstats.cli", "demo", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
    try:
        ready = _wait_ready(demo, f"{base}/health/ready", log, limit=300)
        print(f"tgstats demo seeded and ready in {ready:.0f} s on {base}", flush=True)
        summary_path = work / "summary.json"
        before = _load_average()
        command = [
            sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"),
            "--headless", "--only-summary", "--host", base,
            "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
            "--run-time", f"{args.seconds}s", "--stop-timeout", "10", "--loglevel", "WARNING",
        ]  # fmt: skip
        locust = subprocess.run(
            command,
            env={
                **os.environ,
                "TGSTATS_LOAD_TOKEN": token,
                "TGSTATS_LOAD_SUMMARY": str(summary_path),
            },
            timeout=args.seconds + 120,
        )
        after = _load_average()
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        print(
            f"users {args.users}, {args.seconds} s, {os.cpu_count()} CPUs; "
            f"load average before {before}, after {after}"
        )
        baseline = summary.get("baseline", {})
        if summary.get("p95_ms") and baseline.get("p95_ms"):
            print(
                f"p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, "
                f"p99 {summary['p99_ms']} ms; /health/live p95 {baseline['p95_ms']} ms; "
                f"p95 vs baseline {summary['p95_ms'] / baseline['p95_ms']:.1f}x; "
                f"{summary['failures']} failed, {summary['server_errors']} 5xx"
            )
        if demo.poll() is not None:
            print(f"tgstats demo died during the run:\n{log.read_text()[-3000:]}")
            return 1
        if "Traceback" in log.read_text(errors="replace"):
            print(f"the demo logged a traceback:\n{log.read_text()[-3000:]}")
            return 1
        return locust.returncode
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait(5)
        asyncio.run(drop_test_database(ADMIN_URL, url))


if __name__ == "__main__":
    sys.exit(main())
