"""The pieces the monitoring checks run: tgstats, a workload, Prometheus.

``tgstats serve`` runs as a real process with the resilience suite's simulator plugin, so
raw MTProto updates reach the bot's real kurigram dispatcher (Telegram is not reachable
here) and the metrics come from the code that owns them.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.resilience.processes import REPO_ROOT, ServiceProcess, free_port, service_env
from tests.resilience.sim_plugin import encode_updates, write_simulator_distribution
from tgstats.importer.synthetic import write_synthetic_export
from tgstats.plugin_api.testing import create_test_database, drop_test_database
from tgstats_mtproto.testing import RawUpdates

ADMIN_TOKEN = "monitoring-admin-" + secrets.token_hex(8)
ADMIN_URL = os.environ.get("TGSTATS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
LOGS = REPO_ROOT / "test-artifacts" / "monitoring-logs"


@asynccontextmanager
async def running_service(work_dir: Path, **env: str) -> AsyncIterator[ServiceProcess]:
    """``tgstats serve`` on a fresh migrated database of the test PostgreSQL."""
    url = await create_test_database(ADMIN_URL, prefix="tgstats_monitoring")
    sim_path = write_simulator_distribution(work_dir / "sim-dist")
    LOGS.mkdir(parents=True, exist_ok=True)
    full_env = service_env(
        database_url=url,
        redis_url=None,
        sim_path=sim_path,
        admin_token=ADMIN_TOKEN,
        TGSTATS_DATA_DIR=str(work_dir / "data"),
        IMPORT_DIR=str(work_dir / "imports"),
        **env,
    )
    service = ServiceProcess(full_env, LOGS / f"{url.rsplit('/', 1)[1]}.log")
    try:
        await service.start()
        yield service
    finally:
        await service.stop()
        await drop_test_database(ADMIN_URL, url)


async def workload(
    service: ServiceProcess, rounds: int, work_dir: Path, *, with_import: bool = True
) -> dict[str, int]:
    """Messages, reactions, bot commands (one failing at Telegram), API reads and an import.

    Returns what it did, counted here.
    """
    tg = RawUpdates()
    group = tg.supergroup(9100, "Monitored")
    alice, bob = tg.user(91, "Alice"), tg.user(92, "Bob")
    done = {
        "messages": 0,
        "commands": 0,
        "failed_commands": 0,
        "imports": 0,
        "imported_messages": 0,
    }
    headers = {"X-API-Token": ADMIN_TOKEN}
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as client:

        async def feed(*updates: Any) -> None:
            response = await client.post("/_sim/updates", content=encode_updates(updates))
            assert response.status_code == 200 and response.json()["rejected"] == 0, response.text

        for round_no in range(rounds):
            updates = []
            for i in range(5):
                msg_id = tg.next_msg_id()
                updates.append(
                    tg.new_message(group, alice if i % 2 else bob, f"hi {i}", msg_id=msg_id)
                )
            updates.append(tg.reaction(group, bob, msg_id, new=[tg.emoji("👍")]))
            updates.append(tg.new_message(group, alice, "/top", msg_id=tg.next_msg_id()))
            await feed(*updates)
            done["messages"] += 6
            done["commands"] += 1
            if round_no % 2 == 0:
                armed = await client.post("/_sim/telegram-fails-next-reply")
                assert armed.status_code == 200, armed.text
                await feed(tg.new_message(group, bob, "/stats", msg_id=tg.next_msg_id()))
                done["messages"] += 1
                done["failed_commands"] += 1
            assert (await client.post("/_sim/flush")).status_code == 200
            chats = await client.get("/api/v1/chats", headers=headers)
            assert chats.status_code == 200, chats.text
            for chat in chats.json()["chats"]:
                summary = await client.get(
                    f"/api/v1/chats/{chat['chat_id']}/summary", headers=headers
                )
                assert summary.status_code == 200, summary.text
            if round_no == 0 and with_import:
                export = work_dir / "export.json"
                write_synthetic_export(export, messages=200, users=20)
                upload = await client.post(
                    "/api/v1/imports", content=export.read_bytes(), headers=headers
                )
                assert upload.status_code == 202, upload.text
                job_id = upload.json()["id"]
                for _ in range(120):
                    job = (await client.get(f"/api/v1/imports/{job_id}", headers=headers)).json()
                    if job["status"] in ("done", "failed"):
                        break
                    await asyncio.sleep(0.25)
                assert job["status"] == "done", job
                done["imports"] += 1
                done["imported_messages"] = job["messages_done"]
            await asyncio.sleep(1.0)
    return done


class Prometheus:
    """Debian's ``prometheus`` scraping one target every second, on loopback."""

    def __init__(self, work_dir: Path, target: str, *, rule_files: tuple[Path, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.work_dir = work_dir
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": "tgstats", "static_configs": [{"targets": [target]}]}],
        }
        self.config_path = work_dir / "prometheus.yml"
        self.config_path.write_text(json.dumps(config))  # JSON is YAML
        self.log_path = work_dir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus not found: apt-get install prometheus"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.work_dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (promql, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def wait_for(self, promql: str, *, limit: float = 30) -> list[dict[str, Any]]:
        """The query's result once it has series (Prometheus scrapes every second)."""
        deadline = time.monotonic() + limit
        while True:
            result = await asyncio.to_thread(self.query, promql)
            if result or time.monotonic() > deadline:
                return result
            await asyncio.sleep(0.5)
