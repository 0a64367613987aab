"""``POST /api/v1/imports``: admin upload streamed into PostgreSQL, imported as a job."""

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
from tgstats.web.imports import imports_controller

ADMIN = {"X-API-Token": ADMIN_TOKEN}


class ImportsApiForTests(Plugin):
    """Registers the imports API for tests when the app does not (yet) do it itself."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if imports_controller not in app_config.route_handlers:
            app_config.route_handlers.append(imports_controller)
        return app_config


PLUGINS = {"imports-api-for-tests": ImportsApiForTests}


async def _chunks(db: Any) -> int:
    async with db.session_factory() as session:
        return int((await session.execute(text("SELECT count(*) FROM job_upload_chunks"))).scalar())


async def _wait_done(client: Any, job_id: str) -> dict[str, Any]:
    for _ in range(1200):
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
    settings = make_settings(IMPORT_DIR=str(tmp_path), JOBS_WORKER="1")
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
    # The upload's pieces are gone, the spool file too; the job stays readable.
    assert await _chunks(db) == 0
    assert os.listdir(tmp_path) == []


async def test_broken_upload_fails_cleanly(
    make_settings: Callable[..., Any], app_client: Callable[..., Any], db: Any, tmp_path: Path
) -> None:
    settings = make_settings(IMPORT_DIR=str(tmp_path), JOBS_WORKER="1")
    body = (SAMPLES / "channel-2020.json").read_bytes()[:3000]
    async with app_client(settings, plugins=PLUGINS) as client:
        response = await client.post("/api/v1/imports", content=body, headers=ADMIN)
        assert response.status_code == 202
        done = await _wait_done(client, response.json()["id"])
    assert done["status"] == "failed"
    assert done["error"].startswith("upload: the file ends in the middle")
    assert str(tmp_path) not in done["error"]
    assert await _chunks(db) == 0


async def test_admin_only_and_limits(
    make_settings: Callable[..., Any], app_client: Callable[..., Any], db: Any, tmp_path: Path
) -> None:
    settings = make_settings(IMPORT_DIR=str(tmp_path), IMPORT_MAX_UPLOAD_MB="1", JOBS_WORKER="1")
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
    assert await _chunks(db) == 0  # refused uploads leave nothing behind


async def test_larger_than_the_app_wide_request_limit(
    make_settings: Callable[..., Any], app_client: Callable[..., Any], db: Any, tmp_path: Path
) -> None:
    """MAX_REQUEST_SIZE (1 MiB by default) does not cap imports."""
    from tgstats.importer.synthetic import write_synthetic_export

    export = tmp_path / "big.json"
    written = write_synthetic_export(export, messages=6000, seed=3)
    assert export.stat().st_size > 2 * 1024 * 1024
    settings = make_settings(
        IMPORT_DIR=str(tmp_path / "spool"), MAX_REQUEST_SIZE="1048576", JOBS_WORKER="1"
    )
    async with app_client(settings, plugins=PLUGINS) as client:
        response = await client.post("/api/v1/imports", content=export.read_bytes(), headers=ADMIN)
        assert response.status_code == 202, response.text
        done = await _wait_done(client, response.json()["id"])
    assert done["status"] == "done", done
    assert done["summary"]["imported_messages"] == sum(written.messages.values())
