"""Text features counted at ingest."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tgstats.features import Entity, extract, tokenize_words


def test_emoji_sequences_count_once() -> None:
    f = extract("👍🏽 👨‍👩‍👧 🇩🇪 ok", [])
    assert f.emojis == ("👍🏽", "👨\u200d👩\u200d👧", "🇩🇪")


def test_urls_from_entities_and_plain_text_without_double_counting() -> None:
    text = "see https://a.example/x and example.org"
    entities = [Entity("url", 4, 19), Entity("text_link", 28, 11, url="https://example.org/")]
    f = extract(text, entities)
    assert f.urls == ("https://example.org/", "https://a.example/x") or set(f.urls) == {
        "https://a.example/x",
        "https://example.org/",
    }
    assert len(f.urls) == 2


def test_utf16_offsets() -> None:
    text = "😀 @alice #tag"  # the emoji is two UTF-16 code units
    f = extract(text, [Entity("mention", 3, 6), Entity("hashtag", 10, 4)])
    assert f.mentions == ("alice",)
    assert f.hashtags == ("tag",)
    assert f.text_length == len(text)


def test_commands_are_not_words_and_stopwords_dropped() -> None:
    f = extract("/stats@tgstats_bot the weather in Berlin", [Entity("bot_command", 0, 18)])
    assert f.commands == ("stats",)
    assert "stats" not in f.words and "the" not in f.words
    assert "weather" in f.words and "berlin" in f.words


def test_unicode_words() -> None:
    assert tokenize_words("Привет, мир! Кошки и собаки; O'Brien's café") == [
        "привет",
        "мир",
        "кошки",
        "собаки",
        "o'brien's",
        "café",
    ]


@given(
    st.text(),
    st.lists(
        st.tuples(
            st.sampled_from(["url", "mention", "hashtag", "bot_command", "text_link"]),
            st.integers(-(10**6), 10**6),
            st.integers(-(10**6), 10**6),
        ),
        max_size=8,
    ),
)
def test_hostile_entities_never_raise(text: str, raw: list[tuple[str, int, int]]) -> None:
    f = extract(text, [Entity(t, o, n, url="https://x.example") for t, o, n in raw])
    assert f.text_length == len(text)
    assert len(f.urls) <= 200
