"""Messages, edits and deletions: raw rows first, rollups only from what changed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import msgspec

from tgstats.events import DeleteEvent, EditEvent, MessageEvent, TextFeatures
from tgstats.pipeline.batch import BatchState

__all__ = ["write_deletes", "write_edits", "write_messages"]

_ENCODE = msgspec.json.Encoder()
_SMALLINT_MAX = 32_767

_INSERT_MESSAGES = """
INSERT INTO messages (
    chat_id, msg_id, date, local_day, local_hour, user_id, sender_chat_id, topic_id,
    reply_to_msg_id, reply_to_user_id, media_type, text_length, url_count, emoji_count,
    mention_count, hashtag_count, entities, forward_origin, forward_from_id,
    forward_from_name, via_bot_id, edit_date, text)
SELECT * FROM unnest(
    $1::bigint[], $2::bigint[], $3::timestamptz[], $4::date[], $5::smallint[], $6::bigint[],
    $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::int[],
    $13::smallint[], $14::smallint[], $15::smallint[], $16::smallint[], $17::jsonb[],
    $18::text[], $19::bigint[], $20::text[], $21::bigint[], $22::timestamptz[], $23::text[])
ON CONFLICT (chat_id, msg_id) DO NOTHING
RETURNING chat_id, msg_id
"""

_POSTERS = """
SELECT m.chat_id, m.msg_id, coalesce(m.user_id, m.sender_chat_id)
FROM unnest($1::bigint[], $2::bigint[]) AS v(chat_id, msg_id)
JOIN messages m ON m.chat_id = v.chat_id AND m.msg_id = v.msg_id
"""


def _clean(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; drop it rather than lose the message."""
    return value.replace("\x00", "") if value and "\x00" in value else value


def _entities(features: TextFeatures) -> str | None:
    found = {
        kind: [_clean(v) for v in values]
        for kind, values in (
            ("urls", features.urls),
            ("hashtags", features.hashtags),
            ("mentions", features.mentions),
            ("emojis", features.emojis),
            ("commands", features.commands),
        )
        if values
    }
    return _ENCODE.encode(found).decode() if found else None


def _small(count: int) -> int:
    return min(count, _SMALLINT_MAX)


async def posters_of(
    state: BatchState, keys: set[tuple[int, int]]
) -> dict[tuple[int, int], int | None]:
    """The poster of each known message among ``keys`` (absent when never seen)."""
    if not keys:
        return {}
    chat_ids, msg_ids = zip(*sorted(keys), strict=True)
    rows = await state.fetch("select_posters", _POSTERS, list(chat_ids), list(msg_ids))
    return {(row[0], row[1]): row[2] for row in rows}


async def write_messages(state: BatchState, events: Sequence[MessageEvent]) -> None:
    if not events:
        return
    in_batch = {(e.chat_id, e.msg_id): e for e in events}
    # Reply targets: the event says, or the replied message is in this batch, or stored.
    wanted = {
        (e.chat_id, e.reply_to_msg_id)
        for e in events
        if e.reply_to_msg_id is not None
        and e.reply_to_user_id is None
        and (e.chat_id, e.reply_to_msg_id) not in in_batch
    }
    stored = await posters_of(state, wanted)
    targets: dict[tuple[int, int], int | None] = {}
    columns: list[list[object]] = [[] for _ in range(23)]
    locals_: dict[tuple[int, int], tuple[date, int]] = {}
    for e in events:
        ctx = state.chat(e.chat_id)
        day, hour = state.clock.local(e.date, ctx.zone)
        locals_[(e.chat_id, e.msg_id)] = (day, hour)
        target = e.reply_to_user_id
        if target is None and e.reply_to_msg_id is not None:
            replied = in_batch.get((e.chat_id, e.reply_to_msg_id))
            if replied is not None:
                target = replied.user_id if replied.user_id is not None else replied.sender_chat_id
            else:
                target = stored.get((e.chat_id, e.reply_to_msg_id))
        targets[(e.chat_id, e.msg_id)] = target
        f = e.features
        origin = e.forward_origin
        for column, value in zip(
            columns,
            (
                e.chat_id, e.msg_id, e.date, day, hour, e.user_id, e.sender_chat_id, e.topic_id,
                e.reply_to_msg_id, target, e.media_type, f.text_length, _small(len(f.urls)),
                _small(len(f.emojis)), _small(len(f.mentions)), _small(len(f.hashtags)),
                _entities(f), origin.origin if origin else None, origin.id if origin else None,
                _clean(origin.name) if origin else None, e.via_bot_id, e.edit_date,
                _clean(e.text) if ctx.store_text else None,
            ),
            strict=True,
        ):  # fmt: skip
            column.append(value)
    inserted = await state.fetch("insert_messages", _INSERT_MESSAGES, *columns)
    delta = state.delta
    for row in inserted:
        key = (row[0], row[1])
        e = in_batch[key]
        day, hour = locals_[key]
        f = e.features
        delta.add_message(
            chat_id=e.chat_id, day=day, hour=hour,
            poster=e.user_id if e.user_id is not None else e.sender_chat_id,
            topic_id=e.topic_id, media_type=e.media_type, text_length=f.text_length,
            urls=f.urls, emojis=f.emojis, mentions=f.mentions, hashtags=f.hashtags,
            words=f.words, is_reply=e.reply_to_msg_id is not None,
            is_forward=origin_present(e), reply_to_user_id=targets[key],
        )  # fmt: skip
        state.touch(e.chat_id)
        state.outcome.messages[(state.chat(e.chat_id).chat_type, e.media_type)] += 1


def origin_present(event: MessageEvent) -> bool:
    return event.forward_origin is not None


_INSERT_EDITS = """
INSERT INTO message_edits (chat_id, msg_id, edit_date, user_id)
SELECT v.chat_id, v.msg_id, v.edit_date, coalesce(v.user_id, m.user_id, m.sender_chat_id)
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::bigint[])
    AS v(chat_id, msg_id, edit_date, user_id)
LEFT JOIN messages m ON m.chat_id = v.chat_id AND m.msg_id = v.msg_id
WHERE m.edit_date IS NULL OR v.edit_date > m.edit_date
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


_RESOLVE_BASIC_GROUP = """
SELECT m.chat_id, m.msg_id FROM messages m JOIN chats c ON c.id = m.chat_id
WHERE c.type = 'group' AND m.msg_id = ANY($1::bigint[])
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
        rows = await state.fetch("resolve_deletes", _RESOLVE_BASIC_GROUP, sorted(unresolved))
        for chat_id, msg_id in rows:
            wanted.setdefault((chat_id, msg_id), unresolved[msg_id])
        await state.load_chats({chat_id for chat_id, _ in rows})
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
