"""The fast paths of ``tgstats.features`` give exactly what the plain implementation gave.

``features_reference`` is the implementation before the fast paths (ASCII texts
skip the emoji scan, only the span holding emoji characters is scanned, one
``lower()`` for all words, letter-only tokens taken whole without the word
regex). Hypothesis searches texts built from the characters where the two could
differ: keycap bases, joiners, variation selectors, skin tones, tag characters,
flags, Greek capital sigma, dotted capital I, whitespace of every kind.
"""

from __future__ import annotations

import emoji as emoji_lib
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit import features_reference as reference
from tgstats.features import Entity, extract, tokenize_words

_EMOJI = sorted(emoji_lib.EMOJI_DATA)
_TRICKY = list(
    "#*019aZ _-'\u2019@/:.\u03a3\u03c3\u03c2\u039f\u0394\u0130I\u0131\u00df\ufb01\u01c5"
    "\u0307\u200d\ufe0f\ufe0e\u20e3"
    "\U0001f3fb\U0001f3ff\U000e0067\U000e0062\U000e007f\U0001f3f4\U0001f1e9\U0001f1ea"
    "👍👨👩👧❤©®™ Привет мир"
    "\t\n\x1c\u00a0\u2028\u3000"  # whitespace of every kind: words are scanned per token
)
_PIECES = st.one_of(
    st.sampled_from(_EMOJI),
    st.sampled_from(_TRICKY),
    st.text(max_size=4),
    st.sampled_from(["https://x.org/a.", "#tag", "@someone", "/start@bot ", "O'Brien's", "ΟΔΟΣ"]),
)
_TEXTS = st.lists(_PIECES, max_size=24).map("".join)


@settings(max_examples=1500, deadline=None)
@given(_TEXTS)
def test_extract_same_as_reference(text: str) -> None:
    assert extract(text) == reference.extract(text)
    assert tokenize_words(text) == reference.tokenize_words(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_same_as_reference(text: str) -> None:
    assert extract(text) == reference.extract(text)


@settings(max_examples=300, deadline=None)
@given(
    _TEXTS,
    st.lists(
        st.tuples(
            st.sampled_from(["url", "mention", "hashtag", "bot_command", "text_link"]),
            st.integers(-2, 40),
            st.integers(-2, 40),
        ),
        max_size=4,
    ),
)
def test_with_entities_same_as_reference(text: str, raw: list[tuple[str, int, int]]) -> None:
    entities = [Entity(kind, offset, length, url="https://e.org/") for kind, offset, length in raw]
    assert extract(text, entities) == reference.extract(text, entities)


def test_examples_that_exercise_the_fast_paths() -> None:
    for text in [
        "plain ascii words and the stopwords",
        "1\ufe0f\u20e3 keycap first",
        "x #\ufe0f\u20e3 keycap later 👍",
        "ΟΔΟΣ ΟΔΟΣΟΔΟΣ Σ İstanbul",
        "флаг 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f конец",
        "👨\u200d👩\u200d👧 and 👍🏽 then text",
        "\u200d alone",
    ]:
        assert extract(text) == reference.extract(text), text


def test_the_emoji_gate_lets_every_emoji_character_through() -> None:
    from tgstats.features import _EMOJI_GATE, _emoji_chars

    assert all(_EMOJI_GATE.fullmatch(ch) for ch in _emoji_chars())
