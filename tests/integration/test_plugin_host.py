"""The plugin host loads third-party plugins exactly as built-in ones: through entry points."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.fake_dist import write_distribution
from tgstats.app import create_app
from tgstats.plugin_host import PluginLoadError

PLUGINS = """
from contextlib import asynccontextmanager
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath
from tgstats.plugin_api import HealthCheck, Plugin

STARTED = []

class Greeter(Plugin):
    version = "2.0.0"
    provides = ("greeter",)
    priority = 500

    @asynccontextmanager
    async def lifespan(self, *, app):
        STARTED.append("beta")
        self.services.register("greeter", lambda name: f"hello {name}")
        yield
        self.services.unregister("greeter")

class Consumer(Plugin):
    requires = ("greeter",)
    priority = 1  # would run first by priority; requires must win

    def on_app_init(self, app_config):
        @get("/hello/{name:str}")
        async def hello(name: FromPath[str], services: NamedDependency[object]) -> dict:
            return {"text": services.get("greeter")(name)}
        app_config.route_handlers.append(hello)
        return app_config

    @asynccontextmanager
    async def lifespan(self, *, app):
        assert self.services.get("greeter") is not None, "started before what it requires"
        STARTED.append("alpha")
        yield

    async def health(self):
        return HealthCheck(name="alpha", ok=True, detail="fine")

class OldApi(Plugin):
    api_version = 0
"""


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for mod in [m for m in sys.modules if m.startswith("tgstats_testdist")]:
        del sys.modules[mod]


async def test_entry_point_plugin_is_discovered_ordered_and_shown(
    plugin_dist: Path, make_settings, app_client, db, admin_headers
) -> None:
    write_distribution(
        plugin_dist,
        "tgstats-testdist",
        "1.4.2",
        {"tgstats_testdist_a": PLUGINS},
        {"alpha": "tgstats_testdist_a:Consumer", "beta": "tgstats_testdist_a:Greeter"},
    )
    settings = make_settings(PLUGINS_DISABLED="mtproto")
    async with app_client(settings) as client:
        import tgstats_testdist_a as mod

        assert mod.STARTED == ["beta", "alpha"]
        assert (await client.get("/hello/ann")).json() == {"text": "hello ann"}
        plugins = {
            p["id"]: p
            for p in (await client.get("/health/plugins", headers=admin_headers)).json()["plugins"]
        }
        assert plugins["alpha"]["state"] == "running"
        assert plugins["alpha"]["distribution"] == "tgstats-testdist"
        assert plugins["alpha"]["distribution_version"] == "1.4.2"
        assert plugins["beta"]["version"] == "2.0.0"
        assert plugins["mtproto"]["state"] == "disabled"
        ready = (await client.get("/health/ready")).json()
        assert {"name": "alpha", "status": "ok", "detail": "fine"} in ready["checks"]


def test_broken_plugin_stops_startup_naming_it(plugin_dist: Path, make_settings) -> None:
    write_distribution(
        plugin_dist,
        "tgstats-testdist-broken",
        "0.3.1",
        {"tgstats_testdist_b": "raise ImportError('missing dependency foo')\n"},
        {"broken": "tgstats_testdist_b:Nope"},
    )
    with pytest.raises(PluginLoadError) as info:
        create_app(make_settings())
    message = str(info.value)
    assert "'broken'" in message and "tgstats-testdist-broken 0.3.1" in message
    assert "missing dependency foo" in message


def test_optional_broken_plugin_is_skipped(plugin_dist: Path, make_settings) -> None:
    write_distribution(
        plugin_dist,
        "tgstats-testdist-broken2",
        "0.1.0",
        {"tgstats_testdist_c": "raise RuntimeError('boom')\n"},
        {"flaky": "tgstats_testdist_c:Nope"},
    )
    app = create_app(make_settings(PLUGINS_OPTIONAL="flaky"))
    records = {r["id"]: r for r in app.state.plugin_host.describe()}
    assert records["flaky"]["state"] == "skipped"
    assert "boom" in records["flaky"]["error"]


def test_disabled_plugin_is_not_loaded(plugin_dist: Path, make_settings) -> None:
    write_distribution(
        plugin_dist,
        "tgstats-testdist-broken3",
        "0.1.0",
        {"tgstats_testdist_d": "raise RuntimeError('never imported')\n"},
        {"off": "tgstats_testdist_d:Nope"},
    )
    app = create_app(make_settings(PLUGINS_DISABLED="off"))
    records = {r["id"]: r for r in app.state.plugin_host.describe()}
    assert records["off"]["state"] == "disabled"


def test_incompatible_api_version_is_refused(plugin_dist: Path, make_settings) -> None:
    write_distribution(
        plugin_dist,
        "tgstats-testdist-old",
        "9.9.9",
        {"tgstats_testdist_e": PLUGINS},
        {"old": "tgstats_testdist_e:OldApi"},
    )
    with pytest.raises(PluginLoadError, match=r"plugin API 0\.x.*provides 1\.x"):
        create_app(make_settings())


def test_unsatisfied_requirement_is_named(plugin_dist: Path, make_settings) -> None:
    write_distribution(
        plugin_dist,
        "tgstats-testdist-f",
        "1.0.0",
        {"tgstats_testdist_f": PLUGINS},
        {"alpha": "tgstats_testdist_f:Consumer"},
    )
    with pytest.raises(
        PluginLoadError, match="requires 'greeter', which no loaded plugin provides"
    ):
        create_app(make_settings())
