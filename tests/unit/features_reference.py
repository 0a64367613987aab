"""The text features as they were before the fast paths: the reference for equivalence tests.

A verbatim copy of ``tgstats.features`` (extract, tokenize_words) from before the
ASCII/emoji-span and one-lower() fast paths. Do not optimise this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import emoji as emoji_lib

from tgstats.events import TextFeatures
from tgstats.features import Entity, is_question, stopwords

__all__ = ["extract", "tokenize_words"]


_PLAIN_URL = re.compile(r"https?://[^\s<>\"'\u00ab\u00bb]+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w#])#(\w{1,64})")
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z][A-Za-z0-9_]{3,31})\b")
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]+)?")
# Letters (any script) with inner apostrophes or hyphens; digits alone are not words.
_WORD = re.compile(r"[^\W\d_](?:[^\W_]|['\u2019-](?=[^\W\d_]))*", re.UNICODE)
_TRAILING_PUNCT = ".,;:!?)]}'\""

MAX_WORD_LENGTH = 40
MAX_ITEMS = 200  # per kind per message: a hostile message cannot blow up a batch


@lru_cache(maxsize=1)
def _emoji_chars() -> frozenset[str]:
    """Every non-ASCII character that occurs in some emoji (keycaps included, via U+20E3).

    Text without any of them has no emoji, so the slow ``emoji_list`` scan (about
    50 us per message) is skipped for most messages: imports need that speed.
    """
    return frozenset(ch for item in emoji_lib.EMOJI_DATA for ch in item if not ch.isascii())


def _utf16_slice(text: str, offset: int, length: int) -> str:
    """Slice ``text`` by UTF-16 code units, clamping hostile bounds."""
    if offset < 0 or length <= 0:
        return ""
    encoded = text.encode("utf-16-le")
    start = min(offset * 2, len(encoded))
    end = min(start + length * 2, len(encoded))
    return encoded[start:end].decode("utf-16-le", errors="ignore")


def tokenize_words(text: str) -> list[str]:
    """Lower-cased words, Unicode-aware, without stopwords, links, mentions or hashtags."""
    # The membership tests skip regex scans that cannot match (most messages): imports
    # tokenize millions of messages.
    cleaned = _COMMAND.sub(" ", text) if text.startswith("/") else text
    if ":" in cleaned:
        cleaned = _PLAIN_URL.sub(" ", cleaned)
    if "@" in cleaned:
        cleaned = _MENTION.sub(" ", cleaned)
    if "#" in cleaned:
        cleaned = _HASHTAG.sub(" ", cleaned)
    stop = stopwords()
    words = []
    for found in _WORD.findall(cleaned):
        word = found.lower().strip("'\u2019-")
        if 2 <= len(word) <= MAX_WORD_LENGTH and word not in stop:
            words.append(word)
    return words


def _dedupe_keep_order(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def extract(text: str | None, entities: Iterable[Entity] = ()) -> TextFeatures:
    """Count what tgstats keeps from a message text. Safe on any input."""
    if not text:
        return TextFeatures()
    urls: list[str] = []
    mentions: list[str] = []
    hashtags: list[str] = []
    commands: list[str] = []
    covered_urls: set[str] = set()
    for entity in entities:
        kind = entity.type
        if kind == "text_link" and entity.url:
            urls.append(entity.url)
        elif kind == "url":
            value = _utf16_slice(text, entity.offset, entity.length)
            if value:
                urls.append(value)
                covered_urls.add(value)
        elif kind == "mention":
            value = _utf16_slice(text, entity.offset, entity.length).lstrip("@")
            if value:
                mentions.append(value.lower())
        elif kind == "text_mention" and entity.user_id:
            mentions.append(f"id{entity.user_id}")
        elif kind == "hashtag":
            value = _utf16_slice(text, entity.offset, entity.length).lstrip("#")
            if value:
                hashtags.append(value.lower())
        elif kind == "bot_command":
            value = _utf16_slice(text, entity.offset, entity.length).lstrip("/")
            if value:
                commands.append(value.split("@", 1)[0].lower())
    # Plain http(s) links that no entity marked (exports, clients that send no entities).
    # (The membership tests skip scans that cannot match, as in ``tokenize_words``.)
    for match in _PLAIN_URL.finditer(text) if ":" in text else ():
        url = match.group(0).rstrip(_TRAILING_PUNCT)
        if url not in covered_urls and not any(url in c or c in url for c in covered_urls):
            urls.append(url)
    if not hashtags and "#" in text:
        hashtags = [m.lower() for m in _HASHTAG.findall(text)]
    if not mentions and "@" in text:
        mentions = [m.lower() for m in _MENTION.findall(text)]
    if not commands and text.startswith("/"):
        command = _COMMAND.match(text)
        if command:
            commands = [command.group(1).lower()]
    emojis = (
        [item["emoji"] for item in emoji_lib.emoji_list(text)]
        if not text.isascii() and not _emoji_chars().isdisjoint(text)
        else []
    )
    return TextFeatures(
        text_length=len(text),
        urls=tuple(_dedupe_keep_order(urls)[:MAX_ITEMS]),
        emojis=tuple(emojis[:MAX_ITEMS]),
        mentions=tuple(_dedupe_keep_order(mentions)[:MAX_ITEMS]),
        hashtags=tuple(_dedupe_keep_order(hashtags)[:MAX_ITEMS]),
        commands=tuple(commands[:MAX_ITEMS]),
        words=tuple(tokenize_words(text)[: MAX_ITEMS * 5]),
        is_question=is_question(text),  # no fast path: the same function
    )
