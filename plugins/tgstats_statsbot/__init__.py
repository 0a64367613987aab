"""The ``statsbot`` plugin: ``/stats``, ``/me`` and ``/top`` answered from the stats engine.

``/stats [period]`` is the chat's summary; ``/stats top|hours|days|history|words|
media|reactions|members|topics|me [period]`` and ``/stats user @name [period]``
answer one question each, with a PNG chart for history, hours, the weekday x
hour heatmap and members. The MTProto plugin dispatches these commands (and
rate-limits them); ``/leaderboard`` belongs to the engagement plugin.
"""

from .plugin import DEFAULT_PERIOD, StatsBotPlugin

__all__ = ["DEFAULT_PERIOD", "StatsBotPlugin"]
