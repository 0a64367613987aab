"""The ``engagement`` plugin: a per-member engagement score and leaderboard.

- stats function ``engagement(session, scope, period)`` (``tgstats_engagement.score``);
- ``GET /api/v1/chats/{chat_id}/engagement`` (JSON, or CSV of the scores);
- the ``/leaderboard [period]`` bot command.

total = 0.30·activity + 0.25·consistency + 0.25·quality + 0.20·interaction;
the parts and their normalisation are written down in docs/stats.md.
"""

from .plugin import EngagementController, EngagementPlugin, format_leaderboard
from .score import EngagementBoard, EngagementScore, UserCounts, engagement, score, totals

__all__ = [
    "EngagementBoard",
    "EngagementController",
    "EngagementPlugin",
    "EngagementScore",
    "UserCounts",
    "engagement",
    "format_leaderboard",
    "score",
    "totals",
]
