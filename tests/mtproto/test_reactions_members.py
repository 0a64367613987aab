"""Reactions, reaction counts, member updates and the bot's own membership."""

from __future__ import annotations

import pytest

from tgstats.events import (
    BotMembershipEvent,
    MemberEvent,
    ReactionCountEvent,
    ReactionEvent,
    UserSnapshot,
)
from tgstats.plugin_api import update_chat_settings

GROUP_ID = -1000000001001


@pytest.fixture
def peers(harness):
    tg = harness.raw
    return {
        "group": tg.supergroup(1001, "Friends"),
        "basic": tg.basic_group(55, "Old group"),
        "alice": tg.user(11, "Alice", username="alice"),
        "bob": tg.user(12, "Bob"),
    }


async def test_reaction_added_removed_and_custom_emoji(harness, sink, peers):
    tg = harness.raw
    group, alice = peers["group"], peers["alice"]
    await harness.feed(tg.reaction(group, alice, 5, new=[tg.emoji("👍")]))
    await harness.feed(
        tg.reaction(
            group,
            alice,
            5,
            old=[tg.emoji("👍")],
            new=[tg.emoji("❤"), tg.custom_emoji(5368324170671202286)],
        )
    )
    await harness.feed(tg.reaction(group, alice, 5, old=[tg.emoji("❤")]))
    first, second, third = sink.of(ReactionEvent)
    assert (first.chat_id, first.msg_id, first.user_id) == (GROUP_ID, 5, 11)
    assert (first.added, first.removed) == (("👍",), ())
    assert (second.added, second.removed) == (("❤", "custom:5368324170671202286"), ("👍",))
    assert (third.added, third.removed) == ((), ("❤",))
    assert sink.of(UserSnapshot)[0].user_id == 11


async def test_anonymous_reaction_by_a_chat(harness, sink, peers):
    tg = harness.raw
    group = peers["group"]
    await harness.feed(tg.reaction(group, group, 6, new=[tg.emoji("🔥")]))
    [event] = sink.of(ReactionEvent)
    assert event.user_id is None and event.actor_chat_id == GROUP_ID


async def test_reaction_counts(harness, sink, peers):
    tg = harness.raw
    await harness.feed(
        tg.reaction_counts(peers["group"], 7, [(tg.emoji("👍"), 3), (tg.custom_emoji(42), 1)])
    )
    [event] = sink.of(ReactionCountEvent)
    assert (event.chat_id, event.msg_id) == (GROUP_ID, 7)
    assert event.counts == (("👍", 3), ("custom:42", 1))


async def test_reactions_off_for_a_chat_records_none(harness, sink, peers, session_factory):
    tg = harness.raw
    group = tg.supergroup(1004, "No reactions")
    async with session_factory() as session:
        await update_chat_settings(session, -1000000001004, capture_reactions=False)
        await session.commit()
    await harness.feed(tg.reaction(group, peers["alice"], 5, new=[tg.emoji("👍")]))
    await harness.feed(tg.reaction_counts(group, 5, [(tg.emoji("👍"), 1)]))
    assert sink.of(ReactionEvent) == [] and sink.of(ReactionCountEvent) == []


async def _member(harness, peers, *, old, new, actor=None, invite=None):
    tg = harness.raw
    await harness.feed(
        tg.channel_member(
            peers["group"],
            peers["bob"],
            actor or peers["bob"],
            old=old,
            new=new,
            invite=invite,
            extra_peers=[peers["alice"]],
        )
    )


async def test_member_actions(harness, sink, peers):
    tg = harness.raw
    bob, alice = peers["bob"], peers["alice"]
    link = tg.invite("https://t.me/+abcdef", admin_id=alice.id)
    await _member(harness, peers, old=None, new=tg.participant(bob), invite=link)  # join
    await _member(
        harness, peers, old=tg.participant(bob), new=tg.admin(bob, alice.id), actor=alice
    )  # promote
    await _member(
        harness, peers, old=tg.admin(bob, alice.id), new=tg.participant(bob), actor=alice
    )  # demote
    await _member(
        harness, peers, old=tg.participant(bob), new=tg.restricted(bob, alice.id), actor=alice
    )  # restrict
    await _member(
        harness, peers, old=tg.participant(bob), new=tg.banned(bob, alice.id), actor=alice
    )  # ban
    await _member(harness, peers, old=tg.banned(bob, alice.id), new=None, actor=alice)  # unban
    await _member(harness, peers, old=tg.participant(bob), new=tg.left(bob))  # leave
    await _member(harness, peers, old=tg.participant(bob), new=None, actor=alice)  # kick
    events = sink.of(MemberEvent)
    assert [e.action for e in events] == [
        "join",
        "promote",
        "demote",
        "restrict",
        "ban",
        "unban",
        "leave",
        "kick",
    ]
    join = events[0]
    assert (join.chat_id, join.user_id, join.invite_link) == (GROUP_ID, 12, "https://t.me/+abcdef")
    assert events[1].actor_id == 11 and events[1].new_status == "administrator"
    assert all(e.user_id == 12 for e in events)


async def test_basic_group_member_update(harness, sink, peers):
    from pyrogram import raw

    tg = harness.raw
    basic, bob, alice = peers["basic"], peers["bob"], peers["alice"]
    await harness.feed(
        tg.chat_member(
            basic,
            bob,
            alice,
            old=None,
            new=raw.types.ChatParticipant(user_id=bob.id, inviter_id=alice.id, date=tg.now),
        )
    )
    [event] = sink.of(MemberEvent)
    assert (event.chat_id, event.user_id, event.action, event.inviter_id) == (-55, 12, "join", 11)


async def test_bot_added_and_removed(harness, sink, peers):
    tg = harness.raw
    group, alice = peers["group"], peers["alice"]
    bot = tg.bot
    await harness.feed(tg.channel_member(group, bot, alice, old=None, new=tg.participant(bot)))
    await harness.feed(
        tg.channel_member(group, bot, alice, old=tg.participant(bot), new=tg.admin(bot, alice.id))
    )
    await harness.feed(
        tg.channel_member(
            group, bot, alice, old=tg.admin(bot, alice.id), new=tg.banned(bot, alice.id)
        )
    )
    added, removed = sink.of(BotMembershipEvent)
    assert (added.chat_id, added.added, added.actor_id) == (GROUP_ID, True, 11)
    assert (removed.added, removed.actor_id) == (False, 11)
    assert sink.of(MemberEvent) == []  # the bot is not counted as a member


async def test_join_reported_by_service_message_and_member_update_counts_once(harness, sink, peers):
    from pyrogram import raw

    tg = harness.raw
    group, bob, alice = peers["group"], peers["bob"], peers["alice"]
    await harness.feed(
        tg.service(
            group,
            bob,
            raw.types.MessageActionChatJoinedByLink(inviter_id=alice.id),
            extra_peers=[alice],
        )
    )
    tg.now += 1  # the member update is stamped a second later
    await harness.feed(tg.channel_member(group, bob, bob, old=None, new=tg.participant(bob)))
    [join] = sink.of(MemberEvent)
    assert (join.action, join.user_id, join.inviter_id) == ("join", 12, 11)
    # a real rejoin later is a new join
    tg.now += 600
    await harness.feed(tg.channel_member(group, bob, bob, old=None, new=tg.participant(bob)))
    assert len(sink.of(MemberEvent)) == 2


async def test_join_sources_from_member_updates(harness, sink, peers):
    tg = harness.raw
    bob, alice = peers["bob"], peers["alice"]
    named = tg.invite("https://t.me/+named", admin_id=alice.id, title="Spring campaign")
    approval = tg.invite("https://t.me/+approve", admin_id=alice.id, request_needed=True)
    ways = [
        dict(invite=named),  # an invite link with a name
        dict(invite=tg.invite("https://t.me/+plain", admin_id=alice.id)),  # without one
        dict(invite=approval),  # a link that needs an admin's approval: a join request
        dict(actor=alice),  # added by a member
        dict(),  # by themselves (a public group)
    ]
    for way in ways:
        await _member(harness, peers, old=None, new=tg.participant(bob), **way)
        tg.now += 600
        await _member(harness, peers, old=tg.participant(bob), new=tg.left(bob))
        tg.now += 600
    # A chat folder link: kurigram drops the flag; the raw update's note carries it over.
    await harness.feed(
        tg.channel_member(
            peers["group"], bob, bob, old=None, new=tg.participant(bob), via_chatlist=True,
            extra_peers=[alice],
        )
    )  # fmt: skip
    joins = [e for e in sink.of(MemberEvent) if e.action == "join"]
    assert [(e.join_source, e.invite_link_name) for e in joins] == [
        ("link", "Spring campaign"),
        ("link", None),
        ("request", None),
        ("added", None),
        ("direct", None),
        ("folder", None),
    ]
    assert all(e.join_source is None for e in sink.of(MemberEvent) if e.action != "join")


async def test_join_sources_from_service_messages(harness, sink, peers):
    from pyrogram import raw

    tg = harness.raw
    group, bob, alice = peers["group"], peers["bob"], peers["alice"]
    actions = [
        (bob, raw.types.MessageActionChatJoinedByLink(inviter_id=alice.id)),
        (bob, raw.types.MessageActionChatJoinedByRequest()),
        (alice, raw.types.MessageActionChatAddUser(users=[bob.id])),
        (bob, raw.types.MessageActionChatAddUser(users=[bob.id])),
    ]
    for actor, action in actions:
        await harness.feed(tg.service(group, actor, action, extra_peers=[alice, bob]))
        tg.now += 600
    joins = sink.of(MemberEvent)
    assert [(e.join_source, e.inviter_id) for e in joins] == [
        ("link", 11), ("request", None), ("added", 11), ("direct", None),
    ]  # fmt: skip
