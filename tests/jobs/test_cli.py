"""``tgstats jobs``: the queue's jobs from the command line, read from the database."""

from __future__ import annotations

import asyncio
from typing import Any

from tgstats.cli import main
from tgstats.plugin_api.testing import running_app


async def test_tgstats_jobs_lists_queued_jobs_and_filters_them(
    db: Any, make_settings: Any, database_url: str, monkeypatch: Any, capsys: Any
) -> None:
    async with running_app(make_settings(JOBS_WORKER="0")) as app:
        queue = app.services.get("jobs")
        job_id = await queue.defer("recount", {"chat_id": -100123}, chat_id=-100123)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ENVIRONMENT", "test")
    assert await asyncio.to_thread(main, ["jobs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.split()[0] == str(job_id))
    assert row.split()[1:3] == ["recount", "queued"]
    assert "-100123" in row
    assert await asyncio.to_thread(main, ["jobs", "--status", "failed"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no jobs"
    assert await asyncio.to_thread(main, ["jobs", "--chat", "-100123", "--kind", "recount"]) == 0
    assert str(job_id) in capsys.readouterr().out
