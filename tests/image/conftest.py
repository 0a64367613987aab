"""The container image, built with podman/buildah and run (``nox -s image``).

Runs only when ``TGSTATS_IMAGE=1``: building takes minutes and needs root podman, so the
default ``pytest`` run deselects it. Each step's time and the image size are printed at
the end of the run and written to ``test-artifacts/image.txt``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.opt_in_suite import deselect_unless, report_result_lines

ENABLED = os.environ.get("TGSTATS_IMAGE") == "1"
HERE = Path(__file__).parent
REPO_ROOT = HERE.parent.parent
RESULT_LINES: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_unless(ENABLED, HERE, config, items)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    report_result_lines(terminalreporter, "container image", RESULT_LINES, "image.txt")
