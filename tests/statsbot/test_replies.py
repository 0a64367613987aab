"""Reply formatting helpers: escaping without the sanitizer plugin, numbers and deltas."""

from __future__ import annotations

from tgstats.stats.results import MetricDelta
from tgstats_sanitizer import TextSanitizer
from tgstats_statsbot.replies import Escaper, delta_text, number, pct_text


def test_escaper_falls_back_to_html_escape_and_cuts():
    esc = Escaper(None)
    assert esc("<b>Eve</b> & co") == "&lt;b&gt;Eve&lt;/b&gt; &amp; co"
    cut = esc("x" * 30 + "<", 24)
    assert cut == "x" * 23 + "…"
    assert esc(None) == ""
    assert esc.plain("a\n\n b", 64) == "a b"


def test_escaper_uses_the_sanitizer_when_present():
    esc = Escaper(TextSanitizer())
    # The sanitizer also drops bidi overrides that would reorder the rest of the line.
    assert esc("\u202eevil<") == "evil&lt;"


def test_numbers_and_deltas():
    assert number(1234) == "1,234" and number(2.25) == "2.2" and number(3.0) == "3"
    assert pct_text(None) == "n/a" and pct_text(12.345) == "12.3%"
    assert delta_text(MetricDelta(value=5, previous=5, change=0, change_pct=0)) == ""
    assert delta_text(MetricDelta(value=5, previous=0, change=5, change_pct=None)) == " (+5)"
    assert delta_text(MetricDelta(value=5, previous=10, change=-5, change_pct=-50)) == " (-50%)"
