"""Background work on one PostgreSQL job queue (procrastinate): imports, recounts,
retention, digests and the plugins' jobs. See docs/architecture.md, Background jobs.

- ``kinds``: ``JobKind``, ``JobRun``, ``JobFailed``, ``RetryLater`` (re-exported by
  ``tgstats.plugin_api``, with the ``job_kinds()`` plugin hook);
- ``queue``: ``JobQueue`` (the procrastinate app on the app's database, its worker);
- ``defer``: queue a job in the caller's transaction;
- ``builtin``: the core's kinds;
- ``uploads``: uploads in PostgreSQL;
- ``state``: jobs as readers see them.
"""

from tgstats.jobs.kinds import (
    DEFAULT_QUEUE,
    TELEGRAM_QUEUE,
    JobFailed,
    JobKind,
    JobRun,
    Jobs,
    RetryLater,
)

__all__ = [
    "DEFAULT_QUEUE",
    "TELEGRAM_QUEUE",
    "JobFailed",
    "JobKind",
    "JobRun",
    "Jobs",
    "RetryLater",
]
