"""Hooks shared by the suites that run only when their nox session asks (resilience, image,
monitoring): they start real processes for minutes, so the default ``pytest`` run deselects them,
and the ones that report print their result lines at the end and keep them in ``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def deselect_unless(
    enabled: bool, suite_dir: Path, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Drop the items under ``suite_dir`` from the run (reported as deselected) unless enabled."""
    if enabled:
        return
    ours = [item for item in items if suite_dir in Path(str(item.fspath)).parents]
    if ours:
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if item not in ours]


def report_result_lines(
    terminalreporter: Any, title: str, lines: list[str], artifact_name: str
) -> None:
    """Print the suite's one-line results under ``title`` and write them to test-artifacts/."""
    if not lines:
        return
    terminalreporter.section(title)
    for line in lines:
        terminalreporter.write_line(line)
    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / artifact_name).write_text("\n".join(lines) + "\n")
