"""The ``tgstats`` command line.

``serve`` (API + dashboard + bot, through granian), ``bot`` (the Telegram
client and health/metrics only), ``worker`` (background jobs and health/metrics
only), ``jobs`` (list background jobs), ``migrate``, ``plugins``, ``version``,
``config``, ``import``, ``chats set-timezone``, ``chats repair`` and ``demo``.
Errors a person can fix (a bad setting, an unreachable database, a broken
plugin) end with one clear line on stderr and a non-zero exit code, never a
traceback wall.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tgstats import __version__
from tgstats.settings import Settings, SettingsError, render_env_example, render_markdown_table

if TYPE_CHECKING:
    from tgstats.db.engine import Database

T = TypeVar("T")

__all__ = ["main"]

log = logging.getLogger("tgstats.cli")


class CliError(Exception):
    """An error shown as one line, with an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _settings(env: dict[str, str] | None = None) -> Settings:
    try:
        return Settings.from_env(env)
    except SettingsError as exc:
        raise CliError(f"invalid setting: {exc}", 2) from None


def _prepare_database(settings: Settings, *, migrate: bool) -> tuple[str, Any]:
    """Resolve the database (embedded without a URL), wait for it, migrate: (url, embedded)."""
    from tgstats.db.engine import DatabaseUnavailable, run_migrations, wait_for_database

    embedded = None
    if settings.database.url is None:
        from tgstats.db.embedded import start_embedded_postgres

        try:
            embedded = start_embedded_postgres(settings.server.data_dir)
        except Exception as exc:
            raise CliError(f"could not start the embedded PostgreSQL: {exc}") from None
        url = embedded.url
        migrate = True  # the embedded database is ours to keep current
    else:
        url = settings.database.url.get()
    try:
        asyncio.run(
            wait_for_database(
                url,
                timeout=settings.database.startup_wait,
                connect_timeout=settings.database.connect_timeout,
            )
        )
        if migrate:
            asyncio.run(run_migrations(url))
    except DatabaseUnavailable as exc:
        if embedded is not None:
            embedded.stop()
        raise CliError(str(exc)) from None
    return url, embedded


def _check_plugins(settings: Settings) -> None:
    from tgstats.app import create_app
    from tgstats.plugin_host import PluginLoadError

    try:
        create_app(settings)
    except PluginLoadError as exc:
        raise CliError(str(exc)) from None


def _run_granian(host: str, port: int, workers: int, env: dict[str, str]) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    os.environ.update(env)
    Granian(
        "tgstats.app:app_from_env",
        factory=True,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        log_access=False,
    ).serve()


def cmd_serve(args: argparse.Namespace, *, role: str | None = None) -> int:
    env_overrides: dict[str, str] = {}
    if role is not None:
        env_overrides["TGSTATS_ROLE"] = role
    if role == "worker":
        env_overrides["JOBS_WORKER"] = "1"
    settings = _settings({**os.environ, **env_overrides})
    url, embedded = _prepare_database(settings, migrate=not args.no_migrate)
    if embedded is not None:
        env_overrides["DATABASE_URL"] = url
    _check_plugins(_settings({**os.environ, **env_overrides}))
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    workers = 1 if role in {"bot", "worker"} else (args.workers or settings.server.workers)
    try:
        _run_granian(host, port, workers, env_overrides)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from tgstats.db.engine import run_migrations

    settings = _settings()
    if args.revision != "head" or args.downgrade:
        url, embedded = _prepare_database(settings, migrate=False)
        asyncio.run(run_migrations(url, args.revision, downgrade=args.downgrade))
    else:
        url, embedded = _prepare_database(settings, migrate=True)
    if embedded is not None:
        embedded.stop()
    print(
        "database schema at "
        f"{'base' if args.downgrade and args.revision == 'base' else args.revision}"
    )
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from tgstats.plugin_api import ServiceRegistry
    from tgstats.plugin_host import PluginLoadError, load_plugins

    settings = _settings()
    try:
        host = load_plugins(settings, ServiceRegistry())
    except PluginLoadError as exc:
        raise CliError(str(exc)) from None
    print(f"{'id':<16} {'state':<10} {'version':<12} distribution")
    for row in host.describe():
        dist = f"{row['distribution'] or '-'} {row['distribution_version'] or ''}".strip()
        print(f"{row['id']:<16} {row['state']:<10} {row['version'] or '-':<12} {dist}")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"tgstats {__version__}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    if args.markdown:
        sys.stdout.write(render_markdown_table())
    elif args.example:
        sys.stdout.write(render_env_example())
    else:
        settings = _settings()
        print(repr(settings))  # secrets render masked
    return 0


def _with_database(settings: Settings, migrate: bool = True) -> tuple[Any, Any]:
    from tgstats.db.engine import open_database

    url, embedded = _prepare_database(settings, migrate=migrate)
    return open_database(url, settings.database), embedded


def _run_on_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on the migrated database (started embedded when there is no URL),
    then dispose of the engine and stop the embedded server."""
    database, embedded = _with_database(settings)

    async def run() -> T:
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    finally:
        if embedded is not None:
            embedded.stop()


def cmd_import(args: argparse.Namespace) -> int:
    from tgstats.importer import run_import_command

    settings = _settings()
    if getattr(args, "dry_run", False):  # parses and counts; needs no database
        return asyncio.run(run_import_command(args, settings, None))

    async def run(database: Database) -> int:
        return await run_import_command(args, settings, database.session_factory)

    return _run_on_database(settings, run)


def cmd_chats(args: argparse.Namespace) -> int:
    """``tgstats chats set-timezone CHAT ZONE``: change a chat's zone and recount it;
    ``tgstats chats repair CHAT``: fetch the supergroup messages missing among its ids."""
    if args.chats_command == "repair":
        return _repair_chat(args)
    import zoneinfo

    from sqlalchemy import text

    from tgstats.db.chat_settings import update_chat_settings
    from tgstats.pipeline.recount import recount_chat

    try:
        zoneinfo.ZoneInfo(args.zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CliError(
            f"expected an IANA time zone like Europe/Berlin, got {args.zone[:64]!r}", 2
        ) from None
    settings = _settings()
    default_zone = settings.privacy.default_timezone

    async def run(database: Database) -> int:
        async with database.session_factory() as session:
            exists = await session.scalar(
                text("SELECT 1 FROM chats WHERE id = :c"), {"c": args.chat}
            )
            if exists is None:
                raise CliError(f"no chat {args.chat}", 2)
            value = await update_chat_settings(
                session, args.chat, default_timezone=default_zone, timezone=args.zone
            )
            await session.commit()
        if value.pending_timezone is None:
            print(f"chat {args.chat}: time zone {value.timezone} (nothing to recount)")
            return 0
        if args.no_wait:
            print(
                f"chat {args.chat}: recount in {args.zone} queued; a job worker "
                "(tgstats serve, bot or worker) does it in the background"
            )
            return 0

        def progress(done: int, total: int) -> None:
            print(f"recounting in {args.zone}: {done:,} of {total:,} messages", flush=True)

        outcome = "busy"
        while outcome == "busy":  # a writer's batch or another process holds the chat
            outcome = await recount_chat(
                database.session_factory, args.chat, default_timezone=default_zone,
                on_progress=progress,
            )  # fmt: skip
        if outcome == "failed":
            raise CliError(f"chat {args.chat}: the recount failed (see the log)")
        print(f"chat {args.chat}: history counted in {args.zone} ({outcome})")
        return 0

    return _run_on_database(settings, run)


def _repair_chat(args: argparse.Namespace) -> int:
    """Ask for a repair of a supergroup's missing ids; the bot process does it (it alone
    talks to Telegram). Prints its progress until it is done, unless ``--no-wait``."""
    import time

    from sqlalchemy import text

    from tgstats.coverage import get_gap, request_repair

    settings = _settings()

    async def run(database: Database) -> int:
        async with database.session_factory() as session:
            kind = await session.scalar(
                text("SELECT type FROM chats WHERE id = :c"), {"c": args.chat}
            )
            if kind is None:
                raise CliError(f"no chat {args.chat}", 2)
            if kind not in ("supergroup", "channel"):
                raise CliError(
                    f"chat {args.chat} is a {kind}: Telegram lets a bot fetch messages by "
                    "id only in supergroups; import an export to fill a basic group",
                    2,
                )
            gap = await request_repair(
                session, args.chat, from_msg_id=args.from_id, to_msg_id=args.to_id
            )
            await session.commit()
        if gap is None:
            print(f"chat {args.chat}: no stored messages, so no id range to repair")
            return 0
        print(
            f"chat {args.chat}: repair {gap.id} of message ids {gap.from_msg_id}-"
            f"{gap.to_msg_id} requested; the running bot process does it",
            flush=True,
        )
        if args.no_wait:
            return 0
        deadline = time.monotonic() + args.timeout
        last = None
        while time.monotonic() < deadline:
            async with database.session_factory() as session:
                current = await get_gap(session, gap.id)
            if current is None:
                raise CliError(f"repair {gap.id} is gone (the chat was deleted?)")
            progress = (current.state, current.next_msg_id, current.recovered)
            if progress != last:
                print(
                    f"repair {gap.id}: {current.state}, {current.remaining:,} ids left, "
                    f"{current.recovered:,} recovered, {current.unavailable:,} unavailable",
                    flush=True,
                )
                last = progress
            if current.state == "repaired":
                return 0
            if current.state == "failed":
                raise CliError(f"repair {gap.id} failed: {current.error}")
            await asyncio.sleep(2)
        raise CliError(
            f"repair {gap.id} is not done after {args.timeout:g}s (is the bot running?); "
            "it goes on in the background"
        )

    return _run_on_database(settings, run)


def cmd_jobs(args: argparse.Namespace) -> int:
    """``tgstats jobs``: background jobs, newest first, from the database."""
    from tgstats.jobs.state import list_jobs

    settings = _settings()

    async def run(database: Database) -> list[Any]:
        async with database.session_factory() as session:
            return await list_jobs(
                session, chat_id=args.chat, status=args.status, kind=args.kind,
                limit=args.limit,
            )  # fmt: skip

    jobs = _run_on_database(settings, run)
    print(f"{'id':>8} {'kind':<18} {'status':<9} {'progress':>8} {'tries':>5} {'chat':>15}  when")
    for job in jobs:
        percent = "" if job.progress.percent is None else f"{job.progress.percent:.0f}%"
        when = job.finished_at or job.started_at or job.created_at
        stamp = when.strftime("%Y-%m-%d %H:%M:%S") if when is not None else ""
        chat = "" if job.chat_id is None else str(job.chat_id)
        print(
            f"{job.id:>8} {job.kind[:18]:<18} {job.status:<9} {percent:>8} {job.attempts:>5}"
            f" {chat:>15}  {stamp}"
        )
        if job.error:
            print(f"{'':>8} error: {job.error}")
    if not jobs:
        print("no jobs")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tgstats.demo import seed_demo

    env = dict(os.environ)
    chosen = env.get("ADMIN_API_TOKEN")
    token = chosen or secrets.token_urlsafe(24)
    env["ADMIN_API_TOKEN"] = token
    settings = _settings(env)
    database, embedded = _with_database(settings)

    async def seed() -> Any:
        try:
            return await seed_demo(database.session_factory, settings=settings)
        finally:
            await database.dispose()

    try:
        summary = asyncio.run(seed())
        port = args.port or settings.server.port
        url = f"http://127.0.0.1:{port}/"
        print(f"\n  tgstats demo: {summary}")
        print(f"  Dashboard:  {url}")
        if chosen:  # the operator's own secret: never echoed into a terminal or log
            print("  Sign in with your ADMIN_API_TOKEN (Ctrl+C stops)\n", flush=True)
        else:
            print(f"  Sign in with the admin token: {token}")
            print("  (set ADMIN_API_TOKEN to choose your own; Ctrl+C stops)\n", flush=True)
        overrides = {"ADMIN_API_TOKEN": token}
        if embedded is not None:
            overrides["DATABASE_URL"] = embedded.url
        _run_granian("127.0.0.1", port, 1, overrides)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tgstats", description="Statistics for Telegram group chats"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    for name, help_text in (
        ("serve", "run the API, dashboard and bot"),
        ("bot", "run only the Telegram bot (plus health and metrics)"),
        ("worker", "run only background jobs (plus health and metrics)"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--host", help="bind address (default TGSTATS_HOST)")
        p.add_argument("--port", type=int, help="port (default TGSTATS_PORT)")
        if name == "serve":
            p.add_argument("--workers", type=int, help="worker processes (default TGSTATS_WORKERS)")
        p.add_argument("--no-migrate", action="store_true", help="do not run migrations first")

    p = sub.add_parser("migrate", help="bring the database schema up to date")
    p.add_argument("revision", nargs="?", default="head")
    p.add_argument("--downgrade", action="store_true", help="downgrade to REVISION instead")

    sub.add_parser("plugins", help="list discovered plugins and their state")
    sub.add_parser("version", help="print the version")
    p = sub.add_parser("config", help="show the effective settings (secrets masked)")
    p.add_argument("--example", action="store_true", help="print .env.example")
    p.add_argument("--markdown", action="store_true", help="print the README settings table")

    p = sub.add_parser("import", help="import a Telegram Desktop JSON export")
    try:
        from tgstats.importer import add_import_arguments
    except ImportError:  # pragma: no cover - importer not installed in a trimmed build
        pass
    else:
        add_import_arguments(p)

    p = sub.add_parser("chats", help="change a chat")
    chats = p.add_subparsers(dest="chats_command", required=True)
    p = chats.add_parser(
        "set-timezone", help="set a chat's time zone and recount its history in it"
    )
    p.add_argument("chat", type=int, metavar="CHAT", help="the chat's Bot API id")
    p.add_argument("zone", metavar="ZONE", help="IANA time zone, e.g. Europe/Berlin")
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="only ask for the recount; a running service does it in the background",
    )

    p = chats.add_parser(
        "repair", help="fetch a supergroup's messages missing among its stored ids"
    )
    p.add_argument("chat", type=int, metavar="CHAT", help="the chat's Bot API id")
    p.add_argument("--from-id", type=int, help="first message id (default: lowest stored)")
    p.add_argument("--to-id", type=int, help="last message id (default: highest stored)")
    p.add_argument(
        "--no-wait", action="store_true", help="only ask; the running bot process repairs"
    )
    p.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to show progress (default 600)"
    )

    p = sub.add_parser("jobs", help="list background jobs (imports, recounts, retention, ...)")
    p.add_argument(
        "--status", choices=("queued", "running", "done", "failed", "cancelled"), default=None
    )
    p.add_argument("--kind", help="only jobs of this kind (import, recount, privacy.retention)")
    p.add_argument("--chat", type=int, help="only jobs of this chat")
    p.add_argument("--limit", type=int, default=30, help="how many (default 30)")

    p = sub.add_parser("demo", help="seed a demo group and serve it on 127.0.0.1")
    p.add_argument("--port", type=int, help="port (default TGSTATS_PORT)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "serve": cmd_serve,
        "bot": lambda a: cmd_serve(a, role="bot"),
        "worker": lambda a: cmd_serve(a, role="worker"),
        "jobs": cmd_jobs,
        "migrate": cmd_migrate,
        "plugins": cmd_plugins,
        "version": cmd_version,
        "config": cmd_config,
        "import": cmd_import,
        "chats": cmd_chats,
        "demo": cmd_demo,
    }
    if args.command in {"bot", "worker"}:
        args.workers = 1
    try:
        return int(handlers[args.command](args))
    except CliError as exc:
        print(f"tgstats: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
