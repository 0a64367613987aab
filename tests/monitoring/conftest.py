"""A real Prometheus scraping a real ``tgstats serve`` (``nox -s monitoring``).

Runs only when ``TGSTATS_MONITORING=1``: it starts processes (granian, Prometheus, an
OTLP collector) and waits for scrapes, so the default ``pytest`` run deselects it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.opt_in_suite import deselect_unless

ENABLED = os.environ.get("TGSTATS_MONITORING") == "1"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_unless(ENABLED, HERE, config, items)
