"""``create_app(settings) -> Litestar``: the app owns lifecycle and dependency injection.

Everything that lives longer than a request is opened in ``lifespan`` below,
kept on ``app.state`` and in the ``ServiceRegistry`` (``app.state.services``),
closed in ``finally``, and handed to handlers through ``Provide`` under stable
keys: ``db_session`` (writes), ``stats_session`` (reads; the replica when
``DATABASE_READ_URL`` is set), ``settings``, ``meter``, ``metrics``, ``cache``,
``rate_limiter``, ``sanitizer``, ``events``, ``services``.

Start order: database -> job queue -> event pipeline -> plugins (in dependency
order) -> job worker. Stop order is the reverse, so the worker stops (running jobs
get ``JOBS_SHUTDOWN_TIMEOUT``) before the plugins whose services its jobs use, the
Telegram client stops feeding events before the pipeline flushes its queue, and the
pipeline flushes before the queue's connections and the engine close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from litestar import Litestar, Request
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats import __version__
from tgstats.db.engine import Database, open_database, run_migrations
from tgstats.fallbacks import NoCache, PlainSanitizer
from tgstats.jobs import DEFAULT_QUEUE
from tgstats.logs import configure_logging
from tgstats.plugin_api import Event, Plugin, ServiceRegistry
from tgstats.plugin_host import PluginHost, PluginLoadError, load_plugins
from tgstats.settings import Settings
from tgstats.telemetry import Telemetry, open_telemetry
from tgstats.timezones import learn_database_timezones
from tgstats.web.api import api_controllers
from tgstats.web.dashboard import dashboard_routes
from tgstats.web.errors import exception_handlers
from tgstats.web.health import HealthController, metrics_endpoint
from tgstats.web.imports import imports_controller
from tgstats.web.jobs import JobsController
from tgstats.web.middleware import RequestContextMiddleware, close_at_request_end
from tgstats.web.openapi_errors import document_error_responses
from tgstats.web.response_cache import ResponseCache
from tgstats.web.security import require_body_media_type, security_middlewares
from tgstats.web.tokens import ChatTokenController, ShareLinkController, end_sessions

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger(__name__)

# The active chats gauge is recounted after a committed batch (at most once a second) and
# at least this often; its callback is synchronous, so it reads a count kept here.
ACTIVE_CHATS_REFRESH = 30.0
ACTIVE_CHATS_MIN_INTERVAL = 1.0
JOBS_GAUGE_REFRESH = 10.0


# --------------------------------------------------------------------------- providers


async def provide_db_session(
    state: State, request: Request[Any, Any, Any]
) -> AsyncGenerator[AsyncSession, None]:
    async with state.database.session_factory() as session:
        close_at_request_end(request.scope, session)
        yield session


async def provide_stats_session(
    state: State, request: Request[Any, Any, Any]
) -> AsyncGenerator[AsyncSession, None]:
    factory = await state.database.stats_factory()
    async with factory() as session:
        close_at_request_end(request.scope, session)
        yield session


def _service(key: str, fallback: Callable[[], Any] | None = None) -> Callable[[State], Any]:
    def provide(state: State) -> Any:
        service = state.services.get(key)
        if service is None and fallback is not None:
            return fallback()
        return service

    provide.__name__ = f"provide_{key}"
    return provide


def _provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def _provide_services(state: State) -> ServiceRegistry:
    services: ServiceRegistry = state.services
    return services


_NO_CACHE = NoCache()
_PLAIN_SANITIZER = PlainSanitizer()


def _dependencies() -> dict[str, Provide]:
    return {
        "db_session": Provide(provide_db_session),
        "stats_session": Provide(provide_stats_session),
        "settings": Provide(_provide_settings, sync_to_thread=False),
        "meter": Provide(_service("meter"), sync_to_thread=False),
        "metrics": Provide(_service("metrics"), sync_to_thread=False),
        "cache": Provide(_service("cache", lambda: _NO_CACHE), sync_to_thread=False),
        "rate_limiter": Provide(_service("rate_limiter"), sync_to_thread=False),
        "sanitizer": Provide(_service("sanitizer", lambda: _PLAIN_SANITIZER), sync_to_thread=False),
        "events": Provide(_service("events"), sync_to_thread=False),
        "services": Provide(_provide_services, sync_to_thread=False),
    }


# --------------------------------------------------------------------------- lifespan


def _observer(plugin: Plugin) -> Callable[[Sequence[Event]], Awaitable[None]]:
    async def observe(events: Sequence[Event]) -> None:
        await plugin.on_events(events=events)

    observe.__qualname__ = f"{type(plugin).__name__}.on_events"
    return observe


def _observers(host: PluginHost) -> list[Callable[[Sequence[Event]], Awaitable[None]]]:
    return [_observer(p) for p in host.plugins if type(p).on_events is not Plugin.on_events]


async def _learn_timezones(database: Database) -> bool:
    """Narrow the accepted zone names to the database server's; False if it did not answer."""
    try:
        async with asyncio.timeout(10), database.engine.connect() as conn:
            await learn_database_timezones(conn)
    except Exception as exc:  # the server is down: Python's names stand until it answers
        log.warning("could not read pg_timezone_names yet (%s)", type(exc).__name__)
        return False
    return True


async def _refresh_active_chats(
    database: Database, holder: list[int], committed: asyncio.Event, zones_known: bool
) -> None:
    from tgstats.db.models import Chat

    while True:
        if not zones_known:
            zones_known = await _learn_timezones(database)
        committed.clear()
        try:
            async with database.session_factory() as session:
                holder[0] = int(
                    await session.scalar(
                        select(func.count()).select_from(Chat).where(Chat.bot_present)
                    )
                    or 0
                )
        except Exception:
            log.debug("active chats gauge refresh failed", exc_info=True)
        await asyncio.sleep(ACTIVE_CHATS_MIN_INTERVAL)
        try:
            await asyncio.wait_for(committed.wait(), ACTIVE_CHATS_REFRESH)
        except TimeoutError:
            pass


async def _count_jobs(database: Database, holder: dict[tuple[str, str], int]) -> None:
    """Keep the queue depth gauge's numbers (jobs queued or running, by kind) fresh."""
    from tgstats.jobs.state import queue_counts

    while True:
        try:
            async with database.session_factory() as session:
                counts = await queue_counts(session)
            holder.clear()
            holder.update(counts)
        except Exception:
            log.debug("job count refresh failed", exc_info=True)
        await asyncio.sleep(JOBS_GAUGE_REFRESH)


@asynccontextmanager
async def _plugin_lifespan(host: PluginHost, plugin: Plugin, app: Litestar) -> AsyncIterator[None]:
    record = host.record_for(plugin)
    cm: AbstractAsyncContextManager[None] = plugin.lifespan(app=app)
    try:
        await cm.__aenter__()
    except Exception as exc:
        record.state = "failed"
        record.error = f"{type(exc).__name__}: {exc}"[:500]
        raise PluginLoadError(f"{record.culprit()} failed to start: {record.error}") from exc
    record.state = "running"
    try:
        yield
    finally:
        try:
            await cm.__aexit__(None, None, None)
        except Exception:
            log.exception("%s failed to stop cleanly", record.culprit())
        record.state = "stopped"


def _make_lifespan(
    settings: Settings, host: PluginHost, telemetry: Telemetry
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        state = app.state
        services: ServiceRegistry = state.services
        async with AsyncExitStack() as stack:
            url = settings.database.url.get() if settings.database.url else None
            if url is None:
                from tgstats.db.embedded import start_embedded_postgres

                embedded = await asyncio.to_thread(
                    start_embedded_postgres, settings.server.data_dir
                )
                stack.callback(embedded.stop)
                url = embedded.url
                await run_migrations(url)
            database = open_database(
                url, settings.database, query_timer=telemetry.metrics.record_query
            )
            stack.push_async_callback(database.dispose)
            state.database = database
            services.register("database", database)
            services.register("session_factory", database.session_factory)
            services.register("read_session_factory", database.stats_session_factory)
            telemetry.metrics.db_connections_source = lambda: {
                state: count
                for state, count in database.pool_status().items()
                if state in {"checked_out", "checked_in", "overflow", "total"}
            }

            from tgstats.jobs.builtin import core_job_kinds
            from tgstats.jobs.queue import JobQueue

            jobs = JobQueue(
                url,
                settings.jobs,
                [*core_job_kinds(settings, services), *host.job_kinds()],
                session_factory=database.session_factory,
                metrics=telemetry.metrics,
            )
            await jobs.open()
            stack.push_async_callback(jobs.close)
            state.jobs = jobs
            services.register("jobs", jobs)

            from tgstats.pipeline import EventPipeline

            batch_committed = asyncio.Event()

            from tgstats.pipeline.summaries import ChatSummaries

            # The chat list's order: the chats of each batch, and a pass over all of them.
            summaries = ChatSummaries(
                database.session_factory,
                default_timezone=settings.privacy.default_timezone,
                metrics=telemetry.metrics,
            )
            summaries.start()
            stack.push_async_callback(summaries.stop)
            services.register("chat_summaries", summaries)

            async def bump_cache_versions(chat_ids: set[int]) -> None:
                batch_committed.set()  # the active chats gauge may have changed
                summaries.note(chat_ids)
                cache = services.get("cache")
                if cache is not None:
                    await cache.bump_data_version(sorted(chat_ids))

            pipeline = EventPipeline(
                session_factory=database.session_factory,
                settings=settings.pipeline,
                metrics=telemetry.metrics,
                observers=_observers(host),
                on_commit=bump_cache_versions,
                default_timezone=settings.privacy.default_timezone,
            )
            await pipeline.start()
            stack.push_async_callback(pipeline.stop)
            state.pipeline = pipeline
            services.register("events", pipeline.sink)
            services.register("pipeline", pipeline)
            telemetry.metrics.queue_depth_source = lambda: pipeline.queue_depth

            zones_known = await _learn_timezones(database)
            active_chats = [0]
            telemetry.metrics.active_chats_source = lambda: active_chats[0]
            refresher = asyncio.create_task(
                _refresh_active_chats(database, active_chats, batch_committed, zones_known)
            )

            async def stop_refresher() -> None:
                refresher.cancel()
                await asyncio.gather(refresher, return_exceptions=True)

            stack.push_async_callback(stop_refresher)
            queued: dict[tuple[str, str], int] = {}
            telemetry.metrics.jobs_source = lambda: queued
            counter = asyncio.create_task(_count_jobs(database, queued))

            async def stop_counter() -> None:
                counter.cancel()
                await asyncio.gather(counter, return_exceptions=True)

            stack.push_async_callback(stop_counter)

            services.register("commands", host.commands())
            for plugin in host.plugins:
                await stack.enter_async_context(_plugin_lifespan(host, plugin, app))
            if settings.jobs.worker:
                # Jobs that need the Telegram client go only where it runs.
                jobs.start_worker(None if settings.server.runs_bot else [DEFAULT_QUEUE])
                stack.push_async_callback(jobs.stop_worker)
            state.startup_complete = True
            log.info(
                "tgstats %s started (role=%s, plugins: %s)",
                __version__,
                settings.server.role,
                ", ".join(r.id for r in host.records if r.state == "running") or "none",
            )
            try:
                yield
            finally:
                state.startup_complete = False
                log.info("tgstats stopping: flushing the event queue")
        telemetry.shutdown()

    return lifespan


# --------------------------------------------------------------------------- routes


def _route_handlers(settings: Settings) -> list[Any]:
    handlers: list[Any] = [HealthController]
    if settings.server.serves_api:  # TGSTATS_ROLE=bot serves only health and metrics
        handlers += [
            *api_controllers(),
            ChatTokenController,
            ShareLinkController,
            end_sessions,
            imports_controller,
            JobsController,
            *dashboard_routes(settings),
        ]
    if settings.metrics.enabled:
        handlers.append(metrics_endpoint)
    return handlers


def _repair_options_allow(app: Litestar) -> None:
    """Make each automatic ``OPTIONS`` answer list every method of its path.

    Litestar (2.25) builds a path's ``OPTIONS`` handler with the first handler it
    meets, so ``GET`` and ``PATCH`` of one path in one controller answered
    ``Allow: GET, OPTIONS``. The handler reads ``methods`` of the route its
    closure holds; point it at the finished route and give that route every method.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or "OPTIONS" not in route.route_handler_map:
            continue
        handler_fn = route.route_handler_map["OPTIONS"][0].fn
        cells = dict(
            zip(handler_fn.__code__.co_freevars, handler_fn.__closure__ or (), strict=True)
        )
        if handler_fn.__name__ == "options_handler" and "self" in cells:
            route.methods = set(route.route_handler_map)
            cells["self"].cell_contents = route


def create_app(
    settings: Settings,
    *,
    plugins: Mapping[str, type[Plugin]] | None = None,
) -> Litestar:
    """Build the app for ``settings``.

    ``plugins`` adds plugin classes by id on top of the discovered entry points
    (tests and the plugin testing kit use it). Raises ``PluginLoadError`` naming
    the culprit when a required plugin cannot be loaded.
    """
    configure_logging(settings.logging, production=settings.server.is_production)
    telemetry = open_telemetry(
        __version__,
        otlp_endpoint=settings.metrics.otlp_endpoint,
        otlp_protocol=settings.metrics.otlp_protocol,
        otlp_interval_ms=settings.metrics.otlp_interval_ms,
    )
    services = ServiceRegistry()
    services.register("settings", settings)
    services.register("metrics", telemetry.metrics)
    services.register("meter", telemetry.meter)
    services.register("telemetry", telemetry)
    host = load_plugins(settings, services, extra=plugins, metrics=telemetry.metrics)

    state = State(
        {
            "settings": settings,
            "services": services,
            "telemetry": telemetry,
            "metrics": telemetry.metrics,
            "plugin_host": host,
            "startup_complete": False,
            "started_monotonic": time.monotonic(),
        }
    )
    cors = (
        CORSConfig(allow_origins=list(settings.api.cors_origins), allow_credentials=False)
        if settings.api.cors_origins
        else None
    )
    app = Litestar(
        route_handlers=_route_handlers(settings),
        dependencies=_dependencies(),
        plugins=host.plugins,
        lifespan=[_make_lifespan(settings, host, telemetry)],
        state=state,
        exception_handlers=exception_handlers,
        guards=[require_body_media_type],
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024),
        cors_config=cors,
        request_max_body_size=settings.api.max_request_size,
        openapi_config=OpenAPIConfig(
            title="tgstats",
            version=__version__,
            path="/schema",
            render_plugins=[JsonRenderPlugin(path="/")],  # no CDN-hosted UI
        ),
        debug=False,
        logging_config=None,  # tgstats.logs owns logging (JSON/console with request ids)
    )
    document_error_responses(app)  # the schema shows the app's one error format
    _repair_options_allow(app)
    if settings.server.serves_api and settings.cache.enabled:
        # Inside the security middleware: cached answers get the same limit and headers.
        app.asgi_handler = app.state.response_cache = ResponseCache(app.asgi_handler, settings)
    # Wrapped around the whole handler (not Litestar middleware) so 404s get the headers too.
    for middleware in reversed(security_middlewares(settings)):
        app.asgi_handler = middleware(app.asgi_handler)
    app.asgi_handler = RequestContextMiddleware(app.asgi_handler, telemetry.metrics)
    return app


def startup_failure_line(exc: BaseException) -> str:
    """One line for a failed start: the innermost cause anyio's task groups wrapped."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"tgstats could not start: {text}"


class OneLineStartupFailure:
    """Reports a failed lifespan start as one line, not Litestar's formatted traceback.

    Litestar sends ``lifespan.startup.failed`` with the whole traceback (an
    ``ExceptionGroup`` of ~140 lines when the Telegram login fails) and granian
    logs that message; the operator needs the one line that says what to fix.
    """

    def __init__(self, app: Litestar) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        failed = False

        async def send_one_line(message: Any) -> None:
            nonlocal failed
            if message["type"] == "lifespan.startup.failed":
                failed = True  # sent below, once the exception is known
                return
            await send(message)

        try:
            await self.app(scope, receive, send_one_line)
        except BaseException as exc:
            if not failed:
                raise
            await send({"type": "lifespan.startup.failed", "message": startup_failure_line(exc)})


def app_from_env() -> OneLineStartupFailure:
    """Granian's factory target: settings from the environment."""
    return OneLineStartupFailure(create_app(Settings.from_env()))
