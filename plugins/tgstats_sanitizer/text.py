"""Making user-supplied text safe to show back, and validating identifiers.

Escaping is the defence, not filtering: SQL is always bound parameters, so a
name like ``O'Brien`` or a search for ``select`` passes through unchanged and
is only escaped where it is rendered. What is removed is what can mislead a
reader: control characters and bidirectional overrides/isolates/marks, which
can reorder the text around a name (U+202A-U+202E, U+2066-U+2069,
U+200E/U+200F, U+061C), plus unpaired surrogates that cannot be encoded.
"""

from __future__ import annotations

import html as _html
import re
import unicodedata
from datetime import date

from tgstats.plugin_api import check_timezone

__all__ = [
    "ELLIPSIS",
    "clean",
    "escape_html",
    "parse_chat_id",
    "parse_iso_date",
    "parse_timezone",
    "parse_user_id",
    "parse_username",
    "safe_name",
    "truncate",
]

ELLIPSIS = "\u2026"
_INT64_MAX = 2**63 - 1

_BIDI_CONTROLS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c"]
)
# Characters a line of text keeps: newline and tab in messages, nothing else of Cc.
_KEEP_IN_TEXT = frozenset("\n\t")
_LINE_BREAKS = frozenset("\n\r\t\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def _drop(ch: str, keep: frozenset[str]) -> bool:
    if ch in keep:
        return False
    if ch in _BIDI_CONTROLS:
        return True
    return unicodedata.category(ch) in ("Cc", "Cs")


def clean(text: str | None, *, multiline: bool = True) -> str:
    """Remove control, surrogate and bidi control characters; keep everything else."""
    if not text:
        return ""
    keep = _KEEP_IN_TEXT if multiline else frozenset()
    if multiline and "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        text = "".join(" " if ch in _LINE_BREAKS else ch for ch in text)
    return "".join(ch for ch in text if not _drop(ch, keep))


def truncate(text: str, max_length: int | None) -> str:
    """At most ``max_length`` characters, ending in an ellipsis when cut.

    The cut does not leave a combining mark or a zero-width joiner dangling
    at the end (which would glue the ellipsis onto half an emoji).
    """
    if max_length is None or len(text) <= max_length:
        return text
    if max_length < 1:
        return ""
    cut = max_length - 1
    while cut > 0 and (
        unicodedata.category(text[cut]) in ("Mn", "Mc", "Me")
        or text[cut] in "\u200d\ufe0f\ufe0e"
        or text[cut - 1] == "\u200d"
    ):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS


def escape_html(text: str | None, *, max_length: int | None = None) -> str:
    """Cleaned, truncated (before escaping, so no entity is cut) and HTML-escaped."""
    return _html.escape(truncate(clean(text), max_length), quote=True)


def safe_name(text: str | None, *, max_length: int = 64) -> str:
    """A one-line display name: cleaned, whitespace collapsed, truncated. Not escaped."""
    one_line = " ".join(clean(text, multiline=False).split())
    return truncate(one_line, max_length)


# --------------------------------------------------------------------------- validation


def _integer(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,19}", value.strip()):
        return int(value.strip())
    raise ValueError(f"{what} must be an integer, got {value!r}")


def parse_chat_id(value: object) -> int:
    """A Telegram chat id: a non-zero signed 64-bit integer (supergroups are -100...)."""
    chat_id = _integer(value, "chat id")
    if chat_id == 0 or not -_INT64_MAX <= chat_id <= _INT64_MAX:
        raise ValueError(f"chat id must be a non-zero 64-bit integer, got {value!r}")
    return chat_id


def parse_user_id(value: object) -> int:
    """A Telegram user id: a positive 64-bit integer."""
    user_id = _integer(value, "user id")
    if not 0 < user_id <= _INT64_MAX:
        raise ValueError(f"user id must be a positive 64-bit integer, got {value!r}")
    return user_id


_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")


def parse_username(value: str) -> str:
    """A Telegram username without ``@``: 4-32 letters, digits, underscores; a letter first."""
    name = value.strip().removeprefix("@")
    if not _USERNAME.fullmatch(name) or name.endswith("_"):
        raise ValueError(
            "username must be 4-32 letters, digits or underscores, starting with a letter"
        )
    return name


def parse_timezone(value: str) -> str:
    """An IANA time zone name such as ``Europe/Berlin``."""
    name = value.strip()
    if not name or name.startswith("/") or ".." in name:
        raise ValueError(f"unknown time zone {clean(value, multiline=False)[:64]!r}")
    try:
        return check_timezone(name)
    except ValueError:
        raise ValueError(f"unknown time zone {clean(value, multiline=False)[:64]!r}") from None


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_iso_date(value: str) -> date:
    """A calendar date written ``YYYY-MM-DD``."""
    text = value.strip()
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"date must be YYYY-MM-DD, got {clean(value, multiline=False)[:32]!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"no such date: {text}") from None
