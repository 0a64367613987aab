"""The core's job kinds: imports, time zone recounts, and the queue's housekeeping.

- ``import``: an upload (``job_upload_chunks``) imported through the app's event sink.
  Imports are idempotent (the writer looks every message up), so a run again after a
  crash writes only what the first run had not committed: the numbers come out exact.
  The pieces are removed once the job ended (done or failed).
- ``recount``: one chat's waiting time zone recount (``pipeline.recount.recount_chat``, one
  transaction, restartable from the raw rows). Locked per chat (``chat:<id>``) and queued
  once per chat (``recount:<id>``); a chat busy with a writer's batch retries with backoff.
- ``recount.sweep`` (every minute): queues a recount for a chat whose request has none
  (a request from before the queue, or one whose job was deleted).
- ``jobs.cleanup`` (hourly): deletes finished jobs older than ``JOBS_KEEP_DAYS``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.jobs.defer import defer_job
from tgstats.jobs.kinds import JobFailed, JobKind, JobRun, RetryLater
from tgstats.plugin_api import ServiceRegistry
from tgstats.settings import Settings

__all__ = [
    "IMPORT",
    "RECOUNT",
    "core_job_kinds",
    "defer_import",
    "defer_recount",
    "import_lock",
]

log = logging.getLogger("tgstats.jobs")

IMPORT = "import"
RECOUNT = "recount"
PROGRESS_EVERY = 1.0  # seconds between progress writes of a running job


def chat_lock(chat_id: int) -> str:
    return f"chat:{chat_id}"


async def defer_recount(session: AsyncSession, chat_id: int) -> int | None:
    """Queue the chat's recount in the caller's transaction (None: one is waiting)."""
    return await defer_job(
        session, RECOUNT, {"chat_id": chat_id}, lock=chat_lock(chat_id),
        queueing_lock=f"recount:{chat_id}", chat_id=chat_id,
    )  # fmt: skip


def import_lock(chats: list[str]) -> str:
    """One chat named by its id: that chat's lock; otherwise imports go one at a time."""
    if len(chats) == 1 and chats[0].lstrip("-").isdigit():
        return chat_lock(int(chats[0]))
    return "imports"


async def defer_import(
    session: AsyncSession, upload_id: str, detail: dict[str, Any], chats: list[str]
) -> int | None:
    return await defer_job(
        session, IMPORT, {"upload": upload_id}, lock=import_lock(chats),
        public_id=upload_id, detail=detail,
    )  # fmt: skip


class _Throttled:
    """A synchronous progress callback that writes at most every ``PROGRESS_EVERY`` s."""

    def __init__(self, run: JobRun) -> None:
        self.run = run
        self.last = 0.0
        self.task: asyncio.Task[None] | None = None

    def __call__(self, done: int, total: int, **detail: Any) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self.last < PROGRESS_EVERY or (self.task and not self.task.done()):
            return
        self.last = loop.time()
        self.task = loop.create_task(self._write(done, total, detail))

    async def _write(self, done: int, total: int, detail: dict[str, Any]) -> None:
        try:
            await self.run.progress(done, total, **detail)
        except Exception as exc:  # progress is best effort
            log.debug("progress write failed (%s)", type(exc).__name__)

    async def wait(self) -> None:
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


def core_job_kinds(settings: Settings, services: ServiceRegistry) -> list[JobKind]:
    """The core's kinds; they find the app's resources in ``services`` when they run."""

    def factory() -> Any:
        database = services.get("database")
        if database is None:
            raise RetryLater("no database yet")
        return database.session_factory

    async def run_import(run: JobRun) -> None:
        await _run_import(run, settings, services, factory())

    async def run_recount(run: JobRun) -> None:
        from tgstats.pipeline.recount import recount_chat

        chat_id = int(run.args["chat_id"])
        progress = _Throttled(run)
        outcome = await recount_chat(
            factory(), chat_id, default_timezone=settings.privacy.default_timezone,
            on_progress=progress,
        )  # fmt: skip
        await progress.wait()
        if outcome == "busy":
            raise RetryLater("the chat is busy with another transaction")
        if outcome == "failed":
            raise JobFailed("the recount failed; the chat keeps the numbers of its old zone")
        await run.progress(1, 1, outcome=outcome)

    async def sweep(run: JobRun) -> None:
        session_factory = factory()
        async with session_factory() as session:
            chats = (
                (
                    await session.execute(
                        text(
                            "SELECT r.chat_id FROM chat_recounts r"
                            " WHERE r.state IN ('pending', 'running') AND NOT EXISTS ("
                            " SELECT 1 FROM procrastinate_jobs j WHERE j.task_name = 'recount'"
                            " AND j.lock = 'chat:' || r.chat_id AND j.status IN ('todo', 'doing'))"
                        )
                    )
                )
                .scalars()
                .all()
            )
            for chat_id in chats:
                await defer_recount(session, int(chat_id))
            await session.commit()
        if chats:
            log.info("queued recounts for chats %s", list(chats))

    async def cleanup(run: JobRun) -> None:
        queue = services.get("jobs")
        if queue is not None:
            await queue.delete_old_jobs(settings.jobs.keep_days)

    return [
        JobKind(name=IMPORT, run=run_import, max_attempts=4, describe="import an uploaded export"),
        JobKind(name=RECOUNT, run=run_recount, max_attempts=10, describe="recount a chat"),
        JobKind(
            name="recount.sweep",
            run=sweep,
            schedule="* * * * *",
            queueing_lock="recount.sweep",
            describe="queue recounts that have no job",
        ),
        JobKind(
            name="jobs.cleanup",
            run=cleanup,
            schedule="41 * * * *",
            queueing_lock="jobs.cleanup",
            describe="delete old finished jobs",
        ),
    ]


async def _run_import(
    run: JobRun, settings: Settings, services: ServiceRegistry, session_factory: Any
) -> None:
    from tgstats.importer import ImportOptions, import_export
    from tgstats.importer.progress import ImportSummary
    from tgstats.jobs.uploads import remove_upload, spool_upload

    upload_id = str(run.args["upload"])
    pipeline = services.get("pipeline")
    if pipeline is None:
        raise RetryLater("no event pipeline in this process yet")
    sink = pipeline.bulk_sink()  # the pipeline's bulk path: cache bumps and observers too
    async with session_factory() as session:
        detail = (
            await session.scalar(
                text("SELECT detail FROM job_state WHERE job_id = :j"), {"j": run.job_id}
            )
        ) or {}
    final = False
    try:
        async with spool_upload(session_factory, upload_id, settings.imports.dir) as (path, size):
            if size == 0:
                final = True
                raise JobFailed("the upload is gone; upload the file again")
            progress = _Throttled(run)

            def on_batch(summary: ImportSummary, done: int, total: int) -> None:
                progress(done, total, bytes_done=done, messages_done=summary.imported_messages)

            options = ImportOptions(
                chats=tuple(detail.get("chats") or ()),
                timezone=detail.get("timezone") or "UTC",
                timezone_given=bool(detail.get("timezone_given", True)),
                chat_timezone=detail.get("chat_timezone"),
            )
            summary = await import_export(
                path, sink, options, on_batch=on_batch, session_factory=session_factory,
                default_timezone=settings.privacy.default_timezone,
            )  # fmt: skip
            await sink.flush()
            await progress.wait()
            final = True
            result = summary.to_dict()
            result["path"] = "upload"  # the spool file's path is ours, not the user's
            chat_ids = [c.chat_id for c in summary.chats if c.chat_id is not None]
            read = size if summary.error is None else 0  # a failed file shows no full bar
            await _finish_import(session_factory, run.job_id, summary, result, read, chat_ids)
            if summary.error is not None:
                raise JobFailed(summary.error.replace(str(path), "upload"))
    except JobFailed:
        final = True
        raise
    except Exception as exc:
        from tgstats.jobs.queue import TRANSIENT

        final = final or not isinstance(exc, TRANSIENT) or run.attempt + 1 >= 4
        raise
    finally:
        if final:
            await remove_upload(session_factory, upload_id)


async def _finish_import(
    session_factory: Any,
    job_id: int,
    summary: Any,
    result: dict[str, Any],
    size: int,
    chat_ids: list[int],
) -> None:
    import msgspec

    values = {
        "new_messages": summary.new_messages,
        "known_messages": summary.known_messages,
        "outside_retention": summary.outside_retention,
        "messages_done": summary.imported_messages,
        "bytes_done": size,
        "summary": result,
    }
    async with session_factory() as session:
        await session.execute(
            text(
                "UPDATE job_state SET detail = detail || CAST(:d AS jsonb), done = :n, total = :n,"
                " chat_id = coalesce(chat_id, :chat) WHERE job_id = :j"
            ),
            {
                "d": msgspec.json.encode(values).decode(),
                "n": size,
                "chat": chat_ids[0] if len(set(chat_ids)) == 1 else None,
                "j": job_id,
            },
        )
        await session.commit()
