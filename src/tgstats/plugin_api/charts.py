"""PNG charts of stats results, as the bot replies use them (part of the versioned plugin API).

Drawing is CPU work: run it off the event loop with ``await render(draw, ...)``::

    from tgstats.plugin_api.charts import history_png, render

    png = await render(history_png, series.points, title="Messages", timezone=scope.timezone)
"""

from tgstats.charts import (
    bucket_member_days,
    heatmap_png,
    history_png,
    hours_png,
    members_png,
    plain_title,
    render,
)

__all__ = [
    "bucket_member_days",
    "heatmap_png",
    "history_png",
    "hours_png",
    "members_png",
    "plain_title",
    "render",
]
