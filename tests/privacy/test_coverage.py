"""Every table and column that can name a member or belong to a chat is handled.

A new table with a ``chat_id`` must be deleted with its chat after the bot left;
a new column holding a member's id must be cleared or deleted by ``/forgetme``
and exported by ``/mydata`` (or be listed here with the reason it is not).
These tests read the migrated schema, so they fail the day someone adds one.
"""

from __future__ import annotations

from sqlalchemy import text

from tgstats_privacy.data import CHAT_TABLES, EXPORT_SECTIONS, FORGET_STEPS

MEMBER_COLUMNS = (
    "user_id", "from_user_id", "to_user_id", "reply_to_user_id", "forward_from_id",
    "actor_id", "inviter_id", "enabled_by", "created_by",
)  # fmt: skip
# Deliberately kept, with why.
NOT_FORGOTTEN = {
    ("user_optouts", "user_id"),  # the member's own wish not to be recorded outlives forgetting
    ("mtproto_sessions", "user_id"),  # the bot's own account
}
NOT_EXPORTED = NOT_FORGOTTEN | {
    ("messages", "reply_to_user_id"),  # other members' messages
    ("messages", "forward_from_id"),  # other members' messages
    ("service_messages", "actor_id"),  # pins and title changes: no member content
    ("digest_subscriptions", "enabled_by"),
    ("api_tokens", "created_by"),
    # Week rollups are sums of the exported day rollups' sealed weeks: nothing new.
    ("chat_user_week_rollup", "user_id"),
    ("chat_topic_user_week_rollup", "user_id"),
    ("reply_pair_week_rollup", "from_user_id"),
    ("reply_pair_week_rollup", "to_user_id"),
}
NOT_CHAT_DATA = {
    "api_tokens",  # ON DELETE CASCADE with the chat row
    "chat_migrations",  # keyed old_chat_id/new_chat_id, deleted explicitly
}


async def _columns(session_factory, names: tuple[str, ...]) -> set[tuple[str, str]]:
    async with session_factory() as session:
        rows = await session.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND column_name = ANY(:names)"
            ),
            {"names": list(names)},
        )
        return {(r[0], r[1]) for r in rows}


def _mentions(statements: tuple[tuple[str, str], ...], table: str, column: str) -> bool:
    return any(f" {table} " in f" {sql} " and column in sql for _, sql in statements)


async def test_forget_and_export_cover_every_member_column(session_factory):
    columns = await _columns(session_factory, MEMBER_COLUMNS)
    assert ("messages", "user_id") in columns and ("membership_events", "inviter_id") in columns
    unforgotten = {c for c in columns - NOT_FORGOTTEN if not _mentions(FORGET_STEPS, *c)}
    assert unforgotten == set()
    unexported = {c for c in columns - NOT_EXPORTED if not _mentions(EXPORT_SECTIONS, *c)}
    assert unexported == set()


async def test_removed_chat_deletion_covers_every_chat_table(session_factory):
    tables = {t for t, _ in await _columns(session_factory, ("chat_id",))}
    assert "messages" in tables
    assert tables - NOT_CHAT_DATA - set(CHAT_TABLES) == set()
