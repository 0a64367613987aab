"""The example plugin, tested with tgstats' testing kit only (no tgstats test internals).

Everything runs for real: kurigram's dispatcher fed raw MTProto updates, the
event pipeline writing to PostgreSQL, the HTTP API with authentication.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tgstats_hello import HelloPlugin

from tgstats.plugin_api.testing import running_app


async def say(bot, chat, user, text: str) -> None:
    await bot.feed(bot.raw.new_message(chat, user, text, msg_id=bot.raw.next_msg_id()))


@pytest.fixture
async def app(tgstats_settings):
    # The plugin is installed, so discovery finds it through its entry point;
    # passing it explicitly keeps the test independent of how it was installed.
    async with running_app(tgstats_settings(), plugins={"hello": HelloPlugin}) as running:
        yield running


async def test_plugin_is_discovered_and_running(app) -> None:
    plugins = {
        p["id"]: p
        for p in (await app.client.get("/health/plugins", headers=app.admin_headers)).json()[
            "plugins"
        ]
    }
    assert plugins["hello"]["state"] == "running"


async def test_counts_greetings_end_to_end(app) -> None:
    bot = await app.bot()
    chat = bot.raw.supergroup(4242, "Hello club")
    ann, bob = bot.raw.user(1, "Ann"), bot.raw.user(2, "Bob")
    await say(bot, chat, ann, "Hello everyone!")
    await say(bot, chat, bob, "hi Ann, how are you")
    await say(bot, chat, bob, "the weather is fine")
    await app.flush()
    chat_id = -1_000_000_004_242  # Bot API id of supergroup 4242: -(10**12 + 4242)

    # the observer saw the committed events
    plugin = app.plugin("hello")
    assert plugin.seen_since_start[chat_id] == 2

    # the API route, authenticated like the built-in ones
    today = datetime.now(UTC).date().isoformat()
    unauth = await app.client.get(f"/api/v1/chats/{chat_id}/hello")
    assert unauth.status_code == 401
    response = await app.client.get(
        f"/api/v1/chats/{chat_id}/hello?from={today}&to={today}", headers=app.admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"total": 2, "labels": [today], "values": [2]}

    # the bot command, answered through the real dispatcher
    await say(bot, chat, ann, "/hello 7d")
    reply = bot.api.sent_texts()[-1]
    assert "2 greetings" in reply and "(2 since I last restarted)" in reply


async def test_bad_period_gets_usage(app) -> None:
    bot = await app.bot()
    chat, cy = bot.raw.supergroup(4243, "Quiet club"), bot.raw.user(3, "Cy")
    await say(bot, chat, cy, "/hello")
    assert bot.api.sent_texts()[-1] == "No greetings recorded here yet."
    await app.flush()
    await say(bot, chat, cy, "/hello yesterday-ish")
    assert bot.api.sent_texts()[-1].startswith("Usage: /hello")


async def test_unknown_chat_is_404(app) -> None:
    response = await app.client.get("/api/v1/chats/-100999/hello", headers=app.admin_headers)
    assert response.status_code == 404


def test_per_plugin_settings(tgstats_settings) -> None:
    from tgstats_hello import HelloConfig

    settings = tgstats_settings(TGSTATS_PLUGIN_HELLO_WORDS="servus, moin")
    assert settings.plugin_config("hello", HelloConfig).word_list == ("servus", "moin")
