"""``/api/v1/imports``: upload a Telegram Desktop export, import it in the background.

``POST /api/v1/imports`` (admin only) takes the export's ``result.json`` as the
raw request body (``Content-Type: application/json``,
``application/octet-stream`` or none; others are 415; the dashboard sends the chosen file with
``fetch(url, {method: "POST", body: file})``). The body is streamed to a file in
``IMPORT_DIR``, never held in memory, and may be up to ``IMPORT_MAX_UPLOAD_MB``
(the app-wide ``MAX_REQUEST_SIZE`` does not apply here). The answer is ``202``
with the job; the import runs in the background through the app's event sink,
one at a time, and ``GET /api/v1/imports/{id}`` tells how far it got.

Query parameters: ``chat`` (repeatable, as ``tgstats import --chat``), ``tz`` (as
``--tz``) and ``chat_timezone`` (as ``--chat-timezone``: the zone of chats with nothing
counted yet, set before anything is). The file is read whole before anything is
written, so a bad file leaves nothing; the done job says how many messages were new,
how many already known and how many older than the chat's metadata retention.

Job state lives in memory and, so that another worker or a restart can still
answer, in a ``<id>.status.json`` beside the upload. The upload itself is
deleted once imported (or refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, QueryParameter

from tgstats.importer import ImportOptions, import_export
from tgstats.importer.progress import ImportSummary
from tgstats.plugin_api import EventSink
from tgstats.settings import Settings
from tgstats.telemetry import Metrics
from tgstats.timezones import check_timezone
from tgstats.web.auth import Principal, auth_dependencies, require_admin
from tgstats.web.security import BODY_MEDIA_TYPES, NO_CONTENT_TYPE

__all__ = ["ImportJob", "ImportJobs", "imports_controller", "stop_imports"]

log = logging.getLogger(__name__)

_ID_ALPHABET = frozenset("0123456789abcdef")


class ImportJob(msgspec.Struct, kw_only=True):
    """One upload and its import, as the API shows it."""

    id: str
    status: Literal["queued", "running", "done", "failed"]
    created_at: float
    size_bytes: int
    chats: list[str] = msgspec.field(default_factory=list)
    timezone: str = "UTC"
    timezone_given: bool = True
    chat_timezone: str | None = None  # the zone of chats with nothing counted yet
    started_at: float | None = None
    finished_at: float | None = None
    bytes_done: int = 0
    messages_done: int = 0
    # Set once done: messages not stored before, already known (stored, or counted before
    # retention removed them), and older than the chat's metadata retention.
    new_messages: int | None = None
    known_messages: int | None = None
    outside_retention: int | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None


class ImportJobs:
    """The app's import jobs: run one at a time, status in memory and on disk."""

    def __init__(self, directory: Path, metrics: Metrics | None = None) -> None:
        self.directory = directory
        self.metrics = metrics
        self.jobs: dict[str, ImportJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._one_at_a_time = asyncio.Semaphore(1)
        self.default_timezone = "UTC"

    @classmethod
    def of(cls, state: State, settings: Settings) -> ImportJobs:
        jobs = getattr(state, "imports", None)
        if jobs is None:
            directory = settings.imports.dir or Path(tempfile.gettempdir()) / "tgstats-imports"
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            jobs = cls(directory, getattr(state, "metrics", None))
            jobs.default_timezone = settings.privacy.default_timezone
            state.imports = jobs
        assert isinstance(jobs, ImportJobs)
        return jobs

    def upload_path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.json"

    def _status_path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.status.json"

    def save(self, job: ImportJob) -> None:
        tmp = self._status_path(job.id).with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(job))
        tmp.replace(self._status_path(job.id))

    def load(self, job_id: str) -> ImportJob | None:
        if job_id in self.jobs:
            return self.jobs[job_id]
        if len(job_id) != 16 or not set(job_id) <= _ID_ALPHABET:
            return None
        try:
            return msgspec.json.decode(self._status_path(job_id).read_bytes(), type=ImportJob)
        except (OSError, msgspec.DecodeError):
            return None

    def start(
        self, job: ImportJob, sink: EventSink, database: Any = None, pipeline: Any = None
    ) -> None:
        """Run the import in the background: through the pipeline's bulk path when the app
        has one (``EventPipeline.bulk_sink``), else into ``sink``."""
        self.jobs[job.id] = job
        self.save(job)
        if pipeline is not None and database is not None:
            sink = pipeline.bulk_sink()
        task = asyncio.create_task(self._run(job, sink, database), name=f"tgstats-import-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: ImportJob, sink: EventSink, database: Any) -> None:
        path = self.upload_path(job.id)
        try:
            async with self._one_at_a_time:
                job.status = "running"
                job.started_at = time.time()
                self.save(job)
                last_saved = [time.monotonic()]

                def on_batch(summary: ImportSummary, done: int, total: int) -> None:
                    job.bytes_done = done
                    job.messages_done = summary.imported_messages
                    if time.monotonic() - last_saved[0] > 2.0:
                        last_saved[0] = time.monotonic()
                        self.save(job)

                options = ImportOptions(
                    chats=tuple(job.chats), timezone=job.timezone,
                    timezone_given=job.timezone_given, chat_timezone=job.chat_timezone,
                )  # fmt: skip
                summary = await import_export(
                    path, sink, options, on_batch=on_batch,
                    session_factory=database.session_factory if database else None,
                    default_timezone=self.default_timezone,
                )  # fmt: skip
                job.new_messages = summary.new_messages
                job.known_messages = summary.known_messages
                job.outside_retention = summary.outside_retention
                # The upload's path is ours, not the user's: name the file as they sent it.
                result = summary.to_dict()
                result["path"] = "upload"
                job.summary = result
                job.messages_done = summary.imported_messages
                if summary.error is not None:
                    job.status = "failed"
                    job.error = summary.error.replace(str(path), "upload")
                else:
                    job.status = "done"
        except asyncio.CancelledError:
            job.status = "failed"
            job.error = "the server stopped during the import; upload the file again to finish it"
            raise
        except Exception as exc:  # a job reports its failure; the app goes on
            log.exception("import %s failed", job.id)
            job.status = "failed"
            job.error = f"import failed: {type(exc).__name__}"
        finally:
            job.finished_at = time.time()
            if self.metrics is not None:
                self.metrics.import_jobs.add(1, {"status": job.status})
            with contextlib.suppress(OSError):
                path.unlink()
            with contextlib.suppress(OSError):
                self.save(job)

    async def aclose(self) -> None:
        """Cancel running imports (the app is stopping); their jobs say so."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def stop_imports(app: Any) -> None:
    """Cancel background imports; call it in the app lifespan *before* the pipeline stops.

    (Litestar runs ``on_shutdown`` hooks after the lifespan managers have exited,
    so register it with ``stack.push_async_callback(stop_imports, app)`` right
    after the pipeline's own ``stop`` callback, which makes it run first.) A
    cancelled job reports that the server stopped; its upload is deleted.
    """
    jobs = getattr(app.state, "imports", None)
    if isinstance(jobs, ImportJobs):
        await jobs.aclose()


def _check_timezone(tz: str, name: str = "tz") -> str:
    try:
        return check_timezone(tz)
    except ValueError as exc:
        raise ValidationException(f"{name}: {exc}") from None


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status_code=413, detail=f"the export is larger than IMPORT_MAX_UPLOAD_MB ({limit} MiB)"
    )


async def _receive(request: Request[Any, Any, Any], path: Path, limit_bytes: int) -> int:
    """Stream the body to ``path``; returns its size. Removes the file on any failure."""
    size = 0
    try:
        async with await anyio.open_file(path, "xb") as file:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit_bytes:
                    raise _too_large(limit_bytes // (1024 * 1024))
                await file.write(chunk)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)  # small and local: no need for a thread
        raise
    return size


class ImportsController(Controller):
    """Upload exports and follow their import. Admin only."""

    path = "/api/v1/imports"
    tags = ["imports"]
    dependencies = auth_dependencies()

    @post(
        "/",
        summary="Upload a Telegram Desktop export (result.json) and import it",
        status_code=202,
        # This route streams to disk and applies IMPORT_MAX_UPLOAD_MB itself.
        request_max_body_size=None,
        opt={BODY_MEDIA_TYPES: ("application/json", "application/octet-stream", NO_CONTENT_TYPE)},
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        events: NamedDependency[EventSink],
        chat: Annotated[list[str] | None, QueryParameter(max_items=50)] = None,
        tz: Annotated[str | None, QueryParameter(max_length=64)] = None,
        chat_timezone: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> ImportJob:
        require_admin(principal)
        if tz is not None:
            _check_timezone(tz)
        if chat_timezone is not None:
            _check_timezone(chat_timezone, "chat_timezone")
        limit_bytes = settings.imports.max_upload_mb * 1024 * 1024
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
            raise _too_large(settings.imports.max_upload_mb)
        jobs = ImportJobs.of(request.app.state, settings)
        job_id = secrets.token_hex(8)
        size = await _receive(request, jobs.upload_path(job_id), limit_bytes)
        if size == 0:
            await anyio.Path(jobs.upload_path(job_id)).unlink(missing_ok=True)
            raise ValidationException("the request body is empty: send the export file as the body")
        job = ImportJob(
            id=job_id,
            status="queued",
            created_at=time.time(),
            size_bytes=size,
            chats=[c[:256] for c in chat or []],
            timezone=tz or "UTC",
            timezone_given=tz is not None,
            chat_timezone=chat_timezone,
        )
        state = request.app.state
        jobs.start(job, events, getattr(state, "database", None), getattr(state, "pipeline", None))
        return job

    @get("/", summary="Recent import jobs")
    async def list_jobs(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> list[ImportJob]:
        require_admin(principal)
        jobs = ImportJobs.of(request.app.state, settings)
        return sorted(jobs.jobs.values(), key=lambda j: j.created_at, reverse=True)

    @get("/{job_id:str}", summary="One import job: status, progress and summary")
    async def get_job(
        self,
        job_id: FromPath[str],
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> ImportJob:
        require_admin(principal)
        job = ImportJobs.of(request.app.state, settings).load(job_id)
        if job is None:
            raise NotFoundException("no such import")
        return job


#: The controller for the app to register (``route_handlers=[..., imports_controller]``).
imports_controller = ImportsController
