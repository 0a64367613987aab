"""Questions and their first reply (``question_replies``), kept by the writer.

A question is a message whose text ended with a question mark when it was
sent (``TextFeatures.is_question``, counted at ingest for every source, so it
works with text storage off). Its first reply is the earliest stored message
(by date, then id) that replies to it and was posted by someone other than the
asker. It is recounted from ``messages`` for every question or reply target a
batch writes (one statement, through ``ix_messages_reply_target``), so a reply
stored before its question (an import of older history after live replies)
counts as well as one that comes after, and a re-delivery changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from tgstats.pipeline.batch import BatchState

__all__ = ["NewMessage", "write_questions"]

#: (chat_id, msg_id, date, local day, poster, is_question, reply_to_msg_id) of a message
#: the batch inserted.
NewMessage = tuple[int, int, datetime, date, int | None, bool, int | None]

_INSERT = """
INSERT INTO question_replies (chat_id, msg_id, asked_at, local_day, asker_id)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::date[], $5::bigint[])
ON CONFLICT (chat_id, msg_id) DO NOTHING
"""

_RECOUNT = """
UPDATE question_replies q
SET first_reply_at = f.date, first_reply_msg_id = f.msg_id, replier_id = f.poster
FROM (
    SELECT q.chat_id, q.msg_id AS question, r.date, r.msg_id, r.poster
    FROM unnest($1::bigint[], $2::bigint[]) AS t(chat_id, msg_id)
    JOIN question_replies q ON q.chat_id = t.chat_id AND q.msg_id = t.msg_id
    LEFT JOIN LATERAL (
        SELECT r.date, r.msg_id, coalesce(r.user_id, r.sender_chat_id) AS poster
        FROM messages r
        WHERE r.chat_id = q.chat_id AND r.reply_to_msg_id = q.msg_id
          AND coalesce(r.user_id, r.sender_chat_id) IS NOT NULL
          AND coalesce(r.user_id, r.sender_chat_id) IS DISTINCT FROM q.asker_id
        ORDER BY r.date, r.msg_id LIMIT 1
    ) r ON true
) f
WHERE q.chat_id = f.chat_id AND q.msg_id = f.question
  AND q.first_reply_msg_id IS DISTINCT FROM f.msg_id
"""


async def write_questions(state: BatchState, inserted: Sequence[NewMessage]) -> None:
    """Record the batch's new questions, then recount the first reply of every question
    the batch asked or replied to."""
    questions = [m for m in inserted if m[5]]
    if questions:
        await state.execute(
            "insert_questions",
            _INSERT,
            [m[0] for m in questions],
            [m[1] for m in questions],
            [m[2] for m in questions],
            [m[3] for m in questions],
            [m[4] for m in questions],
        )
    targets = {(m[0], m[1]) for m in questions}
    targets.update((m[0], m[6]) for m in inserted if m[6] is not None)
    if not targets:
        return
    keys = sorted(targets)
    await state.execute(
        "recount_first_replies", _RECOUNT, [k[0] for k in keys], [k[1] for k in keys]
    )
