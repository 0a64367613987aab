"""Admin side: /set_text off with its purge question, /digest, and the privacy API routes."""

from __future__ import annotations

from .conftest import World


async def _stored_texts(world: World) -> int:
    return await world.scalar(
        "SELECT count(*) FROM messages WHERE chat_id = :c AND text IS NOT NULL", c=world.chat_id
    )


async def test_set_text_off_purges_stored_text_after_an_admin_confirms(world: World):
    await world.say(world.admin, "/set_text on")
    await world.say(world.alice, "secret one")
    await world.say(world.bob, "secret two")
    assert await _stored_texts(world) >= 2

    await world.say(world.admin, "/set_text off")
    question = world.sent_id()
    assert "still have their text stored" in world.bot.api.sent_texts()[-1]
    purge, keep = world.last_buttons()
    assert purge[0] == "Delete stored text" and keep[0] == "Keep it"
    # Recording stopped at once; deleting waits for the button.
    await world.say(world.alice, "not kept")
    assert (
        await world.scalar(
            "SELECT text FROM messages WHERE chat_id = :c ORDER BY msg_id DESC LIMIT 1",
            c=world.chat_id,
        )
        is None
    )
    stored = await _stored_texts(world)
    assert stored >= 2

    await world.press(world.alice, question, purge[1])  # not an admin
    assert world.bot.api.callback_answers()[-1].alert
    assert await _stored_texts(world) == stored

    await world.press(world.admin, question, purge[1])
    assert await _stored_texts(world) == 0
    assert f"Deleted the stored text of {stored} messages" in world.bot.api.edits()[-1].message
    # Counts made at ingest stay: the words are still there.
    assert (
        await world.scalar(
            "SELECT sum(count) FROM chat_term_day_rollup WHERE kind = 'word' AND term = 'secret'"
        )
        == 2
    )

    # Nothing left: no question this time.
    await world.say(world.admin, "/set_text off")
    assert "No stored text was left" in world.bot.api.sent_texts()[-1]


async def test_keep_and_turned_back_on_delete_nothing(world: World):
    await world.say(world.admin, "/set_text on")
    await world.say(world.alice, "kept text")
    await world.say(world.admin, "/set_text off")
    question = world.sent_id()
    purge, keep = world.last_buttons()
    await world.press(world.admin, question, keep[1])
    assert "kept" in world.bot.api.edits()[-1].message
    await world.say(world.admin, "/set_text on")
    await world.press(world.admin, question, purge[1])  # pressed late, after text is on again
    assert "nothing was deleted" in world.bot.api.edits()[-1].message
    assert await _stored_texts(world) >= 1


async def test_digest_command_on_off_and_bad_arguments(world: World):
    await world.say(world.alice, "/digest on")
    assert "only this chat's admins" in world.bot.api.sent_texts()[-1]
    await world.say(world.admin, "/digest on fri 18")
    assert "every Friday at 18:00 (UTC)" in world.bot.api.sent_texts()[-1]
    assert await world.rows(
        "SELECT weekday, hour, enabled_by FROM digest_subscriptions WHERE chat_id = :c",
        c=world.chat_id,
    ) == [(4, 18, 13)]
    await world.say(world.admin, "/digest")
    assert "every Friday at 18:00" in world.bot.api.sent_texts()[-1]
    await world.say(world.admin, "/digest on <b>someday</b> 25")
    reply = world.bot.api.sent_texts()[-1]
    assert "<b>someday</b>" in reply and "Usage:" in reply  # shown back as text, not markup
    await world.say(world.admin, "/digest off")
    assert "is off" in world.bot.api.sent_texts()[-1]
    assert await world.scalar("SELECT count(*) FROM digest_subscriptions") == 0
    await world.say(world.admin, "/digest off")
    assert "was not on" in world.bot.api.sent_texts()[-1]


async def test_admin_forgets_a_member_through_the_api_and_sees_optouts(world: World):
    client, admin = world.app.client, world.app.admin_headers
    first = await world.say(world.alice, "hello")
    await world.say(world.bob, "hi", reply_to=first)

    assert (await client.delete("/api/v1/users/11")).status_code == 401
    assert (await client.get("/api/v1/optouts")).status_code == 401
    bad = await client.delete("/api/v1/users/0", headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["key"] == "user_id"

    response = await client.delete("/api/v1/users/11", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["opted_out"] is True
    assert body["forgotten"]["removed"]["messages"] == 1
    assert body["forgotten"]["chats"] == [world.chat_id]
    assert await world.scalar("SELECT count(*) FROM messages WHERE user_id = 11") == 0
    assert await world.scalar("SELECT count(*) FROM users WHERE id = 11") == 0

    # From now on she is counted without her name.
    later = await world.say(world.alice, "still here")
    assert (
        await world.scalar(
            "SELECT user_id FROM messages WHERE chat_id = :c AND msg_id = :m",
            c=world.chat_id,
            m=later,
        )
        is None
    )
    listed = (await client.get("/api/v1/optouts", headers=admin)).json()
    assert listed["total"] == 1
    assert [(o["user_id"], o["source"]) for o in listed["optouts"]] == [(11, "admin")]

    # Opt-out only, no forgetting, for Bob.
    response = await client.delete("/api/v1/users/12?forget=false", headers=admin)
    assert response.json()["forgotten"] is None
    assert await world.scalar("SELECT count(*) FROM messages WHERE user_id = 12") == 1

    assert (await client.delete("/api/v1/optouts/11", headers=admin)).status_code == 200
    assert (await client.delete("/api/v1/optouts/11", headers=admin)).status_code == 404
    listed = (await client.get("/api/v1/optouts", headers=admin)).json()
    assert [o["user_id"] for o in listed["optouts"]] == [12]


async def test_help_lists_the_privacy_commands_where_they_apply(world: World):
    await world.say(world.alice, "/help", chat=world.alice)
    private = world.bot.api.sent_texts()[-1]
    for name in ("/forgetme", "/optout", "/optin", "/mydata"):
        assert name in private
    assert "/digest" not in private
    await world.say(world.admin, "/help")
    assert "/digest on [monday..sunday]" in world.bot.api.sent_texts()[-1]


async def test_a_chat_token_reads_its_own_preview_and_nothing_else(world: World):
    client, admin = world.app.client, world.app.admin_headers
    await world.say(world.alice, "hello")
    other = world.bot.raw.supergroup(4999, "Other")
    await world.say(world.alice, "hello", chat=other)
    minted = await client.post(f"/api/v1/chats/{world.chat_id}/tokens", headers=admin)
    assert minted.status_code == 201, minted.text
    token = {"X-API-Token": minted.json()["token"]}

    own = await client.get(f"/api/v1/chats/{world.chat_id}/retention/preview", headers=token)
    assert own.status_code == 200
    elsewhere = await client.get("/api/v1/chats/-1000000004999/retention/preview", headers=token)
    assert elsewhere.status_code == 403
    assert (await client.get("/api/v1/optouts", headers=token)).status_code == 403
    assert (await client.delete("/api/v1/users/11", headers=token)).status_code == 403
    assert (await client.delete("/api/v1/optouts/11", headers=token)).status_code == 403
    assert await world.scalar("SELECT count(*) FROM messages WHERE user_id = 11") == 2
