"""The sanitizer: escaping, stripping of control/bidi characters, limits, validation."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tgstats.plugin_api import Sanitizer
from tgstats_sanitizer import ELLIPSIS, TextSanitizer

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
sanitizer = TextSanitizer()

# Text biased towards the dangerous characters, mixed with anything else.
nasty_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("<>&\"'" + BIDI + "\x00\x07\x1b\r\n\t\u200d\u0301\ufe0f")),
        st.characters(codec="utf-8"),
    ),
    max_size=300,
)
lengths = st.one_of(st.none(), st.integers(min_value=0, max_value=80))


def test_implements_the_protocol() -> None:
    assert isinstance(sanitizer, Sanitizer)


@settings(max_examples=400)
@given(text=nasty_text, max_length=lengths)
def test_html_never_leaves_markup_or_bidi(text: str, max_length: int | None) -> None:
    out = sanitizer.html(text, max_length=max_length)
    assert "<" not in out and ">" not in out and '"' not in out
    # Every & starts an entity that html.escape wrote.
    assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt|quot|#x27);)*", out, re.DOTALL)
    assert not any(ch in out for ch in BIDI)
    assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in out)
    unescaped = html.unescape(out)
    if max_length is not None:
        assert len(unescaped) <= max_length


@settings(max_examples=400)
@given(text=nasty_text, max_length=st.integers(min_value=1, max_value=80))
def test_name_is_one_clean_line_within_limit(text: str, max_length: int) -> None:
    out = sanitizer.name(text, max_length=max_length)
    assert len(out) <= max_length
    assert "\n" not in out and "\r" not in out and "\t" not in out
    assert not any(ch in out for ch in BIDI)
    assert out == out.strip()


@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))))
def test_ordinary_text_round_trips_through_escaping(text: str) -> None:
    text = "".join(ch for ch in text if ch not in BIDI)
    assert html.unescape(sanitizer.html(text)) == text


@pytest.mark.parametrize("word", ["update", "select", "O'Brien", "DROP TABLE users; --", "1=1"])
def test_sql_looking_text_is_kept(word: str) -> None:
    # No keyword or "special character" filtering: only escaping where shown.
    assert sanitizer.name(word) == word
    assert html.unescape(sanitizer.html(word)) == word


def test_truncation_marks_the_cut_and_keeps_entities_whole() -> None:
    assert sanitizer.html("a&b" * 10, max_length=5) == "a&amp;ba" + ELLIPSIS
    assert sanitizer.html("short", max_length=5) == "short"
    assert sanitizer.name("Alexander the Great", max_length=10) == "Alexander" + ELLIPSIS


def test_truncation_does_not_split_an_emoji_sequence() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    out = sanitizer.name("ab" + family, max_length=5)
    assert out.endswith(ELLIPSIS)
    assert "\u200d" not in out[-2:]


def test_bidi_override_cannot_reverse_a_name() -> None:
    assert sanitizer.name("admin\u202egnp.exe") == "admingnp.exe"
    assert sanitizer.html("\u2067evil\u2069 & co") == "evil &amp; co"


def test_empty_and_none() -> None:
    assert sanitizer.html(None) == ""
    assert sanitizer.name(None) == ""
    assert sanitizer.name(" \n\t ") == ""


def test_validation_helpers() -> None:
    assert sanitizer.chat_id("-1001234567890") == -1001234567890
    assert sanitizer.chat_id(42) == 42
    assert sanitizer.user_id("777") == 777
    assert sanitizer.username("@Some_User1") == "Some_User1"
    assert sanitizer.timezone("Asia/Kathmandu") == "Asia/Kathmandu"
    assert sanitizer.iso_date("2026-02-28") == date(2026, 2, 28)


@pytest.mark.parametrize(
    ("method", "value", "message"),
    [
        ("chat_id", "0", "non-zero"),
        ("chat_id", "12a", "integer"),
        ("chat_id", True, "integer"),
        ("chat_id", "\u0661\u0662", "integer"),  # Arabic-Indic digits are not an id
        ("chat_id", str(2**64), "integer"),
        ("user_id", "-5", "positive"),
        ("username", "ab", "4-32"),
        ("username", "1abc", "letter"),
        ("username", "abc_", "4-32"),
        ("timezone", "Mars/Olympus", "unknown time zone"),
        ("timezone", "../../etc/passwd", "unknown time zone"),
        ("iso_date", "2026-02-30", "no such date"),
        ("iso_date", "20260201", "YYYY-MM-DD"),
    ],
)
def test_validation_errors_name_the_problem(method: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        getattr(sanitizer, method)(value)
