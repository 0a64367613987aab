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

ENABLED = os.environ.get("TGSTATS_IMAGE") == "1"
HERE = Path(__file__).parent
REPO_ROOT = HERE.parent.parent
RESULT_LINES: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    ours = [item for item in items if HERE in Path(str(item.fspath)).parents]
    if ours:
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if item not in ours]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULT_LINES:
        return
    terminalreporter.section("container image")
    for line in RESULT_LINES:
        terminalreporter.write_line(line)
    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "image.txt").write_text("\n".join(RESULT_LINES) + "\n")
