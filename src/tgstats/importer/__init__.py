"""Import Telegram Desktop JSON exports (``result.json``) into tgstats.

The importer is a source like the MTProto plugin: it turns export messages
into ``tgstats.events`` and puts them into an ``EventSink``, so imported
history and live updates are deduplicated together (the same message counts
once). Reading is streaming, in constant memory, whatever the file size.

- ``import_export(path, sink, ImportOptions(...))``: the library entry point.
- ``add_import_arguments`` / ``run_import_command``: ``tgstats import``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tgstats.importer.progress import ImportSummary, Progress
from tgstats.importer.reader import ExportFormatError, ExportReader
from tgstats.importer.runner import CountingSink, ImportOptions, import_export
from tgstats.settings import Settings
from tgstats.timezones import check_timezone

if TYPE_CHECKING:
    from tgstats.plugin_api import SharedVersionBumper

__all__ = [
    "CountingSink",
    "ExportFormatError",
    "ExportReader",
    "ImportOptions",
    "ImportSummary",
    "Progress",
    "add_import_arguments",
    "import_export",
    "run_import_command",
]


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tgstats import``."""
    parser.add_argument("path", metavar="PATH", help="the export's result.json")
    parser.add_argument(
        "--chat",
        action="append",
        default=[],
        metavar="ID|NAME",
        help="import only this chat (export id, Bot API id or exact name); repeatable. "
        "Default: groups and supergroups (a one-chat export: that chat unless it is personal)",
    )
    parser.add_argument(
        "--tz",
        default=None,
        metavar="ZONE",
        help="IANA time zone of the computer that made the export; used only for messages "
        "without date_unixtime (older exports; the summary warns when it used the default). "
        "Default: UTC",
    )
    parser.add_argument(
        "--chat-timezone",
        default=None,
        metavar="ZONE",
        help="IANA time zone to count the days of chats tgstats has counted nothing of yet "
        "(set before anything is counted). Default: DEFAULT_TIMEZONE; for chats with counted "
        "history use tgstats chats set-timezone",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read and map the whole file, print the summary, write nothing",
    )


async def run_import_command(
    args: argparse.Namespace, settings: Settings, session_factory: Any
) -> int:
    """Run ``tgstats import``: 0 on success, 1 when the file is broken, 2 for a usage error."""
    path = Path(args.path)
    size = _file_size(path)
    if size is None:
        print(f"tgstats import: {path}: no such file", file=sys.stderr)
        return 2
    tz = args.tz or "UTC"
    chat_tz = getattr(args, "chat_timezone", None)
    for flag, value in (("--tz", tz), ("--chat-timezone", chat_tz)):
        if value is None:
            continue
        try:
            check_timezone(value)
        except ValueError as exc:
            print(f"tgstats import: {flag}: {exc}", file=sys.stderr)
            return 2
    options = ImportOptions(
        chats=tuple(args.chat or ()), timezone=tz, dry_run=args.dry_run,
        timezone_given=args.tz is not None, chat_timezone=chat_tz,
    )  # fmt: skip
    print(
        f"tgstats import: reading {path} (dates without an offset are read as {tz})",
        file=sys.stderr,
    )
    progress = Progress(size)
    if args.dry_run:
        summary = await import_export(path, CountingSink(), options, progress=progress)
    else:
        from tgstats.pipeline.bulk import BulkImportSink

        bumper = _SharedCacheBumper.for_settings(settings)
        sink = BulkImportSink(
            session_factory=session_factory,
            on_commit=bumper.bump if bumper is not None else None,
            default_timezone=settings.privacy.default_timezone,
        )
        try:
            summary = await import_export(
                path, sink, options, progress=progress,
                session_factory=session_factory,
                default_timezone=settings.privacy.default_timezone,
            )  # fmt: skip
        except Exception as exc:  # the database refused or went away: the chat rolled back
            print(
                f"tgstats import: writing to the database failed ({type(exc).__name__}); "
                "the chat being written was rolled back, chats before it are complete; "
                "run the same import again to finish",
                file=sys.stderr,
            )
            return 1
        finally:
            if bumper is not None:
                await bumper.close()
    print(summary.render())
    if summary.error is not None:
        print(f"tgstats import: {summary.error}", file=sys.stderr)
        return 1
    return 0


class _SharedCacheBumper:
    """Tells the service's shared cache which chats ``tgstats import`` changed.

    A running service caches stats per chat data version, bumped by the process that
    writes. The CLI writes from its own process, so with a shared (Redis) cache it
    bumps the versions there itself, through the plugin that keeps that cache (a
    ``SharesDataVersions`` plugin). An in-process cache lives in the service's
    memory, out of reach: its answers may be up to ``CACHE_TTL`` old.
    """

    def __init__(self, bumper: SharedVersionBumper) -> None:
        self._bumper = bumper
        self._warned = False

    @classmethod
    def for_settings(cls, settings: Settings) -> _SharedCacheBumper | None:
        if settings.redis.url is None or not settings.cache.enabled:
            return None  # no shared cache: no plugin needs asking
        from tgstats.plugin_api import ServiceRegistry, SharesDataVersions
        from tgstats.plugin_host import load_plugins

        try:
            host = load_plugins(settings, ServiceRegistry())
        except Exception as exc:  # the import itself goes on; say what may be stale
            print(
                f"tgstats import: plugins did not load ({exc}); "
                "cached stats may be up to CACHE_TTL seconds old",
                file=sys.stderr,
            )
            return None
        for plugin in host.plugins:
            if isinstance(plugin, SharesDataVersions):
                bumper = plugin.shared_version_bumper()
                if bumper is not None:
                    return cls(bumper)
        return None

    async def bump(self, chat_ids: set[int]) -> None:
        try:
            await self._bumper.bump(sorted(chat_ids))
        except Exception as exc:  # the import itself goes on; say once what may be stale
            if self._warned:
                return
            self._warned = True
            print(
                f"tgstats import: could not tell the cache in Redis about the new data ({exc}); "
                "cached stats may be up to CACHE_TTL seconds old",
                file=sys.stderr,
            )

    async def close(self) -> None:
        await self._bumper.close()


def _file_size(path: Path) -> int | None:
    """The size of a regular file, or None when there is no such file."""
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None
