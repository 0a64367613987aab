"""Progress while importing, and the summary printed at the end.

On a terminal ``Progress`` redraws one line (a bar, messages, rate, ETA);
elsewhere (logs, CI, pipes) it prints a plain line every few seconds.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

from tgstats.importer.mapper import ChatStats

__all__ = ["ChatResult", "ImportSummary", "Progress"]


class Progress:
    """Reports ``update(messages, bytes_done)`` calls, throttled; ``close()`` ends the line."""

    def __init__(
        self,
        total_bytes: int,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total_bytes = max(total_bytes, 1)
        self.interval = interval if interval is not None else (0.2 if self.tty else 5.0)
        self.started = time.monotonic()
        self._last = 0.0
        self._drawn = False
        self._shown: tuple[int, int] | None = None
        self.messages = 0

    def update(self, messages: int, bytes_done: int, *, force: bool = False) -> None:
        self.messages = messages
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        if force and self._shown == (messages, bytes_done):
            return  # the final update would repeat the last line
        self._last = now
        self._shown = (messages, bytes_done)
        line = self.render(messages, bytes_done, now - self.started)
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def render(self, messages: int, bytes_done: int, elapsed: float) -> str:
        fraction = min(bytes_done / self.total_bytes, 1.0)
        rate = messages / elapsed if elapsed > 0 else 0.0
        if 0 < fraction < 1 and elapsed > 0:
            eta = _clock(elapsed * (1 - fraction) / fraction)
        else:
            eta = "--:--" if fraction < 1 else "0:00"
        text = f"{fraction * 100:5.1f}%  {messages:,} messages  {rate:,.0f} msg/s  ETA {eta}"
        if not self.tty:
            return "import: " + text
        width = 24
        filled = int(width * fraction)
        return f"[{'#' * filled}{'.' * (width - filled)}] {text}"

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class ChatResult:
    """One chat of the export: imported (with stats) or skipped (with the reason)."""

    label: str
    export_id: int | None
    export_type: str | None
    chat_id: int | None = None
    chat_type: str | None = None
    skipped_reason: str | None = None
    stats: ChatStats = field(default_factory=ChatStats)
    # Known only when the import asked the database first (``precheck``).
    new_messages: int | None = None
    known_messages: int | None = None  # stored already, or counted before retention ran
    outside_retention: int | None = None  # older than the chat's metadata retention
    retention_days: int | None = None
    timezone: str | None = None  # the chat's zone, its days are counted in
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportSummary:
    path: str
    timezone: str
    dry_run: bool = False
    shape: str | None = None
    chats: list[ChatResult] = field(default_factory=list)
    migrations: int = 0
    unmatched_selectors: list[str] = field(default_factory=list)
    error: str | None = None
    elapsed: float = 0.0
    timezone_given: bool = True
    nothing_written: bool = False  # the file was checked whole first and is bad

    @property
    def local_dates(self) -> int:
        """Dates the export gave only as wall-clock time, read in ``timezone``."""
        return sum(c.stats.local_dates for c in self.chats if c.skipped_reason is None)

    def _known(self, name: str) -> int | None:
        values = [getattr(c, name) for c in self.chats if c.skipped_reason is None]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    @property
    def new_messages(self) -> int | None:
        return self._known("new_messages")

    @property
    def known_messages(self) -> int | None:
        return self._known("known_messages")

    @property
    def outside_retention(self) -> int | None:
        return self._known("outside_retention")

    def zone_warning(self) -> str | None:
        """What the summary says about the zone wall-clock dates were read in."""
        if not self.local_dates:
            return None
        said = (
            f"{self.local_dates:,} dates had no offset (no date_unixtime): read as {self.timezone}"
        )
        if self.timezone_given:
            return said
        return (
            f"warning: {said}, the default; give the zone of the computer that made the "
            "export with --tz (tz= on the API) if it was another"
        )

    @property
    def imported_messages(self) -> int:
        return sum(c.stats.messages for c in self.chats if c.skipped_reason is None)

    def skipped(self) -> Counter[str]:
        """Messages not imported, by reason (whole chats skipped count their messages too)."""
        total: Counter[str] = Counter()
        for chat in self.chats:
            total.update(chat.stats.skipped)
        return total

    def unknown_fields(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for chat in self.chats:
            total.update(chat.stats.unknown_fields)
        return total

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "timezone": self.timezone,
            "dry_run": self.dry_run,
            "shape": self.shape,
            "imported_messages": self.imported_messages,
            "skipped": dict(self.skipped()),
            "unknown_fields": dict(self.unknown_fields()),
            "migrations": self.migrations,
            "unmatched_selectors": list(self.unmatched_selectors),
            "error": self.error,
            "nothing_written": self.nothing_written,
            "elapsed_seconds": round(self.elapsed, 3),
            "new_messages": self.new_messages,
            "known_messages": self.known_messages,
            "outside_retention": self.outside_retention,
            "local_dates": self.local_dates,
            "zone_warning": self.zone_warning(),
            "chats": [
                {
                    "name": c.label,
                    "export_id": c.export_id,
                    "export_type": c.export_type,
                    "chat_id": c.chat_id,
                    "chat_type": c.chat_type,
                    "skipped_reason": c.skipped_reason,
                    "messages": c.stats.messages,
                    "service_messages": c.stats.service,
                    "member_events": c.stats.member_events,
                    "members_without_user": c.stats.members_without_user,
                    "reactions": c.stats.reactions,
                    "edited": c.stats.edited,
                    "skipped": dict(c.stats.skipped),
                    "service_actions": dict(c.stats.service_actions),
                    "new_messages": c.new_messages,
                    "known_messages": c.known_messages,
                    "outside_retention": c.outside_retention,
                    "metadata_retention_days": c.retention_days,
                    "timezone": c.timezone,
                    "notes": list(c.notes),
                }
                for c in self.chats
            ],
        }

    def render(self) -> str:
        """The end-of-import report for a person."""
        verb = "would import" if self.dry_run else "imported"
        if self.nothing_written:
            verb = "checked, wrote nothing of"
        head = f"{self.path}: {verb} {self.imported_messages:,} messages"
        if self.new_messages is not None:
            head += f" ({self.new_messages:,} new, {self.known_messages:,} already known)"
        lines = [f"{head} in {self.elapsed:.1f}s (dates without an offset read as {self.timezone})"]
        warning = self.zone_warning()
        if warning:
            lines.append(f"  {warning}")
        for chat in self.chats:
            name = chat.label[:60]
            if chat.skipped_reason is not None:
                lines.append(
                    f"  - {name} ({chat.export_type}, id {chat.export_id}): skipped, "
                    f"{chat.skipped_reason}"
                )
                continue
            s = chat.stats
            lines.append(
                f"  - {name} -> chat {chat.chat_id} ({chat.chat_type}): {s.messages:,} messages, "
                f"{s.service:,} service, {s.member_events:,} joins/leaves "
                f"({s.members_without_user:,} without a user), {s.reactions:,} reactions, "
                f"{s.edited:,} edited"
            )
            if chat.new_messages is not None:
                lines.append(
                    f"      {chat.new_messages:,} new, {chat.known_messages:,} already known; "
                    f"days counted in {chat.timezone}"
                )
            if chat.outside_retention:
                lines.append(
                    f"      {chat.outside_retention:,} messages are older than the chat's "
                    f"metadata retention ({chat.retention_days} days): they stay counted, their "
                    "raw rows are removed at the next retention run (docs/privacy.md)"
                )
            for note in chat.notes:
                lines.append(f"      note: {note}")
            if s.service_actions:
                actions = ", ".join(f"{k} {v}" for k, v in sorted(s.service_actions.items()))
                lines.append(f"      service messages by action: {actions}")
        skipped = self.skipped()
        if skipped:
            lines.append(
                "  skipped messages: "
                + ", ".join(f"{reason} {count:,}" for reason, count in sorted(skipped.items()))
            )
        unknown = self.unknown_fields()
        if unknown:
            lines.append(
                "  unknown fields ignored: "
                + ", ".join(
                    f"{name[:40]} {count:,}" for name, count in sorted(unknown.items())[:20]
                )
            )
        if self.migrations:
            lines.append(f"  basic group -> supergroup migrations linked: {self.migrations}")
        for selector in self.unmatched_selectors:
            lines.append(f"  --chat {selector!r} matched no chat in the export")
        if self.error and self.nothing_written:
            lines.append(f"  stopped: {self.error}")
            lines.append("  the whole file was checked before writing: nothing was imported")
        elif self.error:
            lines.append(f"  stopped: {self.error}")
            lines.append(
                "  everything imported before the error is saved; rerunning the "
                "import after fixing the file resumes without counting twice"
            )
        return "\n".join(lines)
