"""A test-only plugin that makes a ``tgstats bot`` process trust the test data centre's key.

Importing this module registers the public key in ``TGSTATS_TEST_DC_KEY`` with
kurigram (``keys.register_from_env``); the host imports every plugin before any
lifespan runs, so the key is known before the Telegram client connects. The
suite installs it as a distribution made on the fly
(``write_key_distribution``), the way a third-party plugin is installed; it
never ships with the product.
"""

from __future__ import annotations

from pathlib import Path

from tests.wire.keys import register_from_env
from tgstats.plugin_api import Plugin

__all__ = ["TestDataCentreKey", "write_key_distribution"]

DIST_NAME = "tgstats-test-dc-key"

register_from_env()


class TestDataCentreKey(Plugin):
    """Does nothing at run time: importing it is the point."""

    id = "test_dc_key"
    version = "1.0.0"


def write_key_distribution(root: Path) -> Path:
    """Install this plugin into ``root`` (put it and the repo root on ``PYTHONPATH``)."""
    dist_info = root / f"{DIST_NAME.replace('-', '_')}-1.0.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: 1.0.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[tgstats.plugins]\ntest_dc_key = tests.wire.key_plugin:TestDataCentreKey\n"
    )
    (dist_info / "RECORD").write_text("")
    return root
