"""Fixtures for the pipeline tests: a started ``EventPipeline`` on the test database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tgstats.db.engine import Database
from tgstats.pipeline import EventPipeline
from tgstats.settings import PipelineSettings


@pytest.fixture
def make_pipeline(db: Database) -> Callable[..., Any]:
    """``async with make_pipeline(**settings) as pipeline:`` — started, stopped at exit."""

    @asynccontextmanager
    async def build(
        *, observers: Any = (), on_commit: Any = None, metrics: Any = None,
        session_factory: Any = None, default_timezone: str = "UTC", **settings: Any,
    ) -> AsyncIterator[EventPipeline]:  # fmt: skip
        settings.setdefault("flush_interval_ms", 20)
        settings.setdefault("retry_max_backoff", 0.5)
        pipeline = EventPipeline(
            session_factory=session_factory or db.session_factory,
            settings=PipelineSettings(**settings),
            metrics=metrics,
            observers=observers,
            on_commit=on_commit,
            default_timezone=default_timezone,
        )
        await pipeline.start()
        try:
            yield pipeline
        finally:
            await pipeline.stop(give_up_after=30)

    return build
