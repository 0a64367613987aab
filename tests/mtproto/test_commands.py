"""Bot commands through kurigram's dispatcher: parsing, admins, replies, limits, metrics."""

from __future__ import annotations

import asyncio

import pytest
from pyrogram import raw
from sqlalchemy import text

from tgstats.events import MessageEvent
from tgstats.plugin_api import BotCommand, get_chat_settings, update_chat_settings

from .conftest import metric_value

GROUP_ID = -1000000001001


@pytest.fixture
def peers(harness):
    tg = harness.raw
    return {
        "group": tg.supergroup(1001, "Friends <b>evil</b>"),
        "forum": tg.supergroup(1002, "Forum", forum=True),
        "basic": tg.basic_group(55, "Old group"),
        "admin": tg.user(11, "Ada"),
        "user": tg.user(12, "Bob"),
    }


@pytest.fixture(autouse=True)
def admins(harness):
    harness.api.admins[GROUP_ID] = {11}
    harness.api.admins[-1000000001002] = {11}
    harness.api.admins[-55] = {11}


async def send(harness, chat, sender, text, **kwargs):
    msg_id = harness.raw.next_msg_id()
    await harness.feed(harness.raw.new_message(chat, sender, text, msg_id=msg_id, **kwargs))
    return msg_id


def last_reply(harness):
    return harness.api.sent()[-1]


async def test_start_in_private(harness, peers, telemetry, sink):
    await send(harness, peers["user"], peers["user"], "/start")
    assert "Add me to a group" in last_reply(harness).message
    assert metric_value(telemetry, "bot_commands_executed_total", command="start", status="ok") == 1
    assert sink.events == []  # private chats are not recorded


async def test_help_lists_admin_commands_to_admins_only(harness, peers):
    await send(harness, peers["group"], peers["user"], "/help")
    user_help = last_reply(harness).message
    await send(harness, peers["group"], peers["admin"], "/help")
    admin_help = last_reply(harness).message
    assert "/set_text on|off" not in user_help and "/help" in user_help
    assert "/set_text on|off" in admin_help
    assert "/set_retention text=<days> metadata=<days>" in admin_help


async def test_setup_by_admin_registers_and_warns_about_privacy_mode(
    harness, peers, session_factory
):
    msg_id = await send(harness, peers["group"], peers["admin"], "/setup")
    reply = last_reply(harness)
    assert "privacy mode" in reply.message
    assert "<b>evil</b>" in reply.message  # the title is shown escaped, literally
    assert reply.reply_to.reply_to_msg_id == msg_id
    async with session_factory() as session:
        from sqlalchemy import text

        rows = await session.execute(
            text("SELECT store_text FROM chat_settings WHERE chat_id = :c"), {"c": GROUP_ID}
        )
        assert rows.scalar_one() is False


async def test_setup_when_bot_is_admin_says_it_sees_everything(harness, peers):
    harness.api.admins[GROUP_ID] = {11, harness.raw.bot.id}
    await send(harness, peers["group"], peers["admin"], "/setup")
    assert "I can see all messages" in last_reply(harness).message


async def test_non_admin_is_refused_politely(harness, peers, telemetry, session_factory):
    await send(harness, peers["group"], peers["user"], "/set_text on")
    assert "only this chat's admins" in last_reply(harness).message
    assert (
        metric_value(
            telemetry, "bot_commands_executed_total", command="set_text", status="forbidden"
        )
        == 1
    )
    async with session_factory() as session:
        assert (await get_chat_settings(session, GROUP_ID)).store_text is False


async def test_admin_commands_in_private_are_explained(harness, peers):
    await send(harness, peers["admin"], peers["admin"], "/settings")
    assert "works in a group" in last_reply(harness).message


async def test_set_text_applies_to_the_next_message(harness, peers, sink, session_factory):
    group, admin = peers["group"], peers["admin"]
    await send(harness, group, admin, "before")  # caches store_text=off
    await send(harness, group, admin, "/set_text on")
    assert "will be stored" in last_reply(harness).message
    await send(harness, group, admin, "after")
    texts = [e.text for e in sink.of(MessageEvent)]
    assert texts[0] is None and texts[-1] == "after"
    async with session_factory() as session:
        assert (await get_chat_settings(session, GROUP_ID)).store_text is True
    await send(harness, group, admin, "/set_text off")
    async with session_factory() as session:
        assert (await get_chat_settings(session, GROUP_ID)).store_text is False


@pytest.mark.parametrize("args", ["", "maybe", "on off"])
async def test_set_text_wrong_args_get_usage(harness, peers, args, telemetry):
    await send(harness, peers["group"], peers["admin"], f"/set_text {args}".strip())
    assert last_reply(harness).message == "Usage: /set_text on|off"
    assert (
        metric_value(telemetry, "bot_commands_executed_total", command="set_text", status="usage")
        == 1
    )


async def test_set_reactions(harness, peers, session_factory):
    await send(harness, peers["group"], peers["admin"], "/set_reactions off")
    assert "not be recorded" in last_reply(harness).message
    async with session_factory() as session:
        assert (await get_chat_settings(session, GROUP_ID)).capture_reactions is False
    await send(harness, peers["group"], peers["admin"], "/set_reactions")
    assert last_reply(harness).message == "Usage: /set_reactions on|off"


async def test_set_timezone(harness, peers, session_factory):
    await send(harness, peers["group"], peers["admin"], "/set_timezone Asia/Kolkata")
    assert "Asia/Kolkata" in last_reply(harness).message
    async with session_factory() as session:
        assert (await get_chat_settings(session, GROUP_ID)).timezone == "Asia/Kolkata"
    await send(harness, peers["group"], peers["admin"], "/set_timezone Mars/<Base>")
    reply = last_reply(harness).message
    assert "IANA" in reply and "Mars/<Base>" in reply and "Usage: /set_timezone" in reply
    await send(harness, peers["group"], peers["admin"], "/set_timezone")
    assert last_reply(harness).message.startswith("Usage: /set_timezone")
    async with session_factory() as session:
        assert (await get_chat_settings(session, GROUP_ID)).timezone == "Asia/Kolkata"


async def test_set_retention(harness, peers, session_factory):
    await send(harness, peers["group"], peers["admin"], "/set_retention text=30 metadata=400")
    assert "30 days" in last_reply(harness).message
    async with session_factory() as session:
        value = await get_chat_settings(session, GROUP_ID)
    assert (value.text_retention_days, value.metadata_retention_days) == (30, 400)
    for bad in ("/set_retention", "/set_retention text=abc", "/set_retention forever=3"):
        await send(harness, peers["group"], peers["admin"], bad)
        assert "Usage: /set_retention text=<days> metadata=<days>" in last_reply(harness).message
    await send(harness, peers["group"], peers["admin"], "/set_retention text=0")
    assert "text_retention_days" in last_reply(harness).message
    async with session_factory() as session:
        assert (await get_chat_settings(session, GROUP_ID)).text_retention_days == 30


async def test_settings_shows_values(harness, peers):
    await send(harness, peers["group"], peers["admin"], "/settings")
    reply = last_reply(harness).message
    assert "Store message text: off" in reply and "Time zone: UTC" in reply


async def test_anonymous_admin_is_recognised_without_a_lookup(harness, peers):
    group = peers["group"]
    await send(harness, group, group, "/settings")
    assert "Store message text" in last_reply(harness).message
    assert harness.api.calls_of(raw.functions.channels.GetParticipants) == []


async def test_basic_group_admins_come_from_get_full_chat(harness, peers):
    await send(harness, peers["basic"], peers["admin"], "/settings")
    assert "Store message text" in last_reply(harness).message
    await send(harness, peers["basic"], peers["user"], "/settings")
    assert "only this chat's admins" in last_reply(harness).message
    [call] = harness.api.calls_of(raw.functions.messages.GetFullChat)  # cached for the second
    assert call.chat_id == 55


async def test_admin_list_is_cached(harness, peers):
    for _ in range(3):
        await send(harness, peers["group"], peers["admin"], "/settings")
    assert len(harness.api.calls_of(raw.functions.channels.GetParticipants)) == 1


async def test_reply_goes_to_the_topic_where_asked(harness, peers):
    msg_id = await send(harness, peers["forum"], peers["admin"], "/settings", topic=7)
    reply = last_reply(harness)
    assert reply.reply_to.reply_to_msg_id == msg_id
    assert reply.reply_to.top_msg_id == 7


async def test_commands_for_other_bots_are_ignored(harness, peers):
    await send(harness, peers["group"], peers["admin"], "/settings@other_bot")
    assert harness.api.sent() == []
    await send(harness, peers["group"], peers["admin"], "/SETTINGS@TGStats_Bot")
    assert "Store message text" in last_reply(harness).message


async def test_rate_limit_notice_once_per_window(harness, peers, telemetry, plugin):
    from tgstats.plugin_api import Settings

    plugin.dispatcher.settings = Settings.from_env({"RATE_LIMIT_PER_MINUTE": "3"})
    for _ in range(6):
        await send(harness, peers["group"], peers["user"], "/help")
    texts = harness.api.sent_texts()
    assert len(texts) == 4  # three answers (limit 3/minute) and one notice
    assert texts[-1].startswith("Too many commands")
    assert (
        metric_value(
            telemetry, "bot_commands_executed_total", command="help", status="rate_limited"
        )
        == 3
    )
    # another user in the same chat is not affected
    await send(harness, peers["group"], peers["admin"], "/help")
    assert "/set_text" in last_reply(harness).message


async def test_other_plugins_commands_are_dispatched(harness, peers, services, telemetry):
    seen = []

    async def hello(ctx):
        seen.append(ctx)
        await ctx.reply(f"Hello, {ctx.args}")

    async def broken(ctx):
        raise RuntimeError("bug in a plugin")

    services.register(
        "commands", [BotCommand("hello", "Say hello", hello), BotCommand("broken", "Fails", broken)]
    )
    msg_id = await send(harness, peers["forum"], peers["user"], "/hello   big world", topic=7)
    [ctx] = seen
    assert (ctx.command, ctx.args, ctx.chat_id, ctx.chat_type) == (
        "hello",
        "big world",
        -1000000001002,
        "supergroup",
    )
    assert (ctx.message_id, ctx.user_id, ctx.topic_id) == (msg_id, 12, 7)
    assert last_reply(harness).message == "Hello, big world"
    await send(harness, peers["group"], peers["user"], "/broken")
    assert "something went wrong" in last_reply(harness).message
    assert (
        metric_value(telemetry, "bot_commands_executed_total", command="broken", status="error")
        == 1
    )
    assert metric_value(telemetry, "bot_errors_total", error_type="command") == 1


async def test_command_menu_is_registered_per_scope(harness, plugin):
    await plugin.register_bot_commands(harness.client)
    calls = harness.api.calls_of(raw.functions.bots.SetBotCommands)
    by_scope = {type(c.scope).__name__: [cmd.command for cmd in c.commands] for c in calls}
    assert set(by_scope) == {
        "BotCommandScopeUsers",
        "BotCommandScopeChats",
        "BotCommandScopeChatAdmins",
    }
    assert by_scope["BotCommandScopeUsers"] == ["start", "help"]
    assert by_scope["BotCommandScopeChats"] == ["start", "help"]
    assert {"start", "help", "setup", "set_text", "set_retention"} <= set(
        by_scope["BotCommandScopeChatAdmins"]
    )


async def test_two_commands_in_one_envelope_are_both_answered(harness, peers):
    # Two updates in one envelope go through the same dispatcher run.
    tg = harness.raw
    a = tg.new_message(peers["group"], peers["admin"], "/settings")
    b = tg.new_message(peers["group"], peers["user"], "/start")
    both = tg.updates([*a.updates, *b.updates], [peers["group"], peers["admin"], peers["user"]])
    await harness.feed(both)
    await asyncio.sleep(0)
    assert len(harness.api.sent()) == 2


async def test_a_slow_command_does_not_hold_up_recording(harness, peers, services, sink):
    from tgstats.events import MessageEvent
    from tgstats_mtproto.testing import wire

    release = asyncio.Event()

    async def slow(ctx):
        await release.wait()
        await ctx.reply("done")

    services.register("commands", [BotCommand("slow", "Takes a while", slow)])
    tg = harness.raw
    client = harness.client
    await client.handle_updates(wire(tg.new_message(peers["group"], peers["user"], "/slow")))
    await client.handle_updates(wire(tg.new_message(peers["group"], peers["user"], "meanwhile")))
    client.dispatcher.updates_queue.put_nowait(None)
    await client.dispatcher.handler_worker(asyncio.Lock())  # returns while /slow still waits
    assert [e.features.text_length for e in sink.of(MessageEvent)] == [5, 9]
    assert harness.api.sent() == []
    release.set()
    await harness.plugin.dispatcher.drain()
    assert harness.api.sent_texts() == ["done"]


# --------------------------------------------------------------------------- language
# The expected Russian is written out here (with its plural forms), not read from the
# catalog under test.


async def test_set_language_switches_the_chat(harness, peers, session_factory):
    await send(harness, peers["group"], peers["admin"], "/set_language ru")
    assert last_reply(harness).message.startswith("Теперь я отвечаю по-русски")
    async with session_factory() as session:
        assert (await get_chat_settings(session, GROUP_ID)).locale == "ru"

    await send(harness, peers["group"], peers["admin"], "/settings")
    shown = last_reply(harness).message
    assert "Часовой пояс: UTC" in shown and "Язык: Русский" in shown
    assert "Хранить текст: 90 дней" in shown and "Хранить метаданные: 365 дней" in shown

    await send(harness, peers["group"], peers["admin"], "/set_retention text=21 metadata=3")
    assert last_reply(harness).message == "Текст хранится 21 день, метаданные 3 дня."

    await send(harness, peers["group"], peers["admin"], "/set_timezone")
    assert last_reply(harness).message.startswith("Использование: /set_timezone <зона IANA")

    await send(harness, peers["group"], peers["user"], "/settings")
    assert last_reply(harness).message == (
        "Извините, /settings доступна только администраторам чата."
    )

    await send(harness, peers["group"], peers["admin"], "/help")
    assert "/set_language en|ru — Язык ответов и графиков бота" in last_reply(harness).message

    await send(harness, peers["group"], peers["admin"], "/set_language en")
    assert last_reply(harness).message.startswith("I'll answer in English from now on")


async def test_set_language_refuses_what_it_cannot_speak(harness, peers, session_factory):
    for bad in ("/set_language de", "/set_language", "/set_language <b>x</b>"):
        await send(harness, peers["group"], peers["admin"], bad)
        reply = last_reply(harness).message
        assert "Languages I speak: en (English), ru (Русский)." in reply
        assert "Usage: /set_language en|ru" in reply
    async with session_factory() as session:
        assert (await get_chat_settings(session, GROUP_ID)).locale == "en"


async def test_private_chat_speaks_the_members_telegram_language(harness, peers):
    russian = harness.raw.user(21, "Катя", lang_code="ru")
    await send(harness, russian, russian, "/start")
    assert last_reply(harness).message.startswith("Привет! Я считаю, что происходит")
    await send(harness, peers["admin"], peers["admin"], "/start")
    assert last_reply(harness).message.startswith("Hi! I count what happens")


async def test_an_unsupported_stored_locale_falls_back_to_english(harness, peers, session_factory):
    """Rows written before languages were validated may hold anything: English then."""
    async with session_factory() as session:
        await update_chat_settings(session, GROUP_ID)
        await session.execute(
            text("UPDATE chat_settings SET locale = 'ne' WHERE chat_id = :c"),
            {"c": GROUP_ID},
        )
        await session.commit()
    await send(harness, peers["group"], peers["admin"], "/set_timezone")
    assert last_reply(harness).message.startswith("Usage: /set_timezone")


# --------------------------------------------------------------------------- /share


async def record_group(session_factory):
    """The chat row the pipeline writes (this harness records events without a database)."""
    async with session_factory() as session:
        await session.execute(
            text("INSERT INTO chats (id, type, title) VALUES (:id, 'supergroup', 'Friends')"),
            {"id": GROUP_ID},
        )
        await session.commit()


async def test_share_makes_lists_and_revokes_links(harness, peers, session_factory):
    import re

    from tgstats.web.share_links import redeem_share_code

    await send(harness, peers["group"], peers["admin"], "/share")
    assert last_reply(harness).message == "I have not recorded this chat yet: send /setup first."
    await record_group(session_factory)
    await send(harness, peers["group"], peers["admin"], "/share for the team")
    texts = harness.api.sent_texts()
    assert re.fullmatch(r"I sent you the link \d+ in a private chat\.", texts[-1])
    private = harness.api.sent()[-2]
    assert isinstance(private.peer, raw.types.InputPeerUser) and private.peer.user_id == 11
    match = re.search(r"/share/([A-Za-z0-9_-]{22})", private.message)
    assert match and "within 60 minutes" in private.message
    assert "set PUBLIC_URL" in private.message  # the harness has no PUBLIC_URL
    # The code in the message opens the chat's link (checked without the bot).
    async with session_factory() as session:
        opened = await redeem_share_code(session, match.group(1))
        await session.commit()
    link_id, chat_id = opened
    assert chat_id == GROUP_ID

    await send(harness, peers["group"], peers["admin"], "/share list")
    listing = last_reply(harness).message
    assert f"{link_id} «for the team»: made " in listing and "opened 1 time" in listing

    await send(harness, peers["group"], peers["user"], "/share")
    assert last_reply(harness).message == "Sorry, only this chat's admins can use /share."

    await send(harness, peers["group"], peers["admin"], "/share revoke x")
    assert last_reply(harness).message.startswith("Usage: /share [label]")
    await send(harness, peers["group"], peers["admin"], f"/share revoke {link_id}")
    assert last_reply(harness).message.startswith(f"Share link {link_id} is revoked")
    await send(harness, peers["group"], peers["admin"], f"/share revoke {link_id}")
    assert last_reply(harness).message == f"This chat has no open share link {link_id}."
    await send(harness, peers["group"], peers["admin"], "/share list")
    assert last_reply(harness).message == "No share links are open. /share makes one."


async def test_share_in_russian(harness, peers, session_factory):
    await record_group(session_factory)
    async with session_factory() as session:
        await update_chat_settings(session, GROUP_ID, locale="ru")
        await session.commit()
    await send(harness, peers["group"], peers["admin"], "/share")
    assert harness.api.sent_texts()[-1] == "Я отправил вам ссылку 1 в личный чат."
    assert "в течение 60 минут." in harness.api.sent_texts()[-2]
