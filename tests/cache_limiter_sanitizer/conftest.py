"""Fixtures for the cache, rate-limit and sanitizer plugin tests.

``private_redis`` runs a Redis of this test's own on a free port, so an outage
test can stop and start it without touching the shared one at :6379.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.private_redis import PrivateRedis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
