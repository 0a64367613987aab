"""The ``statsbot`` plugin is found through its entry point; its commands reach the dispatcher."""

from __future__ import annotations

from importlib.metadata import entry_points

from tgstats_statsbot import StatsBotPlugin


def test_entry_point_names_the_plugin():
    [entry] = [e for e in entry_points(group="tgstats.plugins") if e.name == "statsbot"]
    assert entry.load() is StatsBotPlugin


async def test_app_runs_the_plugin_and_shares_its_commands(
    make_settings, app_client, admin_headers
):
    async with app_client(make_settings()) as client:
        plugins = {
            p["id"]: p
            for p in (await client.get("/health/plugins", headers=admin_headers)).json()["plugins"]
        }
        assert plugins["statsbot"]["state"] == "running"
        services = client.app.state.services
        names = {c.name for c in services.get("commands")}
        assert {"stats", "me", "top"} <= names
        assert "leaderboard" not in {c.name for c in StatsBotPlugin.commands(plugins_stub())}


def plugins_stub():
    """``commands`` reads nothing from the instance; an unbuilt one is enough to list them."""
    return StatsBotPlugin.__new__(StatsBotPlugin)
