"""``/api/v1/imports``: upload a Telegram Desktop export, import it as a background job.

``POST /api/v1/imports`` (admin only) takes the export's ``result.json`` as the
raw request body (``Content-Type: application/json``,
``application/octet-stream`` or none; others are 415; the dashboard sends the chosen file with
``fetch(url, {method: "POST", body: file})``). The body is streamed into PostgreSQL in
1 MiB pieces (``tgstats.jobs.uploads``), never held in memory, and may be up to
``IMPORT_MAX_UPLOAD_MB`` (the app-wide ``MAX_REQUEST_SIZE`` does not apply here). The
answer is ``202`` with the job; an ``import`` job on the queue (``tgstats.jobs``) runs
it on any worker of the deployment, and ``GET /api/v1/imports/{id}`` (any replica)
tells how far it got, from the database.

Query parameters: ``chat`` (repeatable, as ``tgstats import --chat``), ``tz`` (as
``--tz``) and ``chat_timezone`` (as ``--chat-timezone``: the zone of chats with nothing
counted yet, set before anything is). The file is read whole before anything is
written, so a bad file leaves nothing; the done job says how many messages were new,
how many already known and how many older than the chat's metadata retention. A
worker killed mid-import leaves the job running until its heartbeat is missed, then
another worker runs it again: imports are idempotent, so the numbers come out exact.
The upload's pieces are deleted once the job ended.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.jobs.builtin import IMPORT, defer_import
from tgstats.jobs.state import JobView, get_job_by_public_id, list_jobs
from tgstats.jobs.uploads import UploadWriter
from tgstats.settings import Settings
from tgstats.timezones import check_timezone
from tgstats.web.auth import Principal, auth_dependencies, require_admin
from tgstats.web.security import BODY_MEDIA_TYPES, NO_CONTENT_TYPE

__all__ = ["ImportJob", "import_job_of", "imports_controller"]

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
    job_id: int | None = None  # the job on the queue (``/api/v1/jobs/{job_id}``)


def _seconds(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def import_job_of(view: JobView) -> ImportJob:
    """The import's API shape, from its job."""
    d = view.detail
    status = view.status if view.status != "cancelled" else "failed"
    return ImportJob(
        id=view.public_id or str(view.id),
        status=status,
        created_at=_seconds(view.created_at) or 0.0,
        size_bytes=int(d.get("size_bytes") or 0),
        chats=list(d.get("chats") or []),
        timezone=d.get("timezone") or "UTC",
        timezone_given=bool(d.get("timezone_given", True)),
        chat_timezone=d.get("chat_timezone"),
        started_at=_seconds(view.started_at),
        finished_at=_seconds(view.finished_at) if status in {"done", "failed"} else None,
        bytes_done=int(d.get("bytes_done") or 0),
        messages_done=int(d.get("messages_done") or 0),
        new_messages=d.get("new_messages"),
        known_messages=d.get("known_messages"),
        outside_retention=d.get("outside_retention"),
        summary=d.get("summary"),
        error=view.error if status == "failed" else None,
        job_id=view.id,
    )


def _check_timezone(tz: str, name: str = "tz") -> str:
    try:
        return check_timezone(tz)
    except ValueError as exc:
        raise ValidationException(f"{name}: {exc}") from None


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status_code=413, detail=f"the export is larger than IMPORT_MAX_UPLOAD_MB ({limit} MiB)"
    )


async def _receive(request: Request[Any, Any, Any], writer: UploadWriter, limit_bytes: int) -> int:
    """Stream the body into the upload's pieces; returns its size. Removes them on failure."""
    try:
        async for chunk in request.stream():
            if writer.size + len(chunk) > limit_bytes:
                raise _too_large(limit_bytes // (1024 * 1024))
            await writer.write(chunk)
        return await writer.finish()
    except BaseException:
        await writer.discard()
        raise


class ImportsController(Controller):
    """Upload exports and follow their import. Admin only."""

    path = "/api/v1/imports"
    tags = ["imports"]
    dependencies = auth_dependencies()

    @post(
        "/",
        summary="Upload a Telegram Desktop export (result.json) and import it",
        status_code=202,
        # This route streams into PostgreSQL and applies IMPORT_MAX_UPLOAD_MB itself.
        request_max_body_size=None,
        opt={BODY_MEDIA_TYPES: ("application/json", "application/octet-stream", NO_CONTENT_TYPE)},
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        db_session: NamedDependency[AsyncSession],
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
        upload_id = secrets.token_hex(8)
        writer = UploadWriter(request.app.state.database.session_factory, upload_id)
        size = await _receive(request, writer, limit_bytes)
        if size == 0:
            raise ValidationException("the request body is empty: send the export file as the body")
        chats = [c[:256] for c in chat or []]
        detail = {
            "size_bytes": size,
            "chats": chats,
            "timezone": tz or "UTC",
            "timezone_given": tz is not None,
            "chat_timezone": chat_timezone,
        }
        try:
            job_id = await defer_import(db_session, upload_id, detail, chats)
            await db_session.commit()
        except BaseException:
            await writer.discard()
            raise
        view = await get_job_by_public_id(db_session, upload_id)
        if view is None:  # pragma: no cover - committed just above
            raise HTTPException(status_code=503, detail=f"job {job_id} is not readable yet")
        return import_job_of(view)

    @get("/", summary="Recent import jobs")
    async def list_jobs(
        self,
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> list[ImportJob]:
        require_admin(principal)
        return [import_job_of(v) for v in await list_jobs(db_session, kind=IMPORT, limit=100)]

    @get("/{job_id:str}", summary="One import job: status, progress and summary")
    async def get_job(
        self,
        job_id: FromPath[str],
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> ImportJob:
        require_admin(principal)
        view = None
        if len(job_id) == 16 and set(job_id) <= _ID_ALPHABET:
            view = await get_job_by_public_id(db_session, job_id)
        if view is None:
            raise NotFoundException("no such import")
        return import_job_of(view)


#: The controller for the app to register (``route_handlers=[..., imports_controller]``).
imports_controller = ImportsController
