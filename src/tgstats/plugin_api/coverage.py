"""What the bot did not receive and its repair (part of the versioned plugin API).

The Telegram plugin records a stretch a catch-up could not recover
(``record_lost_updates``), finds the gaps still to repair (``repairable_gaps``),
the ids of one not stored yet (``missing_message_ids``), and moves it on after
each committed chunk (``record_repair_progress``); it keeps the coverage
ledger's runs (``start_capture_run``, then ``capture_heartbeat`` every
``HEARTBEAT_SECONDS`` while it runs). Each takes the caller's
``AsyncSession``; the caller commits.
"""

from tgstats.coverage import (
    HEARTBEAT_SECONDS,
    GapRecord,
    capture_heartbeat,
    get_gap,
    missing_message_ids,
    record_lost_updates,
    record_repair_progress,
    repairable_gaps,
    start_capture_run,
)

__all__ = [
    "HEARTBEAT_SECONDS",
    "GapRecord",
    "capture_heartbeat",
    "get_gap",
    "missing_message_ids",
    "record_lost_updates",
    "record_repair_progress",
    "repairable_gaps",
    "start_capture_run",
]
