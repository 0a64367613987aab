"""``tgstats.charts``: valid PNGs from stats results, drawn off the event loop."""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import date, timedelta

import pytest
from PIL import Image

from tgstats import charts
from tgstats.stats.results import MemberDay, TimeseriesPoint

HOSTILE_TITLE = r"Chat $\frac{1}{0}$ <b>&</b> $ \undefinedcommand {" + "x" * 200


def _image(data: bytes) -> Image.Image:
    assert data.startswith(charts.PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _points(n: int) -> list[TimeseriesPoint]:
    start = date(2026, 10, 1)
    return [
        TimeseriesPoint(
            bucket=start + timedelta(days=i),
            days=1,
            messages=(i * 7) % 50,
            active_users=i % 5,
            dau=float(i % 5),
            wau=3,
            mau=5,
            joins=0,
            leaves=0,
            reactions=0,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [1, 30, 400])
def test_history_png_for_short_and_long_series(n):
    image = _image(charts.history_png(_points(n), title=HOSTILE_TITLE))
    assert image.size == (1000, 560)
    # Not a blank canvas: bars and lines put several colours on it.
    assert len(image.convert("RGB").getcolors(maxcolors=100_000) or []) > 10


def test_hours_and_heatmap_pngs():
    hours = _image(charts.hours_png(list(range(24)), title="Hours", timezone="Asia/Kathmandu"))
    assert hours.size == (1000, 560)
    matrix = [[(d * 24 + h) % 11 for h in range(24)] for d in range(7)]
    heat = _image(charts.heatmap_png(matrix, title=HOSTILE_TITLE, timezone="Europe/Berlin"))
    assert heat.size == (1000, 420)


def test_all_zero_data_still_draws():
    _image(charts.hours_png([0] * 24, title="quiet", timezone="UTC"))
    _image(charts.heatmap_png([[0] * 24 for _ in range(7)], title="quiet", timezone="UTC"))


def test_members_png():
    days = [
        MemberDay(day=date(2026, 10, 1) + timedelta(days=i), joins=i % 3, leaves=i % 2, net=0)
        for i in range(30)
    ]
    days = [
        MemberDay(day=d.day, joins=d.joins, leaves=d.leaves, net=d.joins - d.leaves) for d in days
    ]
    assert _image(charts.members_png(days, title="Members", members_now=42)).size == (1000, 560)


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="by_hour"):
        charts.hours_png([1, 2, 3], title="x", timezone="UTC")
    with pytest.raises(ValueError, match="matrix"):
        charts.heatmap_png([[0] * 24] * 6, title="x", timezone="UTC")


def test_plain_title_keeps_dollar_signs_literal_and_cuts_long_titles():
    title = charts.plain_title("cost $5 and $6\n\nnow")
    assert title == r"cost \$5 and \$6 now"
    assert len(charts.plain_title("y" * 500)) == 80


async def test_render_runs_in_a_worker_thread_and_keeps_the_loop_free():
    """The draw blocks until the event loop releases it: only possible off the loop."""
    loop_thread = threading.get_ident()
    started = threading.Event()
    release = threading.Event()
    seen: list[int] = []

    def blocking_draw() -> bytes:
        seen.append(threading.get_ident())
        started.set()
        if not release.wait(10):
            raise AssertionError("the event loop never ran while the chart was drawn")
        return b"png"

    task = asyncio.create_task(charts.render(blocking_draw))
    assert await asyncio.to_thread(started.wait, 10)
    release.set()  # the loop is free while the draw is in progress
    assert await task == b"png"
    assert seen and seen[0] != loop_thread


async def test_a_real_chart_renders_off_the_loop_into_a_png():
    # How long a draw takes is not asserted here (timings belong in bench/); that it
    # goes through render() and yields a real, non-blank image is.
    image = _image(await charts.render(charts.history_png, _points(90), title="render"))
    assert image.width > 100 and image.height > 100
    # More than two grey levels in use (a histogram: Pillow 14 drops getdata()).
    assert sum(1 for n in image.convert("L").histogram() if n) > 2


@pytest.mark.parametrize(("n", "granularity", "buckets"), [(92, "day", 92), (364, "week", 53)])
def test_long_member_periods_are_drawn_in_weeks_or_months(n, granularity, buckets):
    start = date(2026, 1, 1)  # a Thursday: the first week is partial
    days = [MemberDay(day=start + timedelta(days=i), joins=2, leaves=1, net=1) for i in range(n)]
    rows, unit = charts.bucket_member_days(days)
    assert (unit, len(rows)) == (granularity, buckets)
    assert sum(r.joins for r in rows) == 2 * n and sum(r.net for r in rows) == n
    if unit == "week":
        assert all(r.day.weekday() == 0 for r in rows[1:])
        assert rows[0].joins == 2 * 4  # Thu..Sun


def test_members_over_years_is_drawn_monthly():
    start = date(2020, 1, 1)
    days = [MemberDay(day=start + timedelta(days=i), joins=1, leaves=0, net=1) for i in range(2000)]
    rows, unit = charts.bucket_member_days(days)
    assert unit == "month" and len(rows) == 66 and rows[0].joins == 31
    image = _image(charts.members_png(days, title="years"))
    assert image.width > 100 and image.height > 100
