"""The chart against checkov's Kubernetes policies (``nox -s chart_scan``).

Runs only when ``TGSTATS_CHART_SCAN=1``: checkov is installed by that session alone (it is
large and pins its own dependencies), so the default ``pytest`` run deselects it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.opt_in_suite import deselect_unless

ENABLED = os.environ.get("TGSTATS_CHART_SCAN") == "1"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_unless(ENABLED, HERE, config, items)
