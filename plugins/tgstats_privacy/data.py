"""A member's data: forget it, export it, opt out of being recorded; a chat's data: delete it.

Each function takes an ``AsyncSession`` and leaves the commit to the caller, so
an API request or a bot command commits what it did as one transaction.

Forgetting a member (``forget_member``) removes, in every chat, their raw rows
(messages, edits, reactions, member events and current membership), their
profile and name history, and their per-member rollup rows. Chat-level rollups
(``chat_day_rollup``, ``chat_hour_rollup``, media and terms) are not touched,
so a chat's totals stay exact and are attributed to no one. Others' rows that
name them (replies to them, forwards from them, joins they caused) keep the row
and lose the name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

__all__ = [
    "CHAT_TABLES",
    "EXPORT_SECTIONS",
    "FORGET_STEPS",
    "ForgetResult",
    "Optout",
    "delete_chat_data",
    "export_json",
    "export_member",
    "forget_member",
    "list_optouts",
    "opt_in",
    "opt_out",
]

# Per-member rollups are keyed (chat_id, user_id, ...) or (chat_id, ..., user_id): going
# through every chat id keeps the delete on the primary key instead of a table scan.
_CHATS = "chat_id = ANY(ARRAY(SELECT id FROM chats))"

#: (what, SQL) in order; each statement takes ``:user``. The counts are reported back.
FORGET_STEPS: tuple[tuple[str, str], ...] = (
    ("messages", "DELETE FROM messages WHERE user_id = :user"),
    (
        "replies_to_them",
        "UPDATE messages SET reply_to_user_id = NULL WHERE reply_to_user_id = :user",
    ),
    (
        "forwards_from_them",
        "UPDATE messages SET forward_from_id = NULL, forward_from_name = NULL,"
        " forward_origin = 'hidden_user' WHERE forward_from_id = :user AND forward_origin = 'user'",
    ),
    ("edits", "DELETE FROM message_edits WHERE user_id = :user"),
    ("reactions", "DELETE FROM message_reactions WHERE user_id = :user"),
    ("member_events", "DELETE FROM membership_events WHERE user_id = :user"),
    # Their questions go; a question they answered first keeps its answer time unnamed.
    ("questions", "DELETE FROM question_replies WHERE asker_id = :user"),
    (
        "answers",
        "UPDATE question_replies SET replier_id = NULL WHERE replier_id = :user",
    ),
    (
        "member_events_by_them",
        "UPDATE membership_events SET actor_id = CASE WHEN actor_id = :user THEN NULL"
        " ELSE actor_id END, inviter_id = CASE WHEN inviter_id = :user THEN NULL"
        " ELSE inviter_id END WHERE actor_id = :user OR inviter_id = :user",
    ),
    ("memberships", "DELETE FROM memberships WHERE user_id = :user"),
    ("service_messages", "UPDATE service_messages SET actor_id = NULL WHERE actor_id = :user"),
    (
        "digests_enabled",
        "UPDATE digest_subscriptions SET enabled_by = NULL WHERE enabled_by = :user",
    ),
    ("tokens_created", "UPDATE api_tokens SET created_by = NULL WHERE created_by = :user"),
    ("profile", "DELETE FROM users WHERE id = :user"),
    ("name_history", "DELETE FROM user_name_history WHERE user_id = :user"),
    ("user_day_rollup", f"DELETE FROM chat_user_day_rollup WHERE {_CHATS} AND user_id = :user"),
    ("user_hour_rollup", f"DELETE FROM chat_user_hour_rollup WHERE {_CHATS} AND user_id = :user"),
    (
        "topic_rollup",
        f"DELETE FROM chat_topic_user_day_rollup WHERE {_CHATS} AND user_id = :user",
    ),
    (
        "reply_pair_rollup",
        f"DELETE FROM reply_pair_day_rollup WHERE {_CHATS}"
        " AND (from_user_id = :user OR to_user_id = :user)",
    ),
    ("user_week_rollup", f"DELETE FROM chat_user_week_rollup WHERE {_CHATS} AND user_id = :user"),
    (
        "topic_week_rollup",
        f"DELETE FROM chat_topic_user_week_rollup WHERE {_CHATS} AND user_id = :user",
    ),
    (
        "reply_pair_week_rollup",
        f"DELETE FROM reply_pair_week_rollup WHERE {_CHATS}"
        " AND (from_user_id = :user OR to_user_id = :user)",
    ),
)

# The chats whose numbers change, found before the rows that say so are gone.
_AFFECTED_CHATS = """
SELECT chat_id FROM messages WHERE user_id = :user
UNION SELECT chat_id FROM message_reactions WHERE user_id = :user
UNION SELECT chat_id FROM membership_events WHERE user_id = :user
UNION SELECT chat_id FROM chat_user_day_rollup WHERE chat_id = ANY(ARRAY(SELECT id FROM chats))
    AND user_id = :user
"""

_BUMP_VERSIONS = """
INSERT INTO chat_data_versions (chat_id, version) SELECT unnest(CAST(:chats AS bigint[])), 1
ON CONFLICT (chat_id) DO UPDATE SET version = chat_data_versions.version + 1
"""

# The Telegram session's address book (MTProto plugin) keeps a member's usernames and
# phone number; only the id and access hash are needed to reach them.
_PEER_NAMES = """
UPDATE mtproto_peers SET usernames = '{}', phone_number = NULL
WHERE id = :user AND (usernames <> '{}' OR phone_number IS NOT NULL)
"""


class ForgetResult(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    chats: list[int]
    removed: dict[str, int]


class Optout(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    source: str  # member (their own /optout) | admin (the API)
    created_at: datetime


async def forget_member(session: AsyncSession, user_id: int) -> ForgetResult:
    """Remove what names ``user_id`` everywhere (see the module docstring); caller commits."""
    params = {"user": user_id}
    chats = sorted(int(r[0]) for r in await session.execute(text(_AFFECTED_CHATS), params))
    removed: dict[str, int] = {}
    for name, sql in FORGET_STEPS:
        result: Any = await session.execute(text(sql), params)
        removed[name] = int(result.rowcount or 0)
    if (await session.execute(text("SELECT to_regclass('mtproto_peers')"))).scalar() is not None:
        await session.execute(text(_PEER_NAMES), params)
    if chats:
        # Cached stats carry the data version: forgotten members vanish from cached answers.
        await session.execute(text(_BUMP_VERSIONS), {"chats": chats})
    return ForgetResult(user_id=user_id, chats=chats, removed=removed)


async def opt_out(session: AsyncSession, user_id: int, *, source: str) -> bool:
    """Record the opt-out; False when it was recorded before. Caller commits."""
    result: Any = await session.execute(
        text(
            "INSERT INTO user_optouts (user_id, source) VALUES (:user, :source)"
            " ON CONFLICT (user_id) DO NOTHING"
        ),
        {"user": user_id, "source": source},
    )
    return bool(result.rowcount)


async def opt_in(session: AsyncSession, user_id: int) -> bool:
    """Remove the opt-out; False when there was none. Caller commits."""
    result: Any = await session.execute(
        text("DELETE FROM user_optouts WHERE user_id = :user"), {"user": user_id}
    )
    return bool(result.rowcount)


async def list_optouts(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[int, list[Optout]]:
    total = int((await session.execute(text("SELECT count(*) FROM user_optouts"))).scalar_one())
    rows = await session.execute(
        text(
            "SELECT user_id, source, created_at FROM user_optouts"
            " ORDER BY created_at DESC, user_id LIMIT :limit OFFSET :offset"
        ),
        {"limit": limit, "offset": offset},
    )
    return total, [Optout(user_id=r[0], source=r[1], created_at=r[2]) for r in rows]


# --------------------------------------------------------------------------- export

#: (section, SQL): everything stored that names the member; each takes ``:user``.
EXPORT_SECTIONS: tuple[tuple[str, str], ...] = (
    ("profile", "SELECT * FROM users WHERE id = :user"),
    ("name_history", "SELECT * FROM user_name_history WHERE user_id = :user ORDER BY changed_at"),
    ("opt_out", "SELECT * FROM user_optouts WHERE user_id = :user"),
    ("memberships", "SELECT * FROM memberships WHERE user_id = :user ORDER BY chat_id"),
    (
        "member_events",
        "SELECT * FROM membership_events WHERE user_id = :user OR actor_id = :user"
        " OR inviter_id = :user ORDER BY date, id",
    ),
    ("messages", "SELECT * FROM messages WHERE user_id = :user ORDER BY chat_id, msg_id"),
    (
        "edits",
        "SELECT * FROM message_edits WHERE user_id = :user ORDER BY chat_id, msg_id, edit_date",
    ),
    ("reactions", "SELECT * FROM message_reactions WHERE user_id = :user ORDER BY added_at, id"),
    (
        "daily_activity",
        f"SELECT * FROM chat_user_day_rollup WHERE {_CHATS} AND user_id = :user"
        " ORDER BY chat_id, local_day",
    ),
    (
        "hourly_activity",
        f"SELECT * FROM chat_user_hour_rollup WHERE {_CHATS} AND user_id = :user"
        " ORDER BY chat_id, local_day, local_hour",
    ),
    (
        "topic_activity",
        f"SELECT * FROM chat_topic_user_day_rollup WHERE {_CHATS} AND user_id = :user"
        " ORDER BY chat_id, topic_id, local_day",
    ),
    (
        "replies",
        f"SELECT * FROM reply_pair_day_rollup WHERE {_CHATS}"
        " AND (from_user_id = :user OR to_user_id = :user) ORDER BY chat_id, local_day",
    ),
)

_ENCODER = msgspec.json.Encoder()


async def export_member(session: AsyncSession, user_id: int) -> dict[str, Any]:
    """Every row stored about ``user_id``, by section, ready for JSON."""
    params = {"user": user_id}
    data: dict[str, Any] = {
        "user_id": user_id,
        "generated_at": datetime.now(UTC),
        "about": (
            "Everything tgstats stores that names you. Chat-wide counts (messages per "
            "day or hour, words, links, media) name no one and are not included."
        ),
    }
    for section, sql in EXPORT_SECTIONS:
        rows = await session.execute(text(sql), params)
        data[section] = [dict(row._mapping) for row in rows]
    return data


def export_json(data: dict[str, Any]) -> bytes:
    """The export as indented JSON (dates as ISO 8601)."""
    return msgspec.json.format(_ENCODER.encode(data), indent=2)


# --------------------------------------------------------------------------- chats

#: Every table holding a chat's rows, keyed by ``chat_id`` (the chat row itself goes last).
CHAT_TABLES: tuple[str, ...] = (
    "messages", "message_edits", "message_reactions", "reaction_counts",
    "message_reaction_totals", "service_messages",
    "forum_topics", "membership_events", "question_replies", "memberships", "chat_title_history",
    "chat_day_rollup", "chat_hour_rollup", "chat_user_day_rollup", "chat_user_hour_rollup",
    "chat_media_day_rollup", "chat_term_day_rollup", "chat_topic_user_day_rollup",
    "reply_pair_day_rollup", "chat_user_week_rollup", "chat_term_week_rollup",
    "chat_topic_user_week_rollup", "reply_pair_week_rollup", "chat_settings",
    "purged_message_ranges", "chat_purges", "chat_recounts",
    "coverage_gaps", "unavailable_message_ranges", "chat_capture_spans", "chat_import_spans",
    "chat_member_counts",
    "digest_subscriptions", "digest_deliveries", "chat_data_versions", "chat_list_summary",
    "job_state",
)  # fmt: skip


async def delete_chat_data(session: AsyncSession | AsyncConnection, chat_id: int) -> dict[str, int]:
    """Delete everything stored for one chat (its tokens go with the chat row). Caller commits."""
    removed: dict[str, int] = {}
    for table in CHAT_TABLES:
        result: Any = await session.execute(
            text(f"DELETE FROM {table} WHERE chat_id = :chat"),
            {"chat": chat_id},
        )
        removed[table] = int(result.rowcount or 0)
    await session.execute(
        text("DELETE FROM chat_migrations WHERE old_chat_id = :chat OR new_chat_id = :chat"),
        {"chat": chat_id},
    )
    result = await session.execute(text("DELETE FROM chats WHERE id = :chat"), {"chat": chat_id})
    removed["chats"] = int(getattr(result, "rowcount", 0) or 0)
    return removed
