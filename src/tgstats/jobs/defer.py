"""Queueing a job inside the caller's transaction, with nothing but its session.

A job and the change that asks for it commit together (a zone change and its
recount, an upload and its import): the row goes in through the queue's own
``procrastinate_defer_jobs_v1`` (whose insert trigger notifies listening workers at
commit), the ``job_state`` row beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["defer_job"]

_DEFER = """
SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(
    CAST(:queue AS varchar), CAST(:task AS varchar), 0, CAST(:lock AS text),
    CAST(:qlock AS text), CAST(:args AS jsonb), NULL::timestamptz
)::procrastinate_job_to_defer_v1]))
"""

_STATE = """
INSERT INTO job_state (job_id, kind, chat_id, public_id, detail)
VALUES (:job, :kind, :chat, :public, CAST(:detail AS jsonb))
"""


async def defer_job(
    session: AsyncSession,
    task: str,
    args: Mapping[str, Any] | None = None,
    *,
    queue: str = "default",
    lock: str | None = None,
    queueing_lock: str | None = None,
    chat_id: int | None = None,
    public_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int | None:
    """Queue ``task`` in ``session``'s transaction (the caller commits): the job's id, or
    None when a job with ``queueing_lock`` is waiting already."""
    params = {
        "queue": queue,
        "task": task,
        "lock": lock,
        "qlock": queueing_lock,
        "args": msgspec.json.encode(dict(args or {})).decode(),
    }
    try:
        async with session.begin_nested():
            job_id = int((await session.execute(text(_DEFER), params)).scalar_one())
    except IntegrityError:
        return None  # procrastinate_jobs_queueing_lock_idx_v1: one is waiting already
    await session.execute(
        text(_STATE),
        {
            "job": job_id,
            "kind": task,
            "chat": chat_id,
            "public": public_id,
            "detail": msgspec.json.encode(dict(detail or {})).decode(),
        },
    )
    return job_id
