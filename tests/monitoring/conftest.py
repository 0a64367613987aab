"""A real Prometheus scraping a real ``tgstats serve`` (``nox -s monitoring``).

Runs only when ``TGSTATS_MONITORING=1``: it starts processes (granian, Prometheus, an
OTLP collector) and waits for scrapes, so the default ``pytest`` run deselects it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENABLED = os.environ.get("TGSTATS_MONITORING") == "1"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    ours = [item for item in items if HERE in Path(str(item.fspath)).parents]
    if ours:
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if item not in ours]
