"""A real streaming replica behind ``DATABASE_READ_URL`` (``nox -s replica``).

Runs only when ``TGSTATS_REPLICA=1``: it makes a throwaway primary with ``initdb`` and a
replica with ``pg_basebackup -R`` (PostgreSQL's own binaries) and starts both, so the
default ``pytest`` run deselects it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.opt_in_suite import deselect_unless

ENABLED = os.environ.get("TGSTATS_REPLICA") == "1"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_unless(ENABLED, HERE, config, items)
