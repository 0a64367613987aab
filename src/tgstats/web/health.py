"""Health and metrics endpoints.

- ``/health``: version and uptime; ``/health/live``: the process answers.
- ``/health/startup``: 200 once the lifespan finished starting, 503 before.
- ``/health/ready``: the database answers, the pipeline is writing, and every
  plugin's ``health`` hook is ok (a *degraded* check, like Redis down, is shown
  but does not fail readiness). 503 names the failed checks.
- ``/health/stats``: pool, pipeline queue depth, plugin states; for operators only:
  ``METRICS_TOKEN`` as a bearer token, or the admin token.
- ``/health/plugins``: every discovered plugin with version, state and load error;
  operators only, as ``/health/stats``.
- ``/metrics``: Prometheus text; bearer-token protected when ``METRICS_TOKEN`` is set.

Wrong bearer tokens at ``/metrics``, ``/health/stats`` and ``/health/plugins`` count toward the
sign-in failure limit of their address (``tgstats.web.auth``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from sqlalchemy import text

from tgstats import __version__
from tgstats.plugin_api import HealthCheck
from tgstats.web.auth import (
    presented_token,
    provide_principal,
    require_admin,
    require_operator_token,
    secret_matches,
)

__all__ = ["HealthController", "metrics_endpoint"]

DB_CHECK_TIMEOUT = 2.0


async def _database_check(state: State) -> HealthCheck:
    database = getattr(state, "database", None)
    if database is None:
        return HealthCheck(name="database", ok=False, detail="not connected")
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT), database.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return HealthCheck(name="database", ok=False, detail=f"unreachable ({type(exc).__name__})")
    return HealthCheck(name="database", ok=True)


def _pipeline_check(state: State) -> HealthCheck:
    pipeline = getattr(state, "pipeline", None)
    if pipeline is None:
        return HealthCheck(name="pipeline", ok=False, detail="not running")
    if not pipeline.healthy:
        return HealthCheck(
            name="pipeline", ok=False, detail=pipeline.last_error or "batches failing"
        )
    return HealthCheck(name="pipeline", ok=True, detail=f"queue depth {pipeline.queue_depth}")


def _as_dict(check: HealthCheck) -> dict[str, Any]:
    status = "ok" if check.ok else ("degraded" if check.degraded else "failed")
    return {"name": check.name, "status": status, "detail": check.detail}


async def _require_operator(request: Request[Any, Any, Any], state: State) -> None:
    """``METRICS_TOKEN`` (when set) or whatever the API accepts as the admin."""
    metrics_token = state.settings.metrics.token
    supplied = presented_token(request)
    if metrics_token and supplied and secret_matches(supplied, metrics_token.get()):
        await require_operator_token(request, metrics_token.get())  # the lockout still applies
        return
    require_admin(await provide_principal(request))


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    include_in_schema = True

    @get("/", summary="Service status")
    async def health(self, state: State) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.monotonic() - state.started_monotonic, 1),
        }

    @get("/live", summary="Liveness")
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/startup", summary="Startup finished")
    async def startup(self, state: State) -> Response[dict[str, str]]:
        if getattr(state, "startup_complete", False):
            return Response({"status": "ok"})
        return Response({"status": "starting"}, status_code=503)

    @get("/ready", summary="Readiness: database, pipeline, plugins")
    async def ready(self, state: State) -> Response[dict[str, Any]]:
        checks = [await _database_check(state), _pipeline_check(state)]
        host = getattr(state, "plugin_host", None)
        if host is not None:
            checks.extend(await host.health_checks())
        failed = [c for c in checks if not c.ok and not c.degraded]
        body: dict[str, Any] = {
            "status": "ready" if not failed else "unavailable",
            "failed": [c.name for c in failed],
            "checks": [_as_dict(c) for c in checks],
        }
        warning = getattr(state, "proxy_warning", None)
        if warning:
            body["warnings"] = [warning]
        return Response(body, status_code=200 if not failed else 503)

    @get("/stats", summary="Pool, pipeline and plugin figures (METRICS_TOKEN or admin token)")
    async def stats(self, request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
        await _require_operator(request, state)
        database = getattr(state, "database", None)
        pipeline = getattr(state, "pipeline", None)
        host = getattr(state, "plugin_host", None)
        return {
            "db_pool": database.pool_status() if database is not None else None,
            "pipeline": {
                "queue_depth": pipeline.queue_depth if pipeline is not None else None,
                "healthy": pipeline.healthy if pipeline is not None else False,
            },
            "plugins": {r["id"]: r["state"] for r in host.describe()} if host is not None else {},
        }

    @get("/plugins", summary="Discovered plugins with versions and state (METRICS_TOKEN or admin)")
    async def plugins(self, request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
        # Versions and load errors tell an attacker what to look for: operators only.
        await _require_operator(request, state)
        host = getattr(state, "plugin_host", None)
        return {"plugins": host.describe() if host is not None else []}


@get("/metrics", include_in_schema=False, media_type="text/plain; version=0.0.4; charset=utf-8")
async def metrics_endpoint(request: Request[Any, Any, Any], state: State) -> bytes:
    token = state.settings.metrics.token
    if token:
        await require_operator_token(request, token.get())
    body: bytes = state.telemetry.render()
    return body
