"""Messages, edits and deletions: raw rows first, rollups only from what changed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from tgstats.events import DeleteEvent, EditEvent, MessageEvent, TextFeatures
from tgstats.pipeline.batch import BatchState
from tgstats.pipeline.errors import ConcurrentWrite
from tgstats.pipeline.migration import moved_msg_id
from tgstats.pipeline.questions import NewMessage, write_questions

__all__ = ["write_deletes", "write_edits", "write_messages"]

_ENCODE = msgspec.json.Encoder()
_SMALLINT_MAX = 32_767

_MESSAGE_COLUMNS = (
    "chat_id", "msg_id", "date", "local_day", "local_hour", "user_id", "sender_chat_id",
    "topic_id", "reply_to_msg_id", "reply_to_user_id", "media_type", "text_length", "url_count",
    "emoji_count", "mention_count", "hashtag_count", "entities", "forward_origin",
    "forward_from_id", "forward_from_name", "via_bot_id", "edit_date", "edit_count", "text",
)  # fmt: skip

# Which of the batch's messages are stored already, and who posted the messages replied to.
# The ids asked for come as runs (``_runs``): one primary-key range scan per run instead
# of one probe per message. The LATERAL subquery with OFFSET 0 stays a scan per run: as a
# plain join, the planner (seeing one chat id in the statistics, or none yet on a new
# database) hashes the runs and filters a sequential scan of every message (measured:
# 0.5 s per lookup at 100k messages instead of 1 ms).
_LOOKUP = """
SELECT v.chat_id, m.msg_id, m.poster, NULL::bigint
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(chat_id, low, high)
CROSS JOIN LATERAL (
    SELECT m.msg_id, coalesce(m.user_id, m.sender_chat_id) AS poster FROM messages m
    WHERE m.chat_id = v.chat_id AND m.msg_id BETWEEN v.low AND v.high OFFSET 0
) m
UNION ALL
SELECT v.chat_id, p.low, NULL, p.high
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(chat_id, low, high)
CROSS JOIN LATERAL (
    SELECT p.low, p.high FROM purged_message_ranges p
    WHERE p.chat_id = v.chat_id AND p.low <= v.high AND p.low >= coalesce(
        (SELECT max(q.low) FROM purged_message_ranges q
         WHERE q.chat_id = v.chat_id AND q.low <= v.low), v.low)
    OFFSET 0
) p
"""
# The second half finds the ids retention purged (``purged_message_ranges``, runs that
# never overlap: the one starting at or before a run's low, and those starting inside
# it): counted once already, so known. Both halves read one snapshot, so a retention run
# committing meanwhile can never make a message look new.
# Ids at most this far apart share a run (the scan then reads a few ids nobody asked for).
_RUN_GAP = 16


def _clean(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; drop it rather than lose the message."""
    return value.replace("\x00", "") if value and "\x00" in value else value


def _entities(features: TextFeatures) -> str | None:
    found: dict[str, tuple[str, ...]] = {}
    if features.urls:
        found["urls"] = features.urls
    if features.hashtags:
        found["hashtags"] = features.hashtags
    if features.mentions:
        found["mentions"] = features.mentions
    if features.emojis:
        found["emojis"] = features.emojis
    if features.commands:
        found["commands"] = features.commands
    if not found:
        return None
    encoded = _ENCODE.encode(found).decode()
    if "\\u0000" in encoded:  # jsonb refuses NUL: encode again without it
        cleaned = {k: [v.replace("\x00", "") for v in values] for k, values in found.items()}
        encoded = _ENCODE.encode(cleaned).decode()
    return encoded


async def posters_of(
    state: BatchState, keys: set[tuple[int, int]]
) -> dict[tuple[int, int], int | None]:
    """The poster of each known message among ``keys`` (absent when never seen)."""
    if not keys:
        return {}
    rows = await state.fetch("select_posters", _LOOKUP, *_runs(keys))
    found: dict[tuple[int, int], int | None] = {}
    purged: list[tuple[int, int, int]] = []
    for chat_id, msg_id, poster, purged_to in rows:
        if purged_to is None:
            if (chat_id, msg_id) in keys:
                found[(chat_id, msg_id)] = poster
        else:
            purged.append((chat_id, msg_id, purged_to))
    if purged:
        for key in keys:
            if key not in found and any(
                c == key[0] and low <= key[1] <= high for c, low, high in purged
            ):
                found[key] = None  # counted before its raw row was purged: no poster known
    return found


def _runs(keys: set[tuple[int, int]]) -> tuple[list[int], list[int], list[int]]:
    """``keys`` as (chat ids, lows, highs) of id runs with gaps of at most ``_RUN_GAP``."""
    chats: list[int] = []
    lows: list[int] = []
    highs: list[int] = []
    for chat_id, msg_id in sorted(keys):
        if chats and chats[-1] == chat_id and msg_id - highs[-1] <= _RUN_GAP:
            highs[-1] = msg_id
        else:
            chats.append(chat_id)
            lows.append(msg_id)
            highs.append(msg_id)
    return chats, lows, highs


async def write_messages(state: BatchState, events: Sequence[MessageEvent]) -> None:
    """Insert the messages not stored yet, with ``COPY``; count only those.

    One lookup finds both the messages already stored (a re-delivery: skipped)
    and the authors of replied-to messages. The new rows then go in with
    binary ``COPY``, several times faster than ``INSERT`` for a batch. Should
    another writer insert one of them in between, the unique violation makes
    the batch retry (``ConcurrentWrite``), and the retry's lookup skips it.
    """
    if not events:
        return
    in_batch = {(e.chat_id, e.msg_id): e for e in events}
    # Reply targets: the event says, or the replied message is in this batch, or stored
    # (only those are looked up: most replies answer recent messages, in the same batch).
    wanted = set(in_batch)
    for e in events:
        if e.reply_to_msg_id is not None and e.reply_to_user_id is None:
            target_key = (e.chat_id, e.reply_to_msg_id)
            if target_key not in in_batch:
                wanted.add(target_key)
    stored = await posters_of(state, wanted)
    records: list[tuple[object, ...]] = []
    edited: list[tuple[int, int, datetime, int | None]] = []
    inserted: list[NewMessage] = []
    delta = state.delta
    counted = state.outcome.messages
    small = _SMALLINT_MAX
    for key, e in in_batch.items():
        if key in stored:
            continue  # delivered before
        ctx = state.chat(e.chat_id)
        day, hour = state.clock.local(e.date, ctx.zone)
        poster = e.user_id if e.user_id is not None else e.sender_chat_id
        target = e.reply_to_user_id
        if target is None and e.reply_to_msg_id is not None:
            replied = in_batch.get((e.chat_id, e.reply_to_msg_id))
            if replied is not None:
                target = replied.user_id if replied.user_id is not None else replied.sender_chat_id
            else:
                target = stored.get((e.chat_id, e.reply_to_msg_id))
        f = e.features
        origin = e.forward_origin
        inserted.append(
            (e.chat_id, e.msg_id, e.date, day, poster, f.is_question, e.reply_to_msg_id)
        )
        records.append((
            e.chat_id, e.msg_id, e.date, day, hour, e.user_id, e.sender_chat_id, e.topic_id,
            e.reply_to_msg_id, target, e.media_type, f.text_length, min(len(f.urls), small),
            min(len(f.emojis), small), min(len(f.mentions), small), min(len(f.hashtags), small),
            _entities(f), origin.origin if origin else None, origin.id if origin else None,
            _clean(origin.name) if origin else None, e.via_bot_id, e.edit_date,
            0 if e.edit_date is None else 1, _clean(e.text) if ctx.store_text else None,
        ))  # fmt: skip
        if e.edit_date is not None:  # an export's message says when it was last edited
            edited.append((e.chat_id, e.msg_id, e.edit_date, poster))
        delta.add_message(
            chat_id=e.chat_id, day=day, hour=hour, poster=poster, topic_id=e.topic_id,
            media_type=e.media_type, text_length=f.text_length, urls=f.urls, emojis=f.emojis,
            mentions=f.mentions, hashtags=f.hashtags, words=f.words,
            is_reply=e.reply_to_msg_id is not None, is_forward=origin is not None,
            reply_to_user_id=target,
        )  # fmt: skip
        state.touch(e.chat_id)
        counted[(ctx.chat_type, e.media_type)] += 1
    if not records:
        return
    started = time.perf_counter()
    try:
        await state.conn.copy_records_to_table(
            "messages", records=records, columns=_MESSAGE_COLUMNS
        )
    except asyncpg.UniqueViolationError as exc:
        raise ConcurrentWrite("messages inserted by another writer meanwhile") from exc
    finally:
        state._record("copy_messages", started)
    await write_questions(state, inserted)
    if edited:
        await _count_first_edits(state, edited)


_INSERT_FIRST_EDITS = """
INSERT INTO message_edits (chat_id, msg_id, edit_date, user_id)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::bigint[])
ON CONFLICT (chat_id, msg_id, edit_date) DO NOTHING
RETURNING chat_id, edit_date, user_id
"""


async def _count_first_edits(
    state: BatchState, edited: Sequence[tuple[int, int, datetime, int | None]]
) -> None:
    """A new message that arrives edited (an export's ``edited``) counts one edit, on the
    edit's day, like a live edit would; unless that edit was delivered live already."""
    rows = await state.fetch(
        "insert_first_edits",
        _INSERT_FIRST_EDITS,
        *(list(column) for column in zip(*edited, strict=True)),
    )
    for chat_id, edit_date, user_id in rows:
        state.delta.add_edit(
            chat_id=chat_id, day=state.local(chat_id, edit_date)[0], user_id=user_id
        )


_INSERT_EDITS = """
INSERT INTO message_edits (chat_id, msg_id, edit_date, user_id)
SELECT v.chat_id, v.msg_id, v.edit_date, coalesce(v.user_id, m.user_id, m.sender_chat_id)
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::bigint[])
    AS v(chat_id, msg_id, edit_date, user_id)
LEFT JOIN messages m ON m.chat_id = v.chat_id AND m.msg_id = v.msg_id
LEFT JOIN chat_purges p ON p.chat_id = v.chat_id
WHERE (m.edit_date IS NULL OR v.edit_date > m.edit_date)
  -- an edit of a message whose raw rows retention removed was counted then
  AND (m.msg_id IS NOT NULL OR p.purged_before IS NULL OR v.edit_date >= p.purged_before)
ON CONFLICT (chat_id, msg_id, edit_date) DO NOTHING
RETURNING chat_id, msg_id, edit_date, user_id
"""

_APPLY_EDITS = """
UPDATE messages m SET
    edit_count = m.edit_count + v.n,
    edit_date = greatest(m.edit_date, v.edit_date),
    text = CASE WHEN v.has_text THEN v.text ELSE m.text END
FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::timestamptz[], $5::bool[], $6::text[])
    AS v(chat_id, msg_id, n, edit_date, has_text, text)
WHERE m.chat_id = v.chat_id AND m.msg_id = v.msg_id
"""


async def write_edits(state: BatchState, events: Sequence[EditEvent]) -> None:
    """An edit counts once: re-delivered, or older than what is stored, it changes nothing."""
    if not events:
        return
    rows = await state.fetch(
        "insert_edits",
        _INSERT_EDITS,
        [e.chat_id for e in events],
        [e.msg_id for e in events],
        [e.edit_date for e in events],
        [e.user_id for e in events],
    )
    if not rows:
        return
    by_key = {(e.chat_id, e.msg_id, e.edit_date): e for e in events}
    latest: dict[tuple[int, int], tuple[int, datetime, EditEvent]] = {}
    for chat_id, msg_id, edit_date, user_id in rows:
        state.delta.add_edit(
            chat_id=chat_id, day=state.local(chat_id, edit_date)[0], user_id=user_id
        )
        state.touch(chat_id)
        event = by_key[(chat_id, msg_id, edit_date)]
        count, newest, newest_event = latest.get((chat_id, msg_id), (0, edit_date, event))
        if edit_date >= newest:
            newest, newest_event = edit_date, event
        latest[(chat_id, msg_id)] = (count + 1, newest, newest_event)
    keys = sorted(latest)
    has_text = [state.chat(k[0]).store_text and latest[k][2].text is not None for k in keys]
    await state.execute(
        "update_messages_edits",
        _APPLY_EDITS,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [latest[k][0] for k in keys],
        [latest[k][1] for k in keys],
        has_text,
        [
            _clean(latest[k][2].text) if flag else None
            for k, flag in zip(keys, has_text, strict=True)
        ],
    )


# A chat-less delete names a basic-group message id: stored under it in a basic
# group, or under its negation once the group became a supergroup (``migration``).
_RESOLVE_BASIC_GROUP = """
SELECT m.chat_id, m.msg_id, m.msg_id FROM messages m JOIN chats c ON c.id = m.chat_id
WHERE c.type = 'group' AND m.msg_id = ANY($1::bigint[])
UNION ALL
SELECT m.chat_id, m.msg_id, -m.msg_id FROM messages m
JOIN chat_migrations g ON g.new_chat_id = m.chat_id
WHERE m.msg_id = ANY($2::bigint[])
"""

_DELETE = """
UPDATE messages m SET is_deleted = true, deleted_at = v.deleted_at
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS v(chat_id, msg_id, deleted_at)
WHERE m.chat_id = v.chat_id AND m.msg_id = v.msg_id AND NOT m.is_deleted
RETURNING m.chat_id, m.deleted_at, coalesce(m.user_id, m.sender_chat_id)
"""


async def write_deletes(state: BatchState, events: Sequence[DeleteEvent]) -> None:
    """Mark messages deleted once; they stay counted as sent, deletions count apart."""
    if not events:
        return
    wanted: dict[tuple[int, int], datetime] = {}
    unresolved: dict[int, datetime] = {}
    for e in events:
        for msg_id in e.msg_ids:
            if e.chat_id is None:
                unresolved.setdefault(msg_id, e.date)
            else:
                wanted.setdefault((e.chat_id, msg_id), e.date)
    if unresolved:
        # Basic groups: Telegram gives no chat, but their message ids are unique per account.
        named = sorted(unresolved)
        rows = await state.fetch(
            "resolve_deletes", _RESOLVE_BASIC_GROUP, named, [moved_msg_id(i) for i in named]
        )
        for chat_id, msg_id, named_id in rows:
            wanted.setdefault((chat_id, msg_id), unresolved[named_id])
        await state.load_chats({row[0] for row in rows})
    if not wanted:
        return
    keys = sorted(wanted)
    rows = await state.fetch(
        "delete_messages", _DELETE, [k[0] for k in keys], [k[1] for k in keys],
        [wanted[k] for k in keys],
    )  # fmt: skip
    for chat_id, deleted_at, poster in rows:
        state.delta.add_deletion(
            chat_id=chat_id, day=state.local(chat_id, deleted_at)[0], poster=poster
        )
        state.touch(chat_id)
