"""Reading jobs: the queue's state joined with ``job_state``, as the API and CLI show them.

Everything here reads the database, so any replica answers for any job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["JobProgress", "JobView", "get_job", "list_jobs", "queue_counts", "status_of"]

Status = Literal["queued", "running", "done", "failed", "cancelled"]

_STATUS: dict[str, Status] = {
    "todo": "queued",
    "doing": "running",
    "succeeded": "done",
    "failed": "failed",
    "cancelled": "cancelled",
    "aborted": "failed",
    "aborting": "running",
}


def status_of(queue_status: str) -> Status:
    return _STATUS.get(queue_status, "failed")


class JobProgress(msgspec.Struct, frozen=True, kw_only=True):
    done: int
    total: int
    percent: float | None  # None while the total is unknown


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    """One job as ``/api/v1/jobs`` and ``tgstats jobs`` show it."""

    id: int
    kind: str
    status: Status
    queue: str
    chat_id: int | None
    attempts: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    scheduled_at: datetime | None  # a retry waits until then
    progress: JobProgress
    error: str | None
    detail: dict[str, Any]
    public_id: str | None = None  # an import's upload id (``/api/v1/imports/{id}``)


_SELECT = """
SELECT j.id, j.task_name, j.queue_name, j.status::text, j.attempts, s.chat_id,
       coalesce(s.created_at, (SELECT min(e.at) FROM procrastinate_events e WHERE e.job_id = j.id)),
       s.started_at, s.finished_at, j.scheduled_at, coalesce(s.done, 0), coalesce(s.total, 0),
       coalesce(s.detail, '{}'::jsonb), s.error, s.public_id
FROM procrastinate_jobs j LEFT JOIN job_state s ON s.job_id = j.id
"""


def _view(row: Any) -> JobView:
    done, total = int(row[10]), int(row[11])
    status = status_of(row[3])
    percent = round(100.0 * min(done, total) / total, 1) if total > 0 else None
    if status == "done":
        percent = 100.0
    detail = row[12] if isinstance(row[12], dict) else msgspec.json.decode(row[12] or b"{}")
    return JobView(
        id=int(row[0]),
        kind=row[1],
        status=status,
        queue=row[2],
        chat_id=row[5],
        attempts=int(row[4]),
        created_at=row[6],
        started_at=row[7],
        finished_at=row[8],
        scheduled_at=row[9],
        progress=JobProgress(done=done, total=total, percent=percent),
        error=row[13] if status in {"failed", "queued"} else None,
        detail=detail,
        public_id=row[14],
    )


async def list_jobs(
    session: AsyncSession,
    *,
    chat_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[JobView]:
    """Newest first; ``chat_id`` limits to that chat's jobs, ``status`` to one status."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if chat_id is not None:
        where.append("s.chat_id = :chat")
        params["chat"] = chat_id
    if status is not None:
        codes = [code for code, name in _STATUS.items() if name == status]
        where.append("j.status::text = ANY(:codes)")
        params["codes"] = codes
    if kind is not None:
        where.append("j.task_name = :kind")
        params["kind"] = kind
    if before is not None:
        where.append("j.id < :before")
        params["before"] = before
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await session.execute(
        text(f"{_SELECT} {clause} ORDER BY j.id DESC LIMIT :limit"), params
    )
    return [_view(row) for row in rows]


async def get_job(session: AsyncSession, job_id: int) -> JobView | None:
    row = (await session.execute(text(f"{_SELECT} WHERE j.id = :id"), {"id": job_id})).first()
    return _view(row) if row is not None else None


async def get_job_by_public_id(session: AsyncSession, public_id: str) -> JobView | None:
    row = (
        await session.execute(text(f"{_SELECT} WHERE s.public_id = :p"), {"p": public_id})
    ).first()
    return _view(row) if row is not None else None


async def queue_counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Jobs waiting or running, by (kind, status): the queue depth."""
    rows = await session.execute(
        text(
            "SELECT task_name, status::text, count(*) FROM procrastinate_jobs"
            " WHERE status IN ('todo', 'doing') GROUP BY 1, 2"
        )
    )
    return {(row[0], status_of(row[1])): int(row[2]) for row in rows}
