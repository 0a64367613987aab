"""Member changes, service messages (forum topics) and the bot joining or leaving."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tgstats.events import JOIN_SOURCES, BotMembershipEvent, MemberEvent, ServiceEvent
from tgstats.pipeline.batch import BatchState
from tgstats.pipeline.rollups import membership_effect

__all__ = [
    "TOPIC_ACTIONS",
    "write_bot_memberships",
    "write_members",
    "write_service_messages",
]

#: The status a member has after each action, when the event does not say.
_STATUS_AFTER = {
    "join": "member",
    "leave": "left",
    "kick": "left",
    "ban": "banned",
    "unban": "left",
    "promote": "administrator",
    "demote": "member",
    "restrict": "restricted",
}

_INSERT_MEMBER_EVENTS = """
INSERT INTO membership_events (chat_id, user_id, action, date, local_day, actor_id, inviter_id,
                               invite_link, old_status, new_status, source_msg_id, source_index,
                               join_source, invite_link_name)
SELECT v.* FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::date[],
                       $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[],
                       $11::bigint[], $12::smallint[], $13::text[], $14::text[])
    AS v(chat_id, user_id, action, date, local_day, actor_id, inviter_id, invite_link,
         old_status, new_status, source_msg_id, source_index, join_source, invite_link_name)
LEFT JOIN chat_purges p ON p.chat_id = v.chat_id
-- Counted before retention purged it: a member event of a purged service message, or
-- one without a message from before the purge.
WHERE p.purged_before IS NULL OR NOT (
    CASE WHEN v.source_msg_id IS NULL THEN v.date < p.purged_before
    ELSE EXISTS (
        SELECT 1 FROM purged_message_ranges r WHERE r.chat_id = v.chat_id
        AND r.low = (SELECT max(q.low) FROM purged_message_ranges q
                     WHERE q.chat_id = v.chat_id AND q.low <= v.source_msg_id)
        AND r.high >= v.source_msg_id)
    END)
-- Either key: the natural one (live events) or the service message and the member's
-- place in it (imports: the same whatever zone the export's wall times were read in).
ON CONFLICT DO NOTHING
RETURNING chat_id, user_id, action, date, local_day, old_status, new_status
"""

_UPSERT_MEMBERSHIPS = """
INSERT INTO memberships (chat_id, user_id, status, joined_at, left_at, updated_at)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[],
                     $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (chat_id, user_id) DO UPDATE SET
    status = excluded.status,
    joined_at = coalesce(excluded.joined_at, memberships.joined_at),
    left_at = coalesce(excluded.left_at, memberships.left_at),
    updated_at = excluded.updated_at
WHERE memberships.updated_at <= excluded.updated_at
"""


def _short(value: str | None, limit: int = 16) -> str | None:
    return value[:limit] if value else value


async def write_members(state: BatchState, events: Sequence[MemberEvent]) -> None:
    """Log each member change once; keep the newest state; count joins and leaves."""
    if not events:
        return
    columns: list[list[object]] = [[] for _ in range(14)]
    for e in events:
        day = state.local(e.chat_id, e.date)[0]
        source = e.join_source if e.action == "join" and e.join_source in JOIN_SOURCES else None
        link_name = e.invite_link_name.replace("\x00", "")[:64] if e.invite_link_name else None
        for column, value in zip(
            columns,
            (e.chat_id, e.user_id, e.action[:16], e.date, day, e.actor_id, e.inviter_id,
             e.invite_link, _short(e.old_status), _short(e.new_status), e.source_msg_id,
             e.source_index, source, link_name if source else None),
            strict=True,
        ):  # fmt: skip
            column.append(value)
    rows = await state.fetch("insert_membership_events", _INSERT_MEMBER_EVENTS, *columns)
    latest: dict[tuple[int, int], tuple[datetime, str, str | None]] = {}
    for chat_id, user_id, action, date, local_day, old_status, new_status in rows:
        joins, leaves = membership_effect(action, old_status)
        if joins or leaves:
            state.delta.add_membership(chat_id=chat_id, day=local_day, joins=joins, leaves=leaves)
        state.touch(chat_id)
        if user_id is None:
            continue
        current = latest.get((chat_id, user_id))
        if current is None or date >= current[0]:
            status = new_status or _STATUS_AFTER.get(action, "member")
            latest[(chat_id, user_id)] = (date, status, action)
    if not latest:
        return
    keys = sorted(latest)
    await state.execute(
        "upsert_memberships",
        _UPSERT_MEMBERSHIPS,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [latest[k][1] for k in keys],
        [latest[k][0] if latest[k][2] == "join" else None for k in keys],
        [latest[k][0] if latest[k][2] in {"leave", "kick", "ban"} else None for k in keys],
        [latest[k][0] for k in keys],
    )


#: Service actions that change ``forum_topics``.
TOPIC_ACTIONS = frozenset({"topic_created", "topic_edited", "topic_closed", "topic_reopened"})

_INSERT_SERVICE = """
INSERT INTO service_messages (chat_id, msg_id, date, action, actor_id, topic_id, title)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::bigint[],
                     $6::bigint[], $7::text[])
ON CONFLICT (chat_id, msg_id) DO NOTHING
RETURNING chat_id, msg_id, date, action, topic_id, title
"""

_TOPIC_SQL = {
    "topic_created": """
        INSERT INTO forum_topics (chat_id, topic_id, title, created_at) VALUES ($1, $2, $3, $4)
        ON CONFLICT (chat_id, topic_id) DO UPDATE SET created_at = excluded.created_at,
            title = coalesce(forum_topics.title, excluded.title)""",
    "topic_edited": """
        INSERT INTO forum_topics (chat_id, topic_id, title) VALUES ($1, $2, $3)
        ON CONFLICT (chat_id, topic_id) DO UPDATE
            SET title = coalesce(excluded.title, forum_topics.title)""",
    "topic_closed": """
        INSERT INTO forum_topics (chat_id, topic_id, closed) VALUES ($1, $2, true)
        ON CONFLICT (chat_id, topic_id) DO UPDATE SET closed = true""",
    "topic_reopened": """
        INSERT INTO forum_topics (chat_id, topic_id, closed) VALUES ($1, $2, false)
        ON CONFLICT (chat_id, topic_id) DO UPDATE SET closed = false""",
}


async def write_service_messages(state: BatchState, events: Sequence[ServiceEvent]) -> None:
    """Record service messages once; forum topic actions keep ``forum_topics`` current.

    The topic of a ``topic_created`` message is the message itself when the
    event does not name it (Telegram's convention: a topic's id is the id of
    the service message that created it).
    """
    if not events:
        return
    rows = await state.fetch(
        "insert_service_messages",
        _INSERT_SERVICE,
        [e.chat_id for e in events],
        [e.msg_id for e in events],
        [e.date for e in events],
        [e.action[:32] for e in events],
        [e.actor_id for e in events],
        [e.topic_id for e in events],
        [e.title.replace("\x00", "") if e.title else e.title for e in events],
    )
    for chat_id, msg_id, date, action, topic_id, title in sorted(rows, key=lambda r: r[2]):
        state.touch(chat_id)
        if action not in TOPIC_ACTIONS:
            continue
        topic = topic_id if topic_id is not None else msg_id
        args: tuple[object, ...]
        if action == "topic_created":
            args = (chat_id, topic, title, date)
        elif action == "topic_edited":
            args = (chat_id, topic, title)
        else:
            args = (chat_id, topic)
        await state.execute(f"upsert_{action}", _TOPIC_SQL[action], *args)


_BOT_MEMBERSHIP = """
UPDATE chats c SET
    bot_present = v.added,
    bot_removed_at = CASE WHEN v.added THEN NULL ELSE v.at END,
    bot_status_at = v.at
FROM unnest($1::bigint[], $2::bool[], $3::timestamptz[]) AS v(id, added, at)
WHERE c.id = v.id AND (c.bot_status_at IS NULL OR c.bot_status_at < v.at)
RETURNING c.id
"""


async def write_bot_memberships(state: BatchState, events: Sequence[BotMembershipEvent]) -> None:
    """The newest added/removed event per chat wins; an older one delivered late is ignored."""
    latest: dict[int, BotMembershipEvent] = {}
    for e in events:
        current = latest.get(e.chat_id)
        if current is None or e.date >= current.date:
            latest[e.chat_id] = e
    if not latest:
        return
    keys = sorted(latest)
    rows = await state.fetch(
        "update_bot_membership", _BOT_MEMBERSHIP, keys, [latest[k].added for k in keys],
        [latest[k].date for k in keys],
    )  # fmt: skip
    for row in rows:
        state.touch(row[0])
