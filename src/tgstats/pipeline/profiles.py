"""Chats and users: upserted once per batch, with history rows when names change."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from tgstats.events import ChatSnapshot, UserSnapshot
from tgstats.pipeline.batch import BatchState, chat_type_for_id

__all__ = ["ensure_chats", "write_chat_snapshots", "write_user_snapshots"]

#: ``updated_at`` of a chat row created before any snapshot: any snapshot is newer.
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)

_CHAT_SNAPSHOTS = """
WITH v AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bool[],
                         $6::timestamptz[], $7::bool[])
        AS v(id, type, title, username, is_forum, at, seen)
), old AS (
    SELECT c.id, c.title, c.username FROM chats c JOIN v ON v.id = c.id
), up AS (
    INSERT INTO chats (id, type, title, username, is_forum, updated_at, bot_present)
    SELECT id, type, title, username, is_forum, at, seen FROM v
    ON CONFLICT (id) DO UPDATE SET type = excluded.type, title = excluded.title,
        username = excluded.username, is_forum = excluded.is_forum,
        updated_at = excluded.updated_at,
        -- seen by the live bot: present, unless an added/removed event decided
        bot_present = chats.bot_present OR (excluded.bot_present AND chats.bot_status_at IS NULL)
    WHERE chats.updated_at <= excluded.updated_at
    RETURNING id, title, username
)
INSERT INTO chat_title_history (chat_id, title, username, changed_at)
SELECT up.id, up.title, up.username, v.at
FROM up JOIN v ON v.id = up.id LEFT JOIN old ON old.id = up.id
WHERE old.id IS NULL OR old.title IS DISTINCT FROM up.title
   OR old.username IS DISTINCT FROM up.username
"""

_USER_SNAPSHOTS = """
WITH v AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::text[],
                         $7::bool[], $8::timestamptz[])
        AS v(id, username, first_name, last_name, is_bot, language_code, is_premium, at)
), old AS (
    SELECT u.id, u.username, u.first_name, u.last_name FROM users u JOIN v ON v.id = u.id
), up AS (
    INSERT INTO users (id, username, first_name, last_name, is_bot, language_code, is_premium,
                       updated_at)
    SELECT id, username, first_name, last_name, is_bot, language_code, is_premium, at FROM v
    ON CONFLICT (id) DO UPDATE SET username = excluded.username,
        first_name = excluded.first_name, last_name = excluded.last_name,
        is_bot = excluded.is_bot, language_code = excluded.language_code,
        is_premium = excluded.is_premium, updated_at = excluded.updated_at
    WHERE users.updated_at <= excluded.updated_at
    RETURNING id, username, first_name, last_name
)
INSERT INTO user_name_history (user_id, username, first_name, last_name, changed_at)
SELECT up.id, up.username, up.first_name, up.last_name, v.at
FROM up JOIN v ON v.id = up.id LEFT JOIN old ON old.id = up.id
WHERE old.id IS NULL OR old.username IS DISTINCT FROM up.username
   OR old.first_name IS DISTINCT FROM up.first_name
   OR old.last_name IS DISTINCT FROM up.last_name
"""

_ENSURE_CHATS = """
INSERT INTO chats (id, type, updated_at)
SELECT id, type, $3::timestamptz FROM unnest($1::bigint[], $2::text[]) AS v(id, type)
ON CONFLICT (id) DO NOTHING
"""


def _text(value: str | None, limit: int | None = None) -> str | None:
    if value is None:
        return None
    value = value.replace("\x00", "")
    return value[:limit] if limit else value


_Snapshot = TypeVar("_Snapshot", ChatSnapshot, UserSnapshot)


def _latest(
    snapshots: Sequence[_Snapshot], key: str, now: datetime
) -> list[tuple[_Snapshot, datetime]]:
    """The newest snapshot per id; one without a date counts as taken now."""
    latest: dict[int, tuple[_Snapshot, datetime]] = {}
    for snapshot in snapshots:
        at = snapshot.date or now
        ident: int = getattr(snapshot, key)
        current = latest.get(ident)
        if current is None or at >= current[1]:
            latest[ident] = (snapshot, at)
    return [latest[k] for k in sorted(latest)]


async def write_chat_snapshots(state: BatchState, snapshots: Sequence[ChatSnapshot]) -> None:
    if not snapshots:
        return
    rows = _latest(snapshots, "chat_id", datetime.now(UTC))
    await state.execute(
        "upsert_chats",
        _CHAT_SNAPSHOTS,
        [s.chat_id for s, _ in rows],
        [s.chat_type[:16] for s, _ in rows],
        [_text(s.title) for s, _ in rows],
        [_text(s.username, 64) for s, _ in rows],
        [s.is_forum for s, _ in rows],
        [at for _, at in rows],
        [s.seen_by_bot for s, _ in rows],
    )
    for s, _ in rows:
        state.touch(s.chat_id)


async def write_user_snapshots(state: BatchState, snapshots: Sequence[UserSnapshot]) -> None:
    if not snapshots:
        return
    rows = _latest(snapshots, "user_id", datetime.now(UTC))
    await state.execute(
        "upsert_users",
        _USER_SNAPSHOTS,
        [s.user_id for s, _ in rows],
        [_text(s.username, 64) for s, _ in rows],
        [_text(s.first_name) for s, _ in rows],
        [_text(s.last_name) for s, _ in rows],
        [s.is_bot for s, _ in rows],
        [_text(s.language_code, 16) for s, _ in rows],
        [s.is_premium for s, _ in rows],
        [at for _, at in rows],
    )


async def ensure_chats(state: BatchState, chat_ids: Iterable[int]) -> None:
    """Every chat an event mentions has a row (stats join on it), typed by its id until a
    snapshot says more."""
    ids = sorted(set(chat_ids))
    if ids:
        await state.execute(
            "ensure_chats", _ENSURE_CHATS, ids, [chat_type_for_id(i) for i in ids], _NEVER
        )
