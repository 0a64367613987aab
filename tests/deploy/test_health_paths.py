"""The health paths the chart probes and the Containerfile checks are served by the app."""

from __future__ import annotations

import pytest

from tests.deploy.support import HEALTH_PATHS


def test_app_serves_every_health_path() -> None:
    app_module = pytest.importorskip(
        "tgstats.app", reason="tgstats.app (create_app) is not written yet"
    )
    from tgstats.settings import Settings

    settings = Settings.from_env({"ADMIN_API_TOKEN": "health-paths-test"}, env_file=None)
    app = app_module.create_app(settings)
    served = {route.path for route in app.routes}
    assert HEALTH_PATHS <= served, f"not served: {sorted(HEALTH_PATHS - served)}"
    assert "/metrics" in served
