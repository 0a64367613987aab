"""``/api/v1/jobs``: background jobs, read from the database by any replica.

The admin token sees every job; a chat token sees its chat's jobs only (others are
404, as if they did not exist); without a token the answer is 401. ``status`` is
queued, running, done, failed or cancelled; ``progress`` has ``done``, ``total`` and
``percent`` (None while the total is unknown); ``error`` is one line (never a
traceback) on a failed job, or on a queued one waiting for a retry.
"""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.jobs.state import JobView, get_job, list_jobs
from tgstats.web.auth import Principal, auth_dependencies

__all__ = ["JobsController"]

_MAX_ID = 2**63 - 1


def _job_id(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) <= _MAX_ID:
        raise ValidationException("job_id: expected a positive integer job id")
    return int(raw)


def _visible(principal: Principal, job: JobView) -> bool:
    return principal.is_admin or (principal.kind == "chat" and job.chat_id == principal.chat_id)


class JobsController(Controller):
    """Background jobs: imports, recounts, retention, digests, plugins' jobs."""

    path = "/api/v1/jobs"
    tags = ["jobs"]
    dependencies = auth_dependencies()

    @get("/", summary="Recent jobs, newest first")
    async def list_jobs(
        self,
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        status: Annotated[
            Literal["queued", "running", "done", "failed", "cancelled"] | None, QueryParameter()
        ] = None,
        kind: Annotated[str | None, QueryParameter(max_length=128)] = None,
        chat: Annotated[int | None, QueryParameter(ge=-(2**63), le=_MAX_ID)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        before: Annotated[int | None, QueryParameter(ge=1, le=_MAX_ID)] = None,
    ) -> list[JobView]:
        if principal.kind == "chat":
            if chat is not None and chat != principal.chat_id:
                return []
            chat = principal.chat_id
        return await list_jobs(
            db_session, chat_id=chat, status=status, kind=kind, limit=limit, before=before
        )

    @get("/{job_id:str}", summary="One job: status, progress, error")
    async def get_job(
        self,
        job_id: FromPath[str],
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> JobView:
        job = await get_job(db_session, _job_id(job_id))
        if job is None or not _visible(principal, job):
            raise NotFoundException("no such job")
        return job
