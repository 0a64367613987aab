"""/optout, /optin, /forgetme and /mydata through the bot harness into PostgreSQL."""

from __future__ import annotations

import json

from pyrogram import raw
from pyrogram.errors import UserIsBlocked

from .conftest import World


async def _messages_of(world: World, user_id: int) -> int:
    return await world.scalar("SELECT count(*) FROM messages WHERE user_id = :u", u=user_id)


async def test_optout_counts_messages_without_the_member_and_optin_undoes_it(world: World):
    await world.say(world.alice, "before")
    await world.say(world.alice, "/optout")
    assert "counted without your name" in world.bot.api.sent_texts()[-1]
    assert await world.scalar("SELECT source FROM user_optouts WHERE user_id = 11") == "member"
    named_before = await _messages_of(world, 11)
    first = await world.say(world.alice, "after one")
    await world.say(world.alice, "after two", reply_to=first)
    await world.say(world.bob, "reply to alice", reply_to=first)

    # Stored without her id, reply targets included; counted for the chat only.
    assert await _messages_of(world, 11) == named_before
    anonymous = await world.rows(
        "SELECT user_id, reply_to_user_id FROM messages WHERE chat_id = :c AND msg_id = :m",
        c=world.chat_id,
        m=first,
    )
    assert anonymous == [(None, None)]
    assert (
        await world.scalar(
            "SELECT reply_to_user_id FROM messages WHERE user_id = 12 AND chat_id = :c",
            c=world.chat_id,
        )
        is None
    )
    total = await world.scalar(
        "SELECT sum(messages) FROM chat_day_rollup WHERE chat_id = :c", c=world.chat_id
    )
    assert total == await world.scalar(
        "SELECT count(*) FROM messages WHERE chat_id = :c", c=world.chat_id
    )
    per_alice = await world.scalar(
        "SELECT sum(messages) FROM chat_user_day_rollup WHERE user_id = 11 AND chat_id = :c",
        c=world.chat_id,
    )
    assert per_alice == named_before
    assert not await world.scalar(
        "SELECT count(*) FROM reply_pair_day_rollup WHERE to_user_id = 11"
    )

    # Asking twice says so; /optin records her again.
    await world.say(world.alice, "/optout")
    assert "opted out already" in world.bot.api.sent_texts()[-1]
    await world.say(world.alice, "/optin")
    assert "under your name again" in world.bot.api.sent_texts()[-1]
    again = await world.say(world.alice, "named again")
    assert (
        await world.scalar(
            "SELECT user_id FROM messages WHERE chat_id = :c AND msg_id = :m",
            c=world.chat_id,
            m=again,
        )
        == 11
    )
    await world.say(world.alice, "/optin")
    assert "had not opted out" in world.bot.api.sent_texts()[-1]


async def test_forgetme_asks_only_the_member_and_removes_them_everywhere(world: World):
    tg = world.bot.raw
    other = tg.supergroup(4343, "Second")
    first = await world.say(world.alice, "hi all")
    await world.say(world.bob, "hi alice", reply_to=first)
    bob_to_alice = await world.scalar("SELECT reply_to_user_id FROM messages WHERE user_id = 12")
    assert bob_to_alice == 11
    await world.say(world.alice, "elsewhere", chat=other)
    await world.say(world.alice, "again", reply_to=first)
    assert await world.scalar("SELECT count(*) FROM users WHERE id = 11") == 1

    await world.say(world.alice, "/forgetme")
    totals_before = await world.rows(
        "SELECT chat_id, sum(messages) FROM chat_day_rollup GROUP BY 1 ORDER BY 1"
    )
    question = world.sent_id()
    buttons = world.last_buttons()
    assert [label for label, _ in buttons] == ["Yes, forget me", "Cancel"]
    yes = buttons[0][1]

    # Bob cannot answer for her.
    await world.press(world.bob, question, yes)
    assert world.bot.api.callback_answers()[-1].alert
    assert await _messages_of(world, 11) > 0

    await world.press(world.alice, question, yes)
    edit = world.bot.api.edits()[-1]
    assert "Done" in edit.message and edit.reply_markup is None
    assert "from 2 chats" in edit.message
    assert await _messages_of(world, 11) == 0
    for sql in (
        "SELECT count(*) FROM users WHERE id = 11",
        "SELECT count(*) FROM user_name_history WHERE user_id = 11",
        "SELECT count(*) FROM chat_user_day_rollup WHERE user_id = 11",
        "SELECT count(*) FROM chat_user_hour_rollup WHERE user_id = 11",
        "SELECT count(*) FROM chat_topic_user_day_rollup WHERE user_id = 11",
        "SELECT count(*) FROM reply_pair_day_rollup WHERE 11 IN (from_user_id, to_user_id)",
        "SELECT count(*) FROM messages WHERE reply_to_user_id = 11",
    ):
        assert await world.scalar(sql) == 0, sql
    # Chat totals stay exactly as they were (the button press is no message).
    assert (
        await world.rows("SELECT chat_id, sum(messages) FROM chat_day_rollup GROUP BY 1 ORDER BY 1")
        == totals_before
    )
    # Bob's data is untouched.
    assert await _messages_of(world, 12) == 1
    assert await world.scalar("SELECT count(*) FROM users WHERE id = 12") == 1


async def test_forgetme_in_a_private_chat_and_cancel(world: World):
    await world.say(world.alice, "hello")
    await world.say(world.alice, "/forgetme", chat=world.alice)
    question = world.sent_id()
    _, cancel = world.last_buttons()
    await world.press(world.alice, question, cancel[1], chat=world.alice)
    assert "nothing was removed" in world.bot.api.edits()[-1].message
    assert await _messages_of(world, 11) == 1

    await world.say(world.alice, "/forgetme", chat=world.alice)
    yes, _ = world.last_buttons()
    await world.press(world.alice, world.sent_id(), yes[1], chat=world.alice)
    assert await _messages_of(world, 11) == 0
    # A stale or forged button does nothing.
    await world.press(world.alice, question, "forgetme:yes:12", chat=world.alice)
    assert world.bot.api.callback_answers()[-1].alert
    await world.press(world.alice, question, "nosuchcommand:x", chat=world.alice)
    assert "no longer works" in world.bot.api.callback_answers()[-1].message


async def test_mydata_sends_a_json_file_in_private(world: World):
    first = await world.say(world.alice, "my words")
    await world.say(world.bob, "answer", reply_to=first)
    before = len(world.bot.api.calls)
    await world.say(world.alice, "/mydata")
    [document] = world.bot.api.sent_documents()
    query, payload = document
    assert isinstance(query.peer, raw.types.InputPeerUser) and query.peer.user_id == 11
    names = [
        a.file_name
        for a in query.media.attributes
        if isinstance(a, raw.types.DocumentAttributeFilename)
    ]
    assert names == ["tgstats-11.json"]
    data = json.loads(payload)
    assert data["user_id"] == 11
    assert data["profile"][0]["first_name"] == "Alice"
    assert {m["msg_id"] for m in data["messages"]} >= {first}
    assert all(m["user_id"] == 11 for m in data["messages"])
    assert data["replies"] and data["replies"][0]["to_user_id"] == 11
    assert data["daily_activity"][0]["messages"] >= 1
    # Nothing about Bob, and the group only hears where the file went.
    assert "answer" not in payload.decode()
    group_replies = [
        c.message
        for c in world.replies(before)
        if isinstance(c, raw.functions.messages.SendMessage)
    ]
    assert group_replies == ["I sent your data to you in a private chat."]


async def test_mydata_explains_how_to_start_a_private_chat_when_telegram_refuses(world: World):
    world.bot.api.fail[raw.functions.messages.SendMedia] = UserIsBlocked()
    await world.say(world.alice, "/mydata")
    assert world.bot.api.sent_documents() == []
    assert "@tgstats_bot" in world.bot.api.sent_texts()[-1]
    assert "press Start" in world.bot.api.sent_texts()[-1]
