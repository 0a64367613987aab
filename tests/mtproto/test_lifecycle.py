"""The plugin's lifespan: off without credentials, bounded start, one-line failures."""

from __future__ import annotations

import time

import pyrogram
import pytest
from pyrogram import errors, types

from tgstats.plugin_api import PluginContext, Settings
from tgstats_mtproto import MTProtoPlugin, TelegramStartError

TOKEN = "123456:AAH-secret-token-value"


def make_plugin(services, **env):
    settings = Settings.from_env(env)
    return MTProtoPlugin(
        context=PluginContext(plugin_id="mtproto", settings=settings, services=services)
    )


def with_credentials(services, tmp_path, **extra):
    return make_plugin(
        services,
        TELEGRAM_API_ID="1",
        TELEGRAM_API_HASH="0" * 32,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_SESSION_PATH=str(tmp_path / "bot.session"),
        **extra,
    )


async def test_without_credentials_the_plugin_stays_off(services):
    plugin = make_plugin(services)
    async with plugin.lifespan(app=None):
        check = await plugin.health()
        assert check.ok is False and check.degraded is True
        assert "TELEGRAM_API_ID, TELEGRAM_API_HASH, TELEGRAM_BOT_TOKEN not set" in check.detail
    assert plugin.client is None


async def test_partial_credentials_name_what_is_missing(services):
    plugin = make_plugin(services, TELEGRAM_API_ID="5")
    async with plugin.lifespan(app=None):
        check = await plugin.health()
    assert check.detail == "off: TELEGRAM_API_HASH, TELEGRAM_BOT_TOKEN not set"


async def test_unreachable_telegram_fails_within_the_timeout(services, tmp_path, monkeypatch):
    async def never_answers(self):
        import asyncio

        await asyncio.sleep(3600)

    monkeypatch.setattr(pyrogram.Client, "connect", never_answers)
    plugin = with_credentials(services, tmp_path, TELEGRAM_START_TIMEOUT="1")
    started = time.monotonic()
    with pytest.raises(TelegramStartError) as info:
        async with plugin.lifespan(app=None):
            pass
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "\n" not in message and "TELEGRAM_START_TIMEOUT=1s" in message
    assert TOKEN not in message


async def test_rejected_token_fails_with_one_clear_line(services, tmp_path, monkeypatch):
    async def rejected(self, *args, **kwargs):
        raise errors.AccessTokenInvalid()

    monkeypatch.setattr(pyrogram.Client, "start", rejected)
    plugin = with_credentials(services, tmp_path)
    with pytest.raises(TelegramStartError) as info:
        async with plugin.lifespan(app=None):
            pass
    message = str(info.value)
    assert message.startswith("Telegram refused the login: ACCESS_TOKEN_INVALID")
    assert "\n" not in message and TOKEN not in message and "secret" not in message


async def test_without_session_storage_the_start_says_why(services, monkeypatch):
    services.unregister("session_factory")
    plugin = make_plugin(
        services, TELEGRAM_API_ID="1", TELEGRAM_API_HASH="x", TELEGRAM_BOT_TOKEN=TOKEN
    )
    with pytest.raises(TelegramStartError, match="TELEGRAM_SESSION_PATH"):
        async with plugin.lifespan(app=None):
            pass


async def test_started_plugin_reports_healthy_and_registers_its_menu(
    services, tmp_path, monkeypatch
):
    calls = []

    async def fake_start(self, *args, **kwargs):
        self.me = types.User(id=123456, is_bot=True, username="stats_bot", first_name="Stats")
        self.is_connected = True
        calls.append(("start", self.skip_updates, self.fetch_replies, self.name))
        return self

    async def fake_stop(self, *args, **kwargs):
        self.is_connected = False
        calls.append(("stop",))

    async def fake_menu(self, commands, scope=None, **kwargs):
        calls.append(("menu", type(scope).__name__, [c.command for c in commands]))
        return True

    monkeypatch.setattr(pyrogram.Client, "start", fake_start)
    monkeypatch.setattr(pyrogram.Client, "stop", fake_stop)
    monkeypatch.setattr(pyrogram.Client, "set_bot_commands", fake_menu)
    plugin = with_credentials(services, tmp_path)
    async with plugin.lifespan(app=None):
        check = await plugin.health()
        assert check.ok is True and check.detail == "connected as @stats_bot"
    assert calls[0] == ("start", False, False, "bot123456")  # catch-up on, no reply fetching
    assert [c[1] for c in calls if c[0] == "menu"] == [
        "BotCommandScopeAllPrivateChats",
        "BotCommandScopeAllGroupChats",
        "BotCommandScopeAllChatAdministrators",
    ]
    assert calls[-1] == ("stop",)
    assert (await plugin.health()).ok is False


async def test_a_session_file_of_another_bot_is_refused(services, tmp_path):
    from tgstats_mtproto.storage import FileSessionStorage

    path = tmp_path / "bot.session"
    other = FileSessionStorage(path)
    await other.open()
    await other.user_id(999)
    await other.is_bot(True)
    await other.save()
    await other.close()
    plugin = with_credentials(services, tmp_path)
    with pytest.raises(
        TelegramStartError, match="holds the session of bot 999, not of the bot 123456"
    ):
        async with plugin.lifespan(app=None):
            pass


async def test_a_missing_session_table_fails_with_one_line(services, session_factory, monkeypatch):
    from sqlalchemy import text

    async with session_factory() as session:
        await session.execute(text("ALTER TABLE mtproto_sessions RENAME TO mtproto_sessions_gone"))
        await session.commit()
    try:
        plugin = make_plugin(
            services, TELEGRAM_API_ID="1", TELEGRAM_API_HASH="x", TELEGRAM_BOT_TOKEN=TOKEN
        )
        with pytest.raises(TelegramStartError) as info:
            async with plugin.lifespan(app=None):
                pass
        assert "\n" not in str(info.value) and "mtproto_sessions" in str(info.value)
    finally:
        async with session_factory() as session:
            await session.execute(
                text("ALTER TABLE mtproto_sessions_gone RENAME TO mtproto_sessions")
            )
            await session.commit()


async def test_web_role_never_starts_the_client(services, tmp_path, monkeypatch):
    async def must_not_start(self, *args, **kwargs):
        raise AssertionError("the web role started the Telegram client")

    monkeypatch.setattr(pyrogram.Client, "start", must_not_start)
    plugin = with_credentials(services, tmp_path, TGSTATS_ROLE="web")
    async with plugin.lifespan(app=None):
        check = await plugin.health()
    assert (
        check.degraded is True and check.detail == "off: TGSTATS_ROLE=web runs no Telegram client"
    )
    assert plugin.client is None


async def test_app_without_credentials_is_ready_and_says_why(make_settings, app_client):
    settings = make_settings(PLUGINS_ENABLED="mtproto")
    async with app_client(settings) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    [telegram] = [c for c in body["checks"] if c["name"] == "telegram"]
    assert telegram["status"] == "degraded"
    assert "TELEGRAM_BOT_TOKEN not set" in telegram["detail"]
