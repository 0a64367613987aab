"""Fixtures for the deployment checks (chart, Containerfile)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.support import CHART_DIR, CI_VALUES_DIR, helm, load_values_file


@pytest.fixture(scope="session")
def minimal_values() -> dict[str, Any]:
    return load_values_file(CI_VALUES_DIR / "minimal-values.yaml")


@pytest.fixture(scope="session")
def chart_metadata() -> Iterator[dict[str, Any]]:
    with helm.Chart.load(CHART_DIR) as chart:
        yield chart.metadata
