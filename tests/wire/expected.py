"""What a scenario posted on the test data centre, counted apart from tgstats' code.

``Tally`` wraps the data centre's scenario calls and keeps, per Bot API chat
id, the counts the stored rows and rollups must equal (``Counts`` of the
resilience suite) plus the deleted message ids.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tests.resilience.simulator import Counts
from tests.wire.server import TestDataCentre, bot_api_chat_id


def held_messages(dc: TestDataCentre) -> dict[int, Counts]:
    """Messages and text length per chat, counted from what the data centre holds now
    (the people's messages, not the bot's own): what a complete record of its chats
    holds when none of them was deleted after the bot saw it."""
    found: dict[int, Counts] = defaultdict(Counts)
    for (raw_id, _), message in dc.messages.items():
        if getattr(message, "out", False):
            continue
        counts = found[bot_api_chat_id(dc.chats[raw_id])]
        counts.messages += 1
        counts.text_length += len(message.message)
    return dict(found)


class Tally:
    def __init__(self, dc: TestDataCentre) -> None:
        self.dc = dc
        self.counts: dict[int, Counts] = defaultdict(Counts)
        self.deleted: dict[int, set[int]] = defaultdict(set)
        self._reacted: set[tuple[int, int, int]] = set()

    def post(self, chat: Any, user: Any, text: str, **kw: Any) -> int:
        msg_id = self.dc.post(chat, user, text, **kw)
        counts = self.counts[bot_api_chat_id(chat)]
        counts.messages += 1
        counts.text_length += len(text)
        return msg_id

    def edit(self, chat: Any, msg_id: int, text: str, **kw: Any) -> None:
        self.dc.edit(chat, msg_id, text, **kw)
        self.counts[bot_api_chat_id(chat)].edits += 1

    def delete(self, chat: Any, msg_ids: list[int], **kw: Any) -> None:
        self.dc.delete(chat, msg_ids, **kw)
        self.deleted[bot_api_chat_id(chat)].update(msg_ids)

    def react(self, chat: Any, msg_id: int, user: Any, emoji: str, **kw: Any) -> None:
        self.dc.react(chat, msg_id, user, emoji, **kw)
        key = (bot_api_chat_id(chat), msg_id, user.id)
        if key not in self._reacted:  # one reaction per person and message is counted
            self._reacted.add(key)
            self.counts[key[0]].reactions += 1

    def join(self, chat: Any, user: Any, **kw: Any) -> None:
        self.dc.join(chat, user, **kw)
        self.counts[bot_api_chat_id(chat)].joins += 1

    def leave(self, chat: Any, user: Any, **kw: Any) -> None:
        self.dc.leave(chat, user, **kw)
        self.counts[bot_api_chat_id(chat)].leaves += 1

    def only(self, *fields: str) -> dict[int, Counts]:
        """The counts with every field but ``fields`` zeroed (what catch-up can bring back)."""
        kept = {}
        for chat_id, counts in self.counts.items():
            kept[chat_id] = Counts(
                **{k: (v if k in fields else 0) for k, v in vars(counts).items()}
            )
        return kept
