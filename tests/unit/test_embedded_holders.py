"""The embedded PostgreSQL's list of holders forgets processes that died without letting go."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from tgstats.db.embedded import forget_dead_holders


def _a_dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_dead_holders_are_dropped_and_live_ones_kept(tmp_path: Path) -> None:
    holders = tmp_path / ".handle_pids.json"
    dead = _a_dead_pid()
    holders.write_text(json.dumps([dead, 1]))  # pid 1 (init) is alive
    assert forget_dead_holders(tmp_path, threading.Lock()) == [1]
    assert json.loads(holders.read_text()) == [1]


def test_a_missing_or_broken_list_is_left_alone(tmp_path: Path) -> None:
    assert forget_dead_holders(tmp_path, threading.Lock()) == []
    holders = tmp_path / ".handle_pids.json"
    holders.write_text("not json")
    assert forget_dead_holders(tmp_path, threading.Lock()) == []
    assert holders.read_text() == "not json"
