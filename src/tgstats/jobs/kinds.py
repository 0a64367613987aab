"""What a kind of job is: the declarations the core and plugins hand the job queue.

A ``JobKind`` names a job, the coroutine that does it, and how it is scheduled: an
optional cron ``schedule`` (a periodic job: every worker's deferrer offers it and one
insert wins per tick, so it runs once per deployment), a ``queueing_lock`` (at most one
such job waiting), the ``queue`` (``telegram``: only processes that run the Telegram
client take it) and how many times a transient failure is retried.

The coroutine gets a ``JobRun``: its arguments, and ``progress(done, total)`` which
readers of ``/api/v1/jobs`` see while it runs. ``JobFailed`` ends a job as failed with
its message shown as is; ``RetryLater`` (and lost database or Redis connections) runs it
again later, with exponential backoff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "DEFAULT_QUEUE",
    "TELEGRAM_QUEUE",
    "JobFailed",
    "JobKind",
    "JobRun",
    "Jobs",
    "RetryLater",
]

DEFAULT_QUEUE = "default"
#: Jobs that need the Telegram client (the digest): taken where the client runs.
TELEGRAM_QUEUE = "telegram"


class JobFailed(Exception):
    """The job cannot succeed: it ends ``failed`` and its message is shown as the error."""


class RetryLater(Exception):
    """A passing condition (a busy chat, a lost connection): the job runs again later."""


class JobRun(Protocol):
    """What a running job sees of itself."""

    @property
    def job_id(self) -> int: ...

    @property
    def args(self) -> Mapping[str, Any]: ...

    @property
    def attempt(self) -> int:
        """0 on the first run, then 1, 2, ... (a retry, or a run after its worker died)."""
        ...

    async def progress(self, done: int, total: int, **detail: Any) -> None:
        """Record how far the job got (``detail`` merges into the job's detail)."""
        ...


@dataclass(frozen=True, slots=True)
class JobKind:
    """One kind of job. ``name`` is global: prefix a plugin's with its id
    (``privacy.retention``)."""

    name: str
    run: Callable[[JobRun], Awaitable[None]]
    schedule: str | None = None  # cron (five fields, UTC): a periodic job
    queueing_lock: str | None = None  # at most one job of this lock waiting
    queue: str = DEFAULT_QUEUE
    max_attempts: int = 6  # runs in all when transient errors keep coming
    describe: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Jobs(Protocol):
    """The job queue as a service (``services.get("jobs")``)."""

    async def defer(
        self,
        kind: str,
        args: Mapping[str, Any] | None = None,
        *,
        chat_id: int | None = None,
        lock: str | None = None,
        queueing_lock: str | None = None,
    ) -> int | None:
        """Queue a job; its id, or None when one with ``queueing_lock`` is waiting already."""
        ...
