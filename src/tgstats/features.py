"""Text features counted once at ingest, the same for every source.

``extract(text, entities)`` turns a message text and its Telegram entities
into ``TextFeatures``. Entity offsets and lengths are in UTF-16 code units, as
Telegram sends them; hostile values (negative, past the end, splitting a
surrogate pair) are clamped or ignored, never raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import emoji as emoji_lib
import msgspec

from tgstats.events import TextFeatures

__all__ = [
    "QUESTION_MARKS",
    "Entity",
    "extract",
    "is_question",
    "stopwords",
    "tokenize_words",
    "warm",
]


class Entity(msgspec.Struct, frozen=True):
    """A Telegram message entity: ``type`` as in the Bot API (url, text_link, mention, ...)."""

    type: str
    offset: int
    length: int
    url: str | None = None
    user_id: int | None = None


_PLAIN_URL = re.compile(r"https?://[^\s<>\"'\u00ab\u00bb]+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w#])#(\w{1,64})")
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z][A-Za-z0-9_]{3,31})\b")
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]+)?")
# Letters (any script) with inner apostrophes or hyphens; digits alone are not words.
# (Runs of letters and digits as one step: the same matches as one character at a time,
# without a trip through the alternation per character.)
_WORD = re.compile(r"[^\W\d_](?:[^\W_]+|['\u2019-](?=[^\W\d_]))*", re.UNICODE)
# Every emoji character is one of these (checked in tests): text without any has no emoji.
_EMOJI_GATE = re.compile("[\u00a9\u00ae\u200d-\U0010ffff]")
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


def _emojis(text: str) -> list[str]:
    """``emoji_list(text)``'s emoji, scanning only the span that holds emoji characters.

    Emoji end with a non-ASCII character and start with one or, for keycaps
    (``1\ufe0f\u20e3``), with one ASCII character before one: outside the span from
    one character before the first emoji character to the last, nothing can be part
    of an emoji, and ``emoji_list`` costs about a microsecond per character scanned.
    """
    if text.isascii():
        return []
    gate = _EMOJI_GATE.search(text)
    if gate is None:
        return []
    chars = _emoji_chars()
    if chars.isdisjoint(text):
        return []
    start = next(i for i in range(gate.start(), len(text)) if text[i] in chars)
    end = next(i for i in range(len(text) - 1, start - 1, -1) if text[i] in chars) + 1
    span = text[start - 1 if start else 0 : end]
    return [item["emoji"] for item in emoji_lib.emoji_list(span)]


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """English and Russian stopwords (plus a few common chat fillers)."""
    path = Path(__file__).with_name("stopwords.txt")
    words = path.read_text(encoding="utf-8").split()
    return frozenset(w.lower() for w in words)


def warm() -> None:
    """Load the lazily built tables now (the importer does before it freezes the heap)."""
    _emoji_chars()
    stopwords()


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
    # Words never span whitespace, so each whitespace-separated token is scanned alone, and
    # a token of letters only (most of them) is one whole word without a regex scan.
    found: list[str] = []
    for token in cleaned.split():
        if token.isalpha():
            found.append(token)
        else:
            found += _WORD.findall(token)
    if not found:
        return []
    stop = stopwords()
    # A word starts with a letter and ends with a letter or digit (see _WORD), so there
    # is nothing to strip; no word holds a space, so one lower() of the words joined by
    # spaces is each word's lower() (spaces also end Greek final-sigma contexts).
    return [
        word
        for word in " ".join(found).lower().split(" ")
        if 1 < len(word) <= MAX_WORD_LENGTH and word not in stop
    ]


def _dedupe_keep_order(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


#: Question marks of the scripts Telegram users write in: ASCII and fullwidth (CJK), Arabic
#: (also Persian, Urdu), the Greek question mark (U+037E, not the semicolon it looks like),
#: Armenian, Ethiopic, Vai, Limbu, the reversed, doubled and interrobang forms, the emoji
#: and the vertical/small compatibility forms.
QUESTION_MARKS = frozenset(
    "?\uff1f\u061f\u037e\u055e\u1367\ua60f\u1945\u2e2e\u203d\u2047\u2048\u2049"
    "\u2753\u2754\ufe16\ufe56"
)


def is_question(text: str | None) -> bool:
    """True when the text's last character, trailing white space and emoji variation
    selectors aside, is a question mark of any script (``QUESTION_MARKS``)."""
    if not text:
        return False
    stripped = text.rstrip().rstrip("\ufe0f\ufe0e").rstrip()
    return bool(stripped) and stripped[-1] in QUESTION_MARKS


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
    emojis = _emojis(text)
    return TextFeatures(
        text_length=len(text),
        urls=tuple(_dedupe_keep_order(urls)[:MAX_ITEMS]) if urls else (),
        emojis=tuple(emojis[:MAX_ITEMS]),
        mentions=tuple(_dedupe_keep_order(mentions)[:MAX_ITEMS]) if mentions else (),
        hashtags=tuple(_dedupe_keep_order(hashtags)[:MAX_ITEMS]) if hashtags else (),
        commands=tuple(commands[:MAX_ITEMS]),
        words=tuple(tokenize_words(text)[: MAX_ITEMS * 5]),
        is_question=is_question(text),
    )
