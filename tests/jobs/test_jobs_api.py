"""The job queue through the HTTP API: imports and recounts as jobs, read from any app,
chat token scoping, bad ids, failures and retries, periodic jobs once across workers."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from tests.conftest import ADMIN_TOKEN
from tgstats.importer.synthetic import write_synthetic_export
from tgstats.plugin_api import JobFailed, JobKind, JobRun, Plugin, RetryLater
from tgstats.plugin_api.testing import running_app

ADMIN = {"X-API-Token": ADMIN_TOKEN}


async def _until(predicate: Any, what: str, *, tries: int = 1200, pause: float = 0.05) -> Any:
    for _ in range(tries):
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(pause)
    raise AssertionError(f"{what} did not happen")


async def _job(client: Any, job_id: int, headers: dict[str, str] = ADMIN) -> dict[str, Any]:
    response = await client.get(f"/api/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def _finished(client: Any, job_id: int) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = await _job(client, job_id)
        return job if job["status"] in ("done", "failed") else None

    result: dict[str, Any] = await _until(done, f"job {job_id}")
    return result


def _independent_days(document: dict[str, Any], zone: str) -> dict[int, Counter[date]]:
    """Messages per chat and local day in ``zone``, read from the export with plain json."""
    tz = ZoneInfo(zone)
    out: dict[int, Counter[date]] = {}
    for chat in document["chats"]["list"]:
        days: Counter[date] = Counter()
        for message in chat["messages"]:
            if message.get("type") == "message":
                moment = datetime.fromtimestamp(int(message["date_unixtime"]), UTC)
                days[moment.astimezone(tz).date()] += 1
        out[int(chat["id"])] = days
    return out


async def test_upload_on_one_app_status_and_jobs_from_another_recounts_scoped_by_chat(
    db: Any, make_settings: Any, tmp_path: Path
) -> None:
    export = tmp_path / "two-chats.json"
    write_synthetic_export(export, messages=3000, chats=2, shape="multi", seed=11)
    document = json.loads(export.read_text(encoding="utf-8"))
    worker = make_settings(JOBS_WORKER="1", IMPORT_DIR=str(tmp_path / "spool"))
    reader = make_settings(JOBS_WORKER="0")
    async with running_app(reader) as other, running_app(worker) as first:
        response = await first.client.post(
            "/api/v1/imports", content=export.read_bytes(), headers=ADMIN
        )
        assert response.status_code == 202, response.text
        upload = response.json()
        # The app that took the upload is not the one asked: the answer is the database's.
        answer = await other.client.get(f"/api/v1/imports/{upload['id']}", headers=ADMIN)
        assert answer.status_code == 200
        assert answer.json()["size_bytes"] == export.stat().st_size

        async def imported() -> dict[str, Any] | None:
            job = (await other.client.get(f"/api/v1/imports/{upload['id']}", headers=ADMIN)).json()
            return job if job["status"] in ("done", "failed") else None

        done = await _until(imported, "the import")
        assert done["status"] == "done", done
        expected_total = sum(sum(d.values()) for d in _independent_days(document, "UTC").values())
        assert done["summary"]["imported_messages"] == expected_total
        job = await _job(other.client, done["job_id"])
        assert job["kind"] == "import" and job["status"] == "done"
        assert job["progress"]["percent"] == 100.0

        # Both chats' zones change: one recount job per chat, done by the first app's worker.
        chats = sorted(_independent_days(document, "UTC"))
        bot_ids = {raw_id: -(1_000_000_000_000 + raw_id) for raw_id in chats}  # supergroups
        listed = (await other.client.get("/api/v1/chats", headers=ADMIN)).json()["chats"]
        assert sorted(c["chat_id"] for c in listed) == sorted(bot_ids.values())
        for bot_id in bot_ids.values():
            patched = await other.client.patch(
                f"/api/v1/chats/{bot_id}/settings", json={"timezone": "Asia/Kolkata"},
                headers=ADMIN,
            )  # fmt: skip
            assert patched.status_code == 200, patched.text
            assert patched.json()["pending_timezone"] == "Asia/Kolkata"
        recounts = (await other.client.get("/api/v1/jobs?kind=recount", headers=ADMIN)).json()
        assert sorted(j["chat_id"] for j in recounts) == sorted(bot_ids.values())
        for recount in recounts:
            finished = await _finished(other.client, recount["id"])
            assert finished["status"] == "done", finished
        # Counted again in the new zone: equal to a count made here from the file.
        expected = _independent_days(document, "Asia/Kolkata")
        for raw_id, bot_id in bot_ids.items():
            response = await other.client.get(
                f"/api/v1/chats/{bot_id}/timeseries",
                params={
                    "from": (min(expected[raw_id]) - timedelta(days=1)).isoformat(),
                    "to": (max(expected[raw_id]) + timedelta(days=1)).isoformat(),
                    "granularity": "day",
                },
                headers=ADMIN,
            )
            assert response.status_code == 200, response.text
            series = response.json()
            assert series["timezone"] == "Asia/Kolkata"
            got = Counter(
                {date.fromisoformat(p["bucket"]): p["messages"] for p in series["points"]}
            )
            assert +got == +expected[raw_id]

        # A chat token sees its chat's jobs only; every other job is as if it did not exist.
        chat_a, chat_b = sorted(bot_ids.values())
        minted = await other.client.post(f"/api/v1/chats/{chat_a}/tokens", headers=ADMIN)
        assert minted.status_code == 201, minted.text
        mine = {"X-API-Token": minted.json()["token"]}
        visible = (await other.client.get("/api/v1/jobs", headers=mine)).json()
        assert [j["chat_id"] for j in visible] == [chat_a]
        assert (await other.client.get(f"/api/v1/jobs?chat={chat_b}", headers=mine)).json() == []
        theirs = next(j for j in recounts if j["chat_id"] == chat_b)
        assert (
            await other.client.get(f"/api/v1/jobs/{theirs['id']}", headers=mine)
        ).status_code == 404
        assert (
            await other.client.get(f"/api/v1/jobs/{done['job_id']}", headers=mine)
        ).status_code == 404  # the import names no single chat
        ours = next(j for j in recounts if j["chat_id"] == chat_a)
        assert (await _job(other.client, ours["id"], mine))["chat_id"] == chat_a

        # Without a token: refused; bad ids: 400; an unknown one: 404; never a 500.
        assert (await other.client.get("/api/v1/jobs")).status_code == 401
        assert (await other.client.get(f"/api/v1/jobs/{ours['id']}")).status_code == 401
        for bad in ("abc", "0", "-3", "1e3", "99999999999999999999999", "%00"):
            response = await other.client.get(f"/api/v1/jobs/{bad}", headers=ADMIN)
            assert response.status_code == 400, (bad, response.status_code)
            assert "Traceback" not in response.text
        assert (await other.client.get("/api/v1/jobs/987654321", headers=ADMIN)).status_code == 404
        bad_filter = await other.client.get("/api/v1/jobs?status=exploded", headers=ADMIN)
        assert bad_filter.status_code == 400

    async with db.session_factory() as session:
        left = (await session.execute(text("SELECT count(*) FROM job_upload_chunks"))).scalar()
    assert left == 0


SECRET = "postgresql://admin:hunter2@db/internal"


class FlakyJobs(Plugin):
    """Job kinds that fail: one for good (with a secret in its message), one transiently."""

    runs: Counter[str] = Counter()

    def job_kinds(self) -> Sequence[JobKind]:
        return [
            JobKind(name="test.broken", run=self.broken),
            JobKind(name="test.refused", run=self.refused),
            JobKind(name="test.flaky", run=self.flaky, max_attempts=3),
        ]

    async def broken(self, run: JobRun) -> None:
        FlakyJobs.runs["broken"] += 1
        raise ValueError(f"could not reach {SECRET}")

    async def refused(self, run: JobRun) -> None:
        raise JobFailed("the export names no chat")

    async def flaky(self, run: JobRun) -> None:
        FlakyJobs.runs["flaky"] += 1
        await run.progress(run.attempt, 3)
        if run.attempt == 0:
            raise RetryLater("not yet")


async def test_failed_jobs_say_why_in_one_line_and_transient_ones_are_retried(
    db: Any, make_settings: Any
) -> None:
    FlakyJobs.runs.clear()
    settings = make_settings(JOBS_WORKER="1", JOBS_POLL_SECONDS="0.2")
    async with running_app(settings, plugins={"flaky-jobs": FlakyJobs}) as app:
        queue = app.services.get("jobs")
        broken = await queue.defer("test.broken")
        refused = await queue.defer("test.refused")
        flaky = await queue.defer("test.flaky")
        failed = await _finished(app.client, broken)
        assert failed["status"] == "failed"
        assert failed["error"] == "internal error (ValueError)"
        assert "hunter2" not in json.dumps(failed)
        assert (await _finished(app.client, refused))["error"] == "the export names no chat"

        # The first run asks to be retried: queued again with its error and a later time.
        async def retrying() -> dict[str, Any] | None:
            job = await _job(app.client, flaky)
            return job if job["attempts"] >= 1 or job["status"] == "done" else None

        waiting = await _until(retrying, "the retry")
        if waiting["status"] == "queued":
            assert waiting["error"].startswith("temporarily unavailable (RetryLater)")
            assert waiting["scheduled_at"] is not None
        done = await _finished(app.client, flaky)
        assert done["status"] == "done" and done["attempts"] >= 1 and done["error"] is None
        metrics = (await app.client.get("/metrics", headers=ADMIN)).text
    assert FlakyJobs.runs == Counter({"broken": 1, "flaky": 2})
    assert re.search(r'bot_job_failures_total\{kind="test\.broken"[^}]*\} 1\.0', metrics)
    assert re.search(
        r'bot_job_duration_seconds_count\{kind="test\.flaky"[^}]*outcome="retrying"', metrics
    )


async def test_periodic_jobs_run_once_per_tick_across_two_workers(
    db: Any, make_settings: Any
) -> None:
    every = {"RETENTION_SCHEDULE": "* * * * * */2", "DIGEST_SCHEDULE": "* * * * * */2"}
    one = make_settings(JOBS_WORKER="1", **every)
    two = make_settings(JOBS_WORKER="1", **every)
    async with running_app(one) as first, running_app(two) as second:
        factory = first.services.get("session_factory")

        async def enough() -> bool:
            async with factory() as session:
                runs = (
                    await session.execute(
                        text(
                            "SELECT count(*) FROM procrastinate_jobs"
                            " WHERE task_name = 'privacy.retention' AND status = 'succeeded'"
                        )
                    )
                ).scalar()
            return int(runs or 0) >= 4

        await _until(enough, "four retention runs", tries=600, pause=0.1)
        assert second.services.get("jobs").worker_running
    async with db.session_factory() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT task_name, args->>'timestamp', count(*) FROM procrastinate_jobs"
                    " WHERE task_name IN ('privacy.retention', 'privacy.digest') GROUP BY 1, 2"
                )
            )
        ).all()
        retention_runs = (
            await session.execute(text("SELECT count(*) FROM retention_runs"))
        ).scalar()
    assert rows, "no periodic job ran"
    assert all(count == 1 for _, _, count in rows), rows  # each tick deferred once
    ticks = sum(1 for task, _, _ in rows if task == "privacy.retention")
    # One run per tick at most (a tick still waiting when the apps stopped never ran).
    assert retention_runs is not None and 4 <= retention_runs <= ticks
