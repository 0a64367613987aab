"""``POST /api/v1/imports``: admin upload streamed to disk, imported in the background."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar.config.app import AppConfig
from sqlalchemy import text

from tests.conftest import ADMIN_TOKEN
from tests.importer.conftest import SAMPLES
from tgstats.plugin_api import Plugin
from tgstats.web.imports import imports_controller, stop_imports

ADMIN = {"X-API-Token": ADMIN_TOKEN}


class ImportsApiForTests(Plugin):
    """Registers the imports API for tests when the app does not (yet) do it itself."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if imports_controller not in app_config.route_handlers:
            app_config.route_handlers.append(imports_controller)
            app_config.on_shutdown.append(stop_imports)
        return app_config


PLUGINS = {"imports-api-for-tests": ImportsApiForTests}


async def _wait_done(client: Any, job_id: str) -> dict[str, Any]:
    for _ in range(200):
        response = await client.get(f"/api/v1/imports/{job_id}", headers=ADMIN)
        assert response.status_code == 200
        job: dict[str, Any] = response.json()
        if job["status"] in ("done", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("import did not finish")


async def test_upload_imports_in_background(
    make_settings: Callable[..., Any], app_client: Callable[..., Any], db: Any, tmp_path: Path
) -> None:
    settings = make_settings(IMPORT_DIR=str(tmp_path))
    body = (SAMPLES / "channel-2020.json").read_bytes()
    async with app_client(settings, plugins=PLUGINS) as client:
        response = await client.post(
            "/api/v1/imports?tz=Europe/Berlin",
            content=body,
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["status"] in ("queued", "running", "done")
        assert job["size_bytes"] == len(body)
        done = await _wait_done(client, job["id"])
        assert done["status"] == "done", done
        assert done["summary"]["imported_messages"] == 18
        assert done["summary"]["timezone"] == "Europe/Berlin"
        assert done["summary"]["path"] == "upload"
        listed = (await client.get("/api/v1/imports", headers=ADMIN)).json()
        assert [j["id"] for j in listed] == [job["id"]]
    async with db.session_factory() as session:
        count = (await session.execute(text("SELECT count(*) FROM messages"))).scalar_one()
    assert count == 18
    # The upload is gone; the status stays on disk.
    assert sorted(os.listdir(tmp_path)) == [f"{job['id']}.status.json"]


async def test_broken_upload_fails_cleanly(
    make_settings: Callable[..., Any], app_client: Callable[..., Any], db: Any, tmp_path: Path
) -> None:
    settings = make_settings(IMPORT_DIR=str(tmp_path))
    body = (SAMPLES / "channel-2020.json").read_bytes()[:3000]
    async with app_client(settings, plugins=PLUGINS) as client:
        response = await client.post("/api/v1/imports", content=body, headers=ADMIN)
        assert response.status_code == 202
        done = await _wait_done(client, response.json()["id"])
    assert done["status"] == "failed"
    assert done["error"].startswith("upload: the file ends in the middle")
    assert str(tmp_path) not in done["error"]


async def test_admin_only_and_limits(
    make_settings: Callable[..., Any], app_client: Callable[..., Any], db: Any, tmp_path: Path
) -> None:
    settings = make_settings(IMPORT_DIR=str(tmp_path), IMPORT_MAX_UPLOAD_MB="1")
    async with app_client(settings, plugins=PLUGINS) as client:
        anonymous = await client.post("/api/v1/imports", content=b"{}")
        assert anonymous.status_code == 401
        too_big = await client.post(
            "/api/v1/imports", content=b" " * (1024 * 1024 + 1), headers=ADMIN
        )
        assert too_big.status_code == 413
        assert "IMPORT_MAX_UPLOAD_MB" in too_big.text
        empty = await client.post("/api/v1/imports", content=b"", headers=ADMIN)
        assert empty.status_code == 400
        bad_tz = await client.post("/api/v1/imports?tz=Nowhere/Land", content=b"{}", headers=ADMIN)
        assert bad_tz.status_code == 400
        missing = await client.get("/api/v1/imports/0123456789abcdef", headers=ADMIN)
        assert missing.status_code == 404
        traversal = await client.get("/api/v1/imports/..%2F..%2Fetc", headers=ADMIN)
        assert traversal.status_code == 404
    assert os.listdir(tmp_path) == []  # refused uploads leave nothing behind


async def test_larger_than_the_app_wide_request_limit(
    make_settings: Callable[..., Any], app_client: Callable[..., Any], db: Any, tmp_path: Path
) -> None:
    """MAX_REQUEST_SIZE (1 MiB by default) does not cap imports."""
    from tgstats.importer.synthetic import write_synthetic_export

    export = tmp_path / "big.json"
    written = write_synthetic_export(export, messages=6000, seed=3)
    assert export.stat().st_size > 2 * 1024 * 1024
    settings = make_settings(IMPORT_DIR=str(tmp_path / "spool"), MAX_REQUEST_SIZE="1048576")
    async with app_client(settings, plugins=PLUGINS) as client:
        response = await client.post("/api/v1/imports", content=export.read_bytes(), headers=ADMIN)
        assert response.status_code == 202, response.text
        done = await _wait_done(client, response.json()["id"])
    assert done["status"] == "done", done
    assert done["summary"]["imported_messages"] == sum(written.messages.values())


async def test_stopping_cancels_running_imports(tmp_path: Path) -> None:
    import time as time_module

    from tgstats.web.imports import ImportJob, ImportJobs

    class StuckSink:
        async def put(self, event: Any) -> None:
            await asyncio.sleep(3600)

        async def put_many(self, events: Any) -> None:
            await asyncio.sleep(3600)

        async def flush(self) -> None:
            return None

    jobs = ImportJobs(tmp_path)
    job = ImportJob(
        id="00112233aabbccdd", status="queued", created_at=time_module.time(), size_bytes=0
    )
    jobs.upload_path(job.id).write_bytes((SAMPLES / "channel-2020.json").read_bytes())
    jobs.start(job, StuckSink())
    await asyncio.sleep(0.2)
    assert job.status == "running"
    await jobs.aclose()
    assert job.status == "failed"
    assert job.error is not None and "server stopped" in job.error
    assert not jobs.upload_path(job.id).exists()
    assert jobs.load(job.id) is not None  # still answerable from its status file
