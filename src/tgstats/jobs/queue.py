"""``JobQueue``: procrastinate on the app's PostgreSQL, its worker, and tgstats' job state.

One ``procrastinate.App`` per tgstats app, on a ``PsycopgConnector`` built from
``DATABASE_URL`` (``libpq_dsn``; the embedded server's Unix socket too). Every
``JobKind`` (the core's and the plugins') is registered as a task of that app.

- ``defer_in(session, ...)`` queues a job **in the caller's transaction** (the queue's
  own ``procrastinate_defer_jobs_v1``, then the ``job_state`` row), so a request and its
  job commit together or not at all; ``defer`` does it in a transaction of its own.
- The worker (``start_worker``) runs as a task of the app's event loop: at most
  ``JOBS_CONCURRENCY`` jobs at once, one at a time per ``lock`` (a chat). It heartbeats;
  a side task looks for jobs left ``doing`` by a worker that stopped heartbeating (killed)
  and puts them back to ``todo`` (``retry_stalled``), so another worker runs them again.
- Failures: ``RetryLater``, lost database and Redis connections are retried with
  exponential backoff (2, 4, 8, ... s) up to the kind's ``max_attempts``; a job the
  worker's own shutdown interrupted runs again at once. Anything else fails the job, with
  ``JobFailed``'s message or the exception's type as its error (never a traceback).
- ``stop_worker`` is bounded: running jobs get ``JOBS_SHUTDOWN_TIMEOUT``, then are
  cancelled (and queued again); ``close`` closes the connector's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import procrastinate
import psycopg
import psycopg.conninfo
from procrastinate import exceptions as queue_errors
from procrastinate import job_context, retry
from procrastinate.jobs import Job
from procrastinate.worker import Worker
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError as SAOperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.db.engine import async_url
from tgstats.jobs.defer import defer_job
from tgstats.jobs.kinds import JobFailed, JobKind, RetryLater
from tgstats.settings import JobsSettings

__all__ = ["TRANSIENT", "JobQueue", "libpq_dsn"]

log = logging.getLogger("tgstats.jobs")

# libpq keywords a DATABASE_URL's query may carry through to the queue's connections.
_LIBPQ_QUERY = frozenset(
    {"application_name", "connect_timeout", "options", "sslmode", "sslrootcert", "sslcert",
     "sslkey", "target_session_attrs", "passfile", "service"}
)  # fmt: skip


def libpq_dsn(url: str) -> str:
    """The libpq connection string of a SQLAlchemy/asyncpg ``DATABASE_URL``.

    ``?host=/path`` (a Unix socket, as the embedded server gives) becomes ``host``;
    asyncpg's ``ssl=`` becomes ``sslmode``.
    """
    parsed = make_url(async_url(url))
    params: dict[str, Any] = {}
    if parsed.host:
        params["host"] = parsed.host
    if parsed.port:
        params["port"] = str(parsed.port)
    if parsed.username:
        params["user"] = parsed.username
    if parsed.password is not None:
        params["password"] = str(parsed.password)
    if parsed.database:
        params["dbname"] = parsed.database
    for key, raw in parsed.query.items():
        value = raw if isinstance(raw, str) else raw[-1]
        if key == "host":
            params["host"] = value
        elif key in {"ssl", "sslmode"}:
            params["sslmode"] = {"true": "require", "false": "disable"}.get(value, value)
        elif key in _LIBPQ_QUERY:
            params[key] = value
    return psycopg.conninfo.make_conninfo(**params)


#: Errors that pass: the job is retried with backoff.
TRANSIENT: tuple[type[BaseException], ...] = (
    RetryLater,
    OSError,  # ConnectionError, TimeoutError among them
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    psycopg.OperationalError,
    SAOperationalError,
    queue_errors.ConnectorException,
)
try:  # redis is a dependency; its connection errors are transient too
    import redis.exceptions

    TRANSIENT = (*TRANSIENT, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
except ImportError:  # pragma: no cover
    pass

_BACKOFF_BASE = 2  # seconds: 2, 4, 8, 16, 32 ...
_BACKOFF_MAX = 300


class _Retry(retry.BaseRetryStrategy):
    """Transient errors: exponential backoff up to ``max_attempts`` runs; a job cut off by
    its worker's shutdown: again at once. Everything else: no retry (failed)."""

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts

    def get_retry_decision(
        self, *, exception: BaseException, job: Job
    ) -> retry.RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError | queue_errors.JobAborted):
            return retry.RetryDecision(retry_in={"seconds": 0})
        if not isinstance(exception, TRANSIENT) or job.attempts + 1 >= self.max_attempts:
            return None
        wait = min(_BACKOFF_MAX, _BACKOFF_BASE ** (job.attempts + 1))
        return retry.RetryDecision(retry_in={"seconds": wait})


def public_error(exc: BaseException) -> str:
    """The one line a failed job shows: ``JobFailed``'s message, else the error's kind."""
    if isinstance(exc, JobFailed):
        return str(exc).splitlines()[0][:500] if str(exc) else "failed"
    if isinstance(exc, TRANSIENT):
        return f"temporarily unavailable ({type(exc).__name__}); retried with backoff"
    return f"internal error ({type(exc).__name__})"


class _Run:
    """The ``JobRun`` a job's coroutine gets."""

    def __init__(self, queue: JobQueue, job: Job, args: Mapping[str, Any]) -> None:
        self.queue = queue
        self.job = job
        self._args = dict(args)
        self._last = 0.0

    @property
    def job_id(self) -> int:
        assert self.job.id is not None
        return self.job.id

    @property
    def args(self) -> Mapping[str, Any]:
        return self._args

    @property
    def attempt(self) -> int:
        return self.job.attempts

    async def progress(self, done: int, total: int, **detail: Any) -> None:
        await self.queue.record_progress(self.job_id, done, total, **detail)


_STARTED = """
INSERT INTO job_state (job_id, kind, started_at) VALUES (:job, :kind, now())
ON CONFLICT (job_id) DO UPDATE SET started_at = now(), finished_at = NULL, error = NULL
"""


class JobQueue:
    """The app's job queue: defer jobs, run a worker, read and write job state."""

    def __init__(
        self,
        url: str,
        settings: JobsSettings,
        kinds: Sequence[JobKind],
        *,
        session_factory: async_sessionmaker[AsyncSession],
        metrics: Any = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.metrics = metrics
        self.connector = procrastinate.PsycopgConnector(
            conninfo=libpq_dsn(url),
            min_size=0,
            max_size=settings.concurrency + 3,  # jobs' bookkeeping, heartbeat, LISTEN, defer
            kwargs={"application_name": "tgstats-jobs"},
        )
        self.app = procrastinate.App(connector=self.connector)
        self.kinds: dict[str, JobKind] = {}
        for kind in kinds:
            self.register(kind)
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._stalled_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._opened = False

    # ------------------------------------------------------------------ kinds

    def register(self, kind: JobKind) -> None:
        if kind.name in self.kinds:
            raise ValueError(f"two job kinds named {kind.name!r}")
        self.kinds[kind.name] = kind
        queue = self

        async def run(context: job_context.JobContext, /, **args: Any) -> None:
            await queue._run(kind, context.job, args)

        run.__name__ = run.__qualname__ = kind.name.replace(".", "_")
        task = self.app.task(
            name=kind.name,
            pass_context=True,
            queue=kind.queue,
            queueing_lock=kind.queueing_lock,
            retry=_Retry(kind.max_attempts),
        )(run)
        if kind.schedule is not None:
            # A periodic task also gets the tick's ``timestamp`` (dropped from ``args``).
            periodic: Any = self.app.periodic(cron=kind.schedule, periodic_id=kind.name)
            periodic(task)

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        await self.app.open_async()
        self._opened = True

    async def close(self) -> None:
        await self.stop_worker()
        if self._opened:
            self._opened = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.app.close_async(), 10)

    def start_worker(self, queues: Iterable[str] | None = None, *, name: str = "tgstats") -> None:
        """Run a worker in this event loop until ``stop_worker``."""
        if self._worker_task is not None:
            return
        self._stopping = False
        s = self.settings
        self._worker = Worker(
            app=self.app,
            queues=list(queues) if queues is not None else None,
            name=name,
            concurrency=s.concurrency,
            fetch_job_polling_interval=s.poll_seconds,
            abort_job_polling_interval=max(s.poll_seconds, 5.0),
            shutdown_graceful_timeout=s.shutdown_timeout,
            install_signal_handlers=False,
            update_heartbeat_interval=s.heartbeat_seconds,
            stalled_worker_timeout=s.stalled_seconds,
        )
        self._worker_task = asyncio.create_task(self._work(self._worker), name="tgstats-jobs")
        self._stalled_task = asyncio.create_task(self._watch_stalled(), name="tgstats-stalled")

    async def _work(self, worker: Worker) -> None:
        delay = 1.0
        untyped: Any = worker  # procrastinate's Worker methods carry no annotations
        while True:
            started = time.monotonic()
            try:
                await untyped.run()
                if self._stopping:
                    return
                # A side task (heartbeat, LISTEN) failed, e.g. the database went away.
                log.warning("job worker stopped by itself; starting again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: start again once it is back
                log.warning("job worker stopped (%s); starting again", type(exc).__name__)
            if self._stopping:
                return
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 30.0)
            await asyncio.sleep(delay)

    async def stop_worker(self) -> None:
        """Stop the worker: running jobs get ``JOBS_SHUTDOWN_TIMEOUT``; bounded either way."""
        stalled, self._stalled_task = self._stalled_task, None
        if stalled is not None:
            stalled.cancel()
            await asyncio.gather(stalled, return_exceptions=True)
        self._stopping = True
        task, worker = self._worker_task, self._worker
        self._worker_task = self._worker = None
        if task is None or worker is None:
            return
        untyped: Any = worker
        untyped.stop()
        done, _ = await asyncio.wait({task}, timeout=self.settings.shutdown_timeout + 5.0)
        if not done:
            log.warning("job worker did not stop in time; cancelling it")
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("job worker ended with %s", type(task.exception()).__name__)

    @property
    def worker_running(self) -> bool:
        return self._worker_task is not None and not self._worker_task.done()

    # ------------------------------------------------------------------ stalled jobs

    async def _watch_stalled(self) -> None:
        every = max(self.settings.heartbeat_seconds, 0.5)
        while True:
            await asyncio.sleep(every)
            try:
                await self.retry_stalled()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("stalled job check failed (%s)", type(exc).__name__)

    async def retry_stalled(self) -> list[int]:
        """Put jobs whose worker stopped heartbeating back in the queue; their ids."""
        manager = self.app.job_manager
        seconds = self.settings.stalled_seconds
        retried: list[int] = []
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
            try:
                await manager.retry_job(job)
            except queue_errors.ConnectorException:
                continue  # another worker put it back first
            assert job.id is not None
            retried.append(job.id)
            log.warning(
                "job %s (%s) was running on a worker that died; queued again",
                job.id,
                job.task_name,
            )
        await manager.prune_stalled_workers(seconds)
        return retried

    # ------------------------------------------------------------------ defer

    async def defer_in(
        self,
        session: AsyncSession,
        kind: str,
        args: Mapping[str, Any] | None = None,
        *,
        chat_id: int | None = None,
        lock: str | None = None,
        queueing_lock: str | None = None,
        public_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Queue a job in ``session``'s transaction (the caller commits); its id, or None
        when a job with the same queueing lock is waiting already."""
        spec = self.kinds[kind]
        return await defer_job(
            session, kind, args, queue=spec.queue, lock=lock,
            queueing_lock=queueing_lock if queueing_lock is not None else spec.queueing_lock,
            chat_id=chat_id, public_id=public_id, detail=detail,
        )  # fmt: skip

    async def defer(
        self,
        kind: str,
        args: Mapping[str, Any] | None = None,
        *,
        chat_id: int | None = None,
        lock: str | None = None,
        queueing_lock: str | None = None,
        public_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int | None:
        """``defer_in`` in a transaction of its own."""
        async with self.session_factory() as session:
            job_id = await self.defer_in(
                session, kind, args, chat_id=chat_id, lock=lock, queueing_lock=queueing_lock,
                public_id=public_id, detail=detail,
            )  # fmt: skip
            await session.commit()
        return job_id

    # ------------------------------------------------------------------ running

    async def _run(self, kind: JobKind, job: Job, args: Mapping[str, Any]) -> None:
        assert job.id is not None
        started = time.monotonic()
        await self._write(_STARTED, job=job.id, kind=kind.name)
        run = _Run(self, job, {k: v for k, v in args.items() if k != "timestamp"})
        outcome = "succeeded"
        try:
            await kind.run(run)
        except asyncio.CancelledError:
            outcome = "interrupted"
            raise
        except BaseException as exc:
            final = not isinstance(exc, TRANSIENT) or job.attempts + 1 >= kind.max_attempts
            outcome = "failed" if final else "retrying"
            if final and not isinstance(exc, JobFailed):
                log.error(
                    "job %s (%s) failed: %s", job.id, kind.name, type(exc).__name__,
                    exc_info=not isinstance(exc, TRANSIENT),
                )  # fmt: skip
            with contextlib.suppress(Exception):
                await self._write(
                    "UPDATE job_state SET error = :error,"
                    " finished_at = CASE WHEN :final THEN now() END WHERE job_id = :job",
                    job=job.id, error=public_error(exc), final=final,
                )  # fmt: skip
            if final and not isinstance(exc, JobFailed):
                # Procrastinate logs the exception it gets: give it the one line only.
                raise JobFailed(public_error(exc)) from None
            raise
        else:
            await self._write(
                "UPDATE job_state SET finished_at = now(), error = NULL,"
                " done = greatest(done, total) WHERE job_id = :job",
                job=job.id,
            )
        finally:
            if self.metrics is not None:
                self.metrics.record_job(kind.name, outcome, time.monotonic() - started)

    async def _write(self, sql: str, **params: Any) -> None:
        async with self.session_factory() as session:
            await session.execute(text(sql), params)
            await session.commit()

    async def record_progress(self, job_id: int, done: int, total: int, **detail: Any) -> None:
        await self._write(
            "UPDATE job_state SET done = :done, total = :total,"
            " detail = detail || CAST(:detail AS jsonb) WHERE job_id = :job",
            job=job_id, done=done, total=total, detail=msgspec.json.encode(detail).decode(),
        )  # fmt: skip

    # ------------------------------------------------------------------ housekeeping

    async def delete_old_jobs(self, keep_days: int) -> int:
        """Finished jobs older than ``keep_days`` (and their state) are deleted."""
        cutoff = datetime.now(UTC) - timedelta(days=keep_days)
        async with self.session_factory() as session:
            gone = (
                (
                    await session.execute(
                        text(
                            "DELETE FROM procrastinate_jobs j USING job_state s"
                            " WHERE s.job_id = j.id AND s.finished_at < :cut"
                            " AND j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')"
                            " RETURNING j.id"
                        ),
                        {"cut": cutoff},
                    )
                )
                .scalars()
                .all()
            )
            await session.execute(
                text(
                    "DELETE FROM job_state s WHERE s.created_at < :cut"
                    " AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.id = s.job_id)"
                ),
                {"cut": cutoff},
            )
            await session.commit()
        return len(gone)
