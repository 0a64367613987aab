"""Jobs across real processes on one PostgreSQL: a web process takes the upload, worker
processes run the jobs, a worker SIGKILLed mid-import and mid-recount is replaced by
another that finishes the job, and the numbers equal a count made here from the file."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.conftest import ADMIN_TOKEN
from tests.resilience.processes import REPO_ROOT, ServiceProcess
from tests.support.scratch_db import scratch_database
from tgstats.db.engine import run_migrations
from tgstats.importer.synthetic import write_synthetic_export

ADMIN = {"X-API-Token": ADMIN_TOKEN}
MESSAGES = 150_000


def _env(url: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(REPO_ROOT),
        "ENVIRONMENT": "test",
        "DATABASE_URL": url,
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "console",
        "TGSTATS_ROLE": "web",
        "API_MAX_RANGE_DAYS": "1100",
        "API_RATE_LIMIT_PER_MINUTE": "100000",
        "API_RATE_LIMIT_PER_HOUR": "1000000",
        "REDIS_KEY_PREFIX": f"jobs-{secrets.token_hex(3)}:",
        # Dead workers are found within seconds here (60 s by default).
        "JOBS_HEARTBEAT_SECONDS": "0.5",
        "JOBS_STALLED_SECONDS": "3",
        "JOBS_POLL_SECONDS": "0.5",
        **extra,
    }


def _independent(path: Path, zone: str) -> Counter[date]:
    """Messages per local day in ``zone``, read from the export with plain json."""
    document = json.loads(path.read_text(encoding="utf-8"))
    tz = ZoneInfo(zone)
    return Counter(
        datetime.fromtimestamp(int(m["date_unixtime"]), UTC).astimezone(tz).date()
        for m in document["messages"]
        if m.get("type") == "message"
    )


async def _per_day(client: httpx.AsyncClient, chat_id: int, days: Counter[date]) -> Any:
    response = await client.get(
        f"/api/v1/chats/{chat_id}/timeseries",
        params={
            "from": (min(days) - timedelta(days=1)).isoformat(),
            "to": (max(days) + timedelta(days=1)).isoformat(),
            "granularity": "day",
        },
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    got = Counter({date.fromisoformat(p["bucket"]): p["messages"] for p in answer["points"]})
    return answer["timezone"], +got


async def _poll(check: Any, what: str, limit: float = 240.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {limit:.0f}s")


async def test_killed_workers_jobs_finish_elsewhere_with_exact_numbers(
    pg_admin_url: str, tmp_path: Path
) -> None:
    export = tmp_path / "big.json"
    write_synthetic_export(export, messages=MESSAGES, seed=5)
    expected_utc = _independent(export, "UTC")
    total = sum(expected_utc.values())
    name = f"tgstats_jobs_{secrets.token_hex(3)}"
    processes: list[ServiceProcess] = []

    def start(command: str, **extra: str) -> ServiceProcess:
        log = tmp_path / f"{command}-{len(processes)}.log"
        process = ServiceProcess(_env(url, **extra), log, command=command)
        processes.append(process)
        return process

    async with scratch_database(pg_admin_url, name) as url:
        await run_migrations(url)
        try:
            web = start("serve", JOBS_WORKER="0")
            first = start("worker", IMPORT_DIR=str(tmp_path / "spool-1"))
            await asyncio.gather(web.start(), first.start())
            async with httpx.AsyncClient(base_url=web.base_url, timeout=60) as client:
                response = await client.post(
                    "/api/v1/imports", content=export.read_bytes(), headers=ADMIN
                )
                assert response.status_code == 202, response.text
                upload_id = response.json()["id"]

                async def importing() -> dict[str, Any] | None:
                    job = (await client.get(f"/api/v1/imports/{upload_id}", headers=ADMIN)).json()
                    assert job["status"] in ("queued", "running"), job
                    return job if job["status"] == "running" and job["messages_done"] else None

                await _poll(importing, "import progress")
                first.signal(signal.SIGKILL)  # mid-import: some batches are committed
                await first.wait(30)
                second = start("worker", IMPORT_DIR=str(tmp_path / "spool-2"))
                await second.start()

                async def imported() -> dict[str, Any] | None:
                    job = (await client.get(f"/api/v1/imports/{upload_id}", headers=ADMIN)).json()
                    return job if job["status"] in ("done", "failed") else None

                done = await _poll(imported, "the import after the kill")
                assert done["status"] == "done", done
                job = (await client.get(f"/api/v1/jobs/{done['job_id']}", headers=ADMIN)).json()
                assert job["attempts"] >= 1  # it ran again
                chats = (await client.get("/api/v1/chats", headers=ADMIN)).json()["chats"]
                assert len(chats) == 1
                chat_id = chats[0]["chat_id"]
                zone, got = await _per_day(client, chat_id, expected_utc)
                assert zone == "UTC" and got == +expected_utc  # nothing counted twice
                summary = (
                    await client.get(
                        f"/api/v1/chats/{chat_id}/summary",
                        params={
                            "from": min(expected_utc).isoformat(),
                            "to": max(expected_utc).isoformat(),
                        },
                        headers=ADMIN,
                    )
                ).json()
                assert summary["messages"]["value"] == total

                # A recount, killed while it runs, restarted by a third worker.
                patched = await client.patch(
                    f"/api/v1/chats/{chat_id}/settings",
                    json={"timezone": "Asia/Kathmandu"},
                    headers=ADMIN,
                )
                assert patched.status_code == 200, patched.text

                async def recounting() -> dict[str, Any] | None:
                    chat = (await client.get(f"/api/v1/chats/{chat_id}", headers=ADMIN)).json()
                    recount = chat["recount"]
                    assert recount is not None and recount["state"] != "done", recount
                    return recount if recount["state"] == "running" else None

                await _poll(recounting, "the recount starting")
                second.signal(signal.SIGKILL)
                await second.wait(30)
                chat = (await client.get(f"/api/v1/chats/{chat_id}", headers=ADMIN)).json()
                assert chat["recount"]["state"] == "running"  # left behind by the dead worker
                third = start("worker")
                await third.start()

                async def recounted() -> dict[str, Any] | None:
                    chat = (await client.get(f"/api/v1/chats/{chat_id}", headers=ADMIN)).json()
                    state = chat["recount"]["state"]
                    return chat if state in ("done", "failed") else None

                finished = await _poll(recounted, "the recount after the kill")
                assert finished["recount"]["state"] == "done", finished["recount"]
                expected_new = _independent(export, "Asia/Kathmandu")
                zone, got = await _per_day(client, chat_id, expected_new)
                assert zone == "Asia/Kathmandu" and got == +expected_new
                recounts = (await client.get("/api/v1/jobs?kind=recount", headers=ADMIN)).json()
                assert [j["status"] for j in recounts] == ["done"]
                assert recounts[0]["attempts"] >= 1
        finally:
            for process in processes:
                await process.stop()
            for process in processes:
                if process.process is not None and process.process.poll() is None:
                    os.killpg(process.process.pid, signal.SIGKILL)
