"""Granian targets for ``bench/http.py``: the bare ceiling and the full app.

Run by granian from the repository root as ``bench.http_targets:<factory>``.
Configuration comes from the environment the benchmark sets.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.config.app import AppConfig

from tgstats.app import create_app
from tgstats.plugin_api import Plugin, cached
from tgstats.settings import Settings
from tgstats.web.auth import Principal, auth_dependencies, ensure_chat_access

STANDIN_PATH = "/bench/chats/{chat_id:int}/summary"


class StandinSummary(msgspec.Struct, frozen=True):
    chat_id: int
    messages: int
    active_users: int
    average_dau: float
    top_words: list[str]


@get(STANDIN_PATH, dependencies=auth_dependencies())
async def standin_summary(
    chat_id: int, principal: Principal, request: Request[Any, Any, Any]
) -> StandinSummary:
    """The real auth + cache stack around a fixed answer (the stats API was not there yet).

    One dependency only: Litestar resolves two or more dependencies of one level
    in an anyio task group, which costs more than auth, limiter and cache together.
    """
    ensure_chat_access(principal, chat_id)
    cache = request.app.state.services.get("cache")

    async def compute() -> StandinSummary:
        return StandinSummary(chat_id, 12345, 321, 45.6, ["hello", "world", "stats"])

    return await cached(cache, "benchsummary", "30d", StandinSummary, compute, chat_id=chat_id)


class StandinPlugin(Plugin):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(standin_summary)
        return app_config


def full_app() -> Litestar:
    """The whole tgstats app with auth, rate limiter and cache on (Settings from env)."""
    return create_app(Settings.from_env(), plugins={"benchstandin": StandinPlugin})


def bare_app() -> Litestar:
    """Endpoints returning fixed JSON bytes: the ceiling for this server and machine.

    ``BENCH_BODIES`` maps each route template to a file with the bytes to answer.
    """
    bodies: dict[str, str] = json.loads(os.environ["BENCH_BODIES"])
    handlers = [
        _bare_handler(path, Path(body_file).read_bytes(), f"bare{index}")
        for index, (path, body_file) in enumerate(bodies.items())
    ]
    return Litestar(handlers)


def _bare_handler(path: str, body: bytes, name: str) -> Any:
    def bare() -> Response[bytes]:
        return Response(body, media_type="application/json")

    return get(path, sync_to_thread=False, name=name)(bare)
