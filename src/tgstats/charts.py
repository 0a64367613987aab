"""PNG charts for bot replies, drawn with matplotlib's Agg canvas.

Each ``*_png`` function is pure and blocking: it takes stats results and
returns PNG bytes. Bot handlers call them through ``render`` so the drawing
runs in a worker thread and never blocks the event loop::

    png = await charts.render(charts.history_png, series, title="Friends · 30 days")
    await ctx.reply(caption, photo=png)

Figures are built with ``matplotlib.figure.Figure`` (never ``pyplot``): no
global figure registry, nothing to close, and no GUI backend is ever chosen.
Rendering is serialised by a lock because matplotlib's font and text caches
are not documented as thread-safe. Labels, weekday names and dates are in the
language of the ``t`` translator each function takes (English by default).
Titles are user-supplied text (chat and member names): ``plain_title`` keeps
matplotlib from reading ``$...$`` in them as math.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any, ParamSpec

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tgstats.i18n import N_, Translator, translator
from tgstats.stats.results import MemberDay, TimeseriesPoint

__all__ = [
    "PNG_SIGNATURE",
    "bucket_member_days",
    "heatmap_png",
    "history_png",
    "hours_png",
    "members_png",
    "plain_title",
    "render",
]

P = ParamSpec("P")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ENGLISH = translator("en")

# Sized for a phone: 1000x560 px at 100 dpi; Telegram shows photos up to 1280 px wide.
_SIZE = (10.0, 5.6)
_DPI = 100
_BAR = "#3b82f6"
_LINE = "#f59e0b"
_JOIN = "#22c55e"
_LEAVE = "#ef4444"
_TITLE_MAX = 80

_lock = threading.Lock()


def plain_title(text: str) -> str:
    """A title shown as written: ``$`` would start mathtext, so it is escaped; long ones cut."""
    text = " ".join(text.split())
    if len(text) > _TITLE_MAX:
        text = text[: _TITLE_MAX - 1] + "…"
    return text.replace("$", r"\$")


async def render(draw: Callable[P, bytes], *args: P.args, **kwargs: P.kwargs) -> bytes:
    """Run a blocking ``*_png`` function in a worker thread."""
    return await asyncio.to_thread(draw, *args, **kwargs)


def _figure() -> tuple[Figure, Any]:
    figure = Figure(figsize=_SIZE, dpi=_DPI)
    FigureCanvasAgg(figure)
    # Fixed margins instead of a layout engine: the engine costs more than the drawing.
    figure.subplots_adjust(left=0.08, right=0.92, top=0.92, bottom=0.14)
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    return figure, axes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _date_labels(days: Sequence[date], granularity: str, t: Translator) -> list[str]:
    if granularity == "month":
        return [t.month_year(d) for d in days]
    if days and days[0].year != days[-1].year:
        return [t.date(d, "short") for d in days]
    return [t.day_month(d) for d in days]


def _sparse_ticks(axes: Any, labels: Sequence[str], most: int = 10) -> None:
    """At most ``most`` x labels, evenly spaced, the last always shown."""
    if not labels:
        return
    step = max(1, -(-len(labels) // most))
    positions = list(range(0, len(labels), step))
    if positions[-1] != len(labels) - 1 and len(labels) - 1 - positions[-1] >= step / 2:
        positions.append(len(labels) - 1)
    axes.set_xticks(positions, [labels[i] for i in positions], rotation=30, ha="right")


def history_png(
    points: Sequence[TimeseriesPoint],
    *,
    title: str,
    granularity: str = "day",
    t: Translator = _ENGLISH,
) -> bytes:
    """Messages per bucket as bars, average daily active users as a line on a second axis."""
    with _lock:
        figure, axes = _figure()
        xs = list(range(len(points)))
        axes.bar(xs, [p.messages for p in points], color=_BAR, label=t.gettext("messages"))
        axes.set_ylabel(t.gettext("messages"))
        users = axes.twinx()
        users.plot(
            xs,
            [p.dau for p in points],
            color=_LINE,
            marker="o" if len(xs) <= 40 else None,
            linewidth=2,
            label=t.gettext("daily active users (avg)"),
        )
        users.set_ylabel(t.gettext("daily active users"))
        users.set_ylim(bottom=0)
        users.spines[["top"]].set_visible(False)
        axes.set_ylim(bottom=0)
        _sparse_ticks(axes, _date_labels([p.bucket for p in points], granularity, t))
        handles = axes.get_legend_handles_labels()
        more = users.get_legend_handles_labels()
        axes.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", frameon=False)
        axes.set_title(plain_title(title), loc="left")
        return _png(figure)


def hours_png(
    by_hour: Sequence[int], *, title: str, timezone: str, t: Translator = _ENGLISH
) -> bytes:
    """Messages per local hour of the day, 24 bars."""
    if len(by_hour) != 24:
        raise ValueError(f"by_hour: expected 24 values, got {len(by_hour)}")
    with _lock:
        figure, axes = _figure()
        peak = max(by_hour) if any(by_hour) else -1
        colours = [_LINE if v == peak else _BAR for v in by_hour]
        axes.bar(range(24), list(by_hour), color=colours)
        axes.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
        axes.set_xlabel(t.gettext("hour ({zone})", zone=plain_title(timezone)))
        axes.set_ylabel(t.gettext("messages"))
        axes.set_ylim(bottom=0)
        axes.set_title(plain_title(title), loc="left")
        return _png(figure)


def heatmap_png(
    matrix: Sequence[Sequence[int]], *, title: str, timezone: str, t: Translator = _ENGLISH
) -> bytes:
    """ISO weekday (rows, Monday first) x local hour (columns), darker = more messages."""
    if len(matrix) != 7 or any(len(row) != 24 for row in matrix):
        raise ValueError("matrix: expected 7 rows of 24 values")
    with _lock:
        figure = Figure(figsize=(10.0, 4.2), dpi=_DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        image = axes.imshow(
            [list(row) for row in matrix],
            aspect="auto",
            cmap="Blues",
            interpolation="nearest",
            vmin=0,
        )
        axes.set_yticks(range(7), list(t.weekdays()))
        axes.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
        axes.set_xlabel(t.gettext("hour ({zone})", zone=plain_title(timezone)))
        figure.colorbar(image, ax=axes, label=t.gettext("messages"), shrink=0.9)
        axes.set_title(plain_title(title), loc="left")
        return _png(figure)


def bucket_member_days(days: Sequence[MemberDay]) -> tuple[list[MemberDay], str]:
    """Daily rows summed into weeks (over 92 days) or months (over two years), so a long
    period stays a readable number of bars. Each bucket is dated by its first day."""
    if len(days) <= 92:
        return list(days), "day"
    granularity = "week" if len(days) <= 731 else "month"
    buckets: dict[date, list[int]] = {}
    for row in days:
        if granularity == "week":
            start = row.day - timedelta(days=row.day.weekday())
        else:
            start = row.day.replace(day=1)
        totals = buckets.setdefault(start, [0, 0])
        totals[0] += row.joins
        totals[1] += row.leaves
    rows = [MemberDay(day=d, joins=j, leaves=lv, net=j - lv) for d, (j, lv) in buckets.items()]
    return rows, granularity


_MEMBERS_PER = {
    "day": N_("members per day"),
    "week": N_("members per week"),
    "month": N_("members per month"),
}


def members_png(
    days: Sequence[MemberDay],
    *,
    title: str,
    members_now: int | None = None,
    t: Translator = _ENGLISH,
) -> bytes:
    """Joins up, leaves down, and the running net change over the period as a line."""
    days, granularity = bucket_member_days(days)
    with _lock:
        figure, axes = _figure()
        xs = list(range(len(days)))
        axes.bar(xs, [d.joins for d in days], color=_JOIN, label=t.gettext("joined"))
        axes.bar(xs, [-d.leaves for d in days], color=_LEAVE, label=t.gettext("left"))
        axes.axhline(0, color="#666666", linewidth=0.8)
        axes.set_ylabel(t.gettext(_MEMBERS_PER[granularity]))
        running: list[int] = []
        total = 0
        for day in days:
            total += day.net
            running.append(total)
        growth = axes.twinx()
        growth.plot(
            xs, running, color=_LINE, linewidth=2, label=t.gettext("net change since start")
        )
        growth.set_ylabel(t.gettext("net change"))
        growth.spines[["top"]].set_visible(False)
        _sparse_ticks(axes, _date_labels([d.day for d in days], granularity, t))
        handles = axes.get_legend_handles_labels()
        more = growth.get_legend_handles_labels()
        axes.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", frameon=False)
        heading = plain_title(title)
        if members_now is not None:
            heading += " · " + t.ngettext("{n} member now", "{n} members now", members_now)
        axes.set_title(heading, loc="left")
        return _png(figure)
