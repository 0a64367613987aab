"""``MTProtoPlugin``: the Telegram client of tgstats (kurigram, import name ``pyrogram``).

Without ``TELEGRAM_API_ID``, ``TELEGRAM_API_HASH`` and ``TELEGRAM_BOT_TOKEN``
the plugin stays off; ``/health/ready`` says so (degraded, so the rest of the
service keeps serving). With them, the lifespan logs the bot in, bounded by
``TELEGRAM_START_TIMEOUT``, and fails with one clear line when Telegram refuses
the credentials or cannot be reached. It never asks for terminal input.

What survives a restart (``storage.py``): the auth key (no new login), the
peers (chats and users stay addressable) and the update state. On start the
client runs with ``skip_updates=False``, so kurigram asks Telegram for the
difference since the stored state:

- recovered: new messages, edits and deletions in supergroups and channels
  (``getChannelDifference``, per channel, while Telegram still keeps the gap),
  and in basic groups through the common sequence (``getDifference``);
- not recovered: anything older than Telegram keeps for a difference (a long
  outage ends with "too long" and a jump to the current state — those
  messages are never seen); reactions, reaction counts and chat member
  updates (they travel in the bots' qts sequence and kurigram's catch-up asks
  with ``qts=0``); supergroups whose pts was never stored.

While running, ``catchup.CatchUp`` fetches the difference again on a pts gap,
on "too long" and after every reconnect, and logs and counts what Telegram no
longer had; ``repair.GapRepair`` records that in ``coverage_gaps`` and fetches
the missing supergroup messages by id. ``TELEGRAM_DC_ADDRESS`` points the
session at another data centre (the tests' local one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from pyrogram import Client, types
from pyrogram.errors import RPCError
from pyrogram.storage import Storage

from tgstats.plugin_api import BotCommand, HealthCheck, Plugin, PluginContext

from .admin_commands import AdminCommands
from .catchup import CatchUp
from .commands import AdminCache, CommandDispatcher
from .handlers import ChatSettingsCache, UpdateRecorder
from .ledger import CaptureHeartbeat
from .outgoing import ButtonDispatcher, Outgoing
from .repair import GapRepair
from .share_commands import ShareCommands
from .storage import DatabaseStorage, FileSessionStorage
from .update_state_gate import HandledUpdates, UpdateStateGate

if TYPE_CHECKING:
    from litestar import Litestar

    from tgstats.plugin_api import TelegramSettings

__all__ = ["MTProtoPlugin", "TelegramStartError", "build_client"]

log = logging.getLogger("tgstats.mtproto")


class TelegramStartError(RuntimeError):
    """The bot could not log in. ``str(err)`` is one line, free of secrets."""


def bot_id_from_token(token: str) -> int | None:
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def build_client(
    name: str,
    *,
    api_id: int,
    api_hash: str,
    bot_token: str,
    storage: Storage | None,
    in_memory: bool = False,
    skip_updates: bool = False,
    workers: int = 1,
) -> Client:
    """The one place a kurigram ``Client`` is configured.

    One update worker keeps Telegram's order (a message before its edit and its
    deletion); recording is CPU-bound, so more workers would not be faster.
    Commands run beside it as tasks (``CommandDispatcher``).

    Parsing must never need the network: replies, topics, stories and sticker
    sets are not fetched (a bot cannot fetch most of them anyway, and a fetch
    per update would cost Telegram's flood limits).
    """
    return Client(
        name,
        api_id=api_id,
        api_hash=api_hash,
        bot_token=bot_token,
        storage_engine=storage,
        in_memory=in_memory or None,
        no_updates=False,
        skip_updates=skip_updates,
        workers=workers,
        fetch_replies=False,
        fetch_topics=False,
        fetch_stories=False,
        fetch_stickers=False,
    )


class MTProtoPlugin(Plugin):
    """Telegram updates → events, and bot command dispatch for every plugin."""

    id = "mtproto"
    version = "1.0.0"
    provides = ("telegram",)
    priority = 50

    async def start_test_harness(self) -> Any:
        """A network-free client wired to this plugin (``tgstats_mtproto.testing``)."""
        from .testing import MTProtoHarness

        return await MTProtoHarness.start(self)

    def __init__(self, *, context: PluginContext) -> None:
        super().__init__(context=context)
        self.client: Client | None = None
        self.catch_up: CatchUp | None = None
        self.gap_repair: GapRepair | None = None
        self.status = "not started"
        self._running = False
        self.chat_settings = ChatSettingsCache(self.services)
        self.admin_cache = AdminCache(ttl=self.settings.telegram.admin_cache_ttl)
        self.admin_commands = AdminCommands(
            all_commands=self.all_commands, on_change=self.chat_settings.forget
        )
        self.share_commands = ShareCommands()
        self.recorder = UpdateRecorder(
            self.services, chat_settings=self.chat_settings, me_id=self._me_id
        )
        self.dispatcher = CommandDispatcher(
            services=self.services,
            settings=self.settings,
            commands=self.all_commands,
            admin_cache=self.admin_cache,
            bot_username=self._me_username,
            chat_settings=self.chat_settings,
        )
        self.outgoing = Outgoing(lambda: self.client if self._sending else None)
        self._sending = False
        self.buttons = ButtonDispatcher(
            services=self.services,
            settings=self.settings,
            commands=self.all_commands,
            admin_cache=self.admin_cache,
            outgoing=self.outgoing,
            chat_settings=self.chat_settings,
        )

    # ------------------------------------------------------------------ hooks

    def commands(self) -> Sequence[BotCommand]:
        return [*self.admin_commands.commands(), *self.share_commands.commands()]

    def all_commands(self) -> list[BotCommand]:
        """Every loaded plugin's commands (the host's ``commands`` service), ours included."""
        gathered: Sequence[BotCommand] = self.services.get("commands") or ()
        seen: dict[str, BotCommand] = {}
        for command in [*self.commands(), *gathered]:
            seen.setdefault(command.name.lower(), command)
        return list(seen.values())

    async def health(self) -> HealthCheck:
        if not self._running:
            return HealthCheck(name="telegram", ok=False, degraded=True, detail=self.status)
        connected = bool(self.client is not None and self.client.is_connected)
        if not connected:
            return HealthCheck(
                name="telegram",
                ok=False,
                degraded=True,
                detail="disconnected from Telegram; reconnecting",
            )
        return HealthCheck(name="telegram", ok=True, detail=self.status)

    @asynccontextmanager
    async def lifespan(self, *, app: Litestar) -> AsyncIterator[None]:
        tg = self.settings.telegram
        if not self.settings.server.runs_bot:
            # TGSTATS_ROLE=web: web replicas scale freely; the one bot process owns the session.
            self.status = f"off: TGSTATS_ROLE={self.settings.server.role} runs no Telegram client"
            log.info("Telegram plugin %s", self.status)
            yield
            return
        missing = [
            name
            for name, value in (
                ("TELEGRAM_API_ID", tg.api_id),
                ("TELEGRAM_API_HASH", tg.api_hash),
                ("TELEGRAM_BOT_TOKEN", tg.bot_token),
            )
            if not value
        ]
        if missing:
            self.status = f"off: {', '.join(missing)} not set"
            log.info("Telegram plugin %s", self.status)
            yield
            return
        client = build_client(
            self.session_name(tg),
            api_id=int(tg.api_id or 0),
            api_hash=tg.api_hash.get() if tg.api_hash else "",
            bot_token=tg.bot_token.get() if tg.bot_token else "",
            storage=self.build_storage(tg),
        )
        self.attach(client)
        meter = self.services.get("meter")
        self.gap_repair = GapRepair(self.services, self.recorder, lambda: self.client, meter=meter)
        self.catch_up = CatchUp(client, meter=meter, on_loss=self.gap_repair.on_loss)
        self.catch_up.install()
        await self._check_session_owner(client, tg)
        await self._start(client, tg.start_timeout)
        heartbeat = CaptureHeartbeat(self.services)
        try:
            await heartbeat.start()
            self.gap_repair.start()
            await self.register_bot_commands(client, limit=tg.start_timeout)
            yield
        finally:
            if self.gap_repair is not None:
                await self.gap_repair.close()
            await heartbeat.stop()
            self._running = False
            self._sending = False
            self.services.unregister("bot_sender")
            self.status = "stopped"
            metrics = self.services.get("metrics")
            if metrics is not None:
                metrics.telegram_connected_source = lambda: None
            try:
                await asyncio.wait_for(self.dispatcher.drain(), timeout=tg.start_timeout)
            except Exception as exc:
                log.warning("bot commands still running at shutdown: %s", type(exc).__name__)
            if self.catch_up is not None:
                await self.catch_up.close()
            try:
                await asyncio.wait_for(client.stop(), timeout=tg.start_timeout)
            except Exception as exc:
                log.warning("Telegram client did not stop cleanly: %s", type(exc).__name__)

    # ------------------------------------------------------------------ pieces

    def session_name(self, tg: TelegramSettings) -> str:
        bot_id = bot_id_from_token(tg.bot_token.get()) if tg.bot_token else None
        return f"bot{bot_id}" if bot_id else "tgstats"

    def build_storage(self, tg: TelegramSettings) -> Storage:
        if tg.session_path is not None:
            return FileSessionStorage(tg.session_path, dc_address=tg.dc_address)
        factory = self.services.get("session_factory")
        if factory is None:
            raise TelegramStartError(
                "Telegram: no database to keep the MTProto session in; "
                "set TELEGRAM_SESSION_PATH or start the database first"
            )
        return DatabaseStorage(self.session_name(tg), factory, dc_address=tg.dc_address)

    def attach(self, client: Client) -> None:
        """Register every handler on ``client`` (the test harness calls this too)."""
        self.client = client
        if isinstance(client.storage, DatabaseStorage):
            # The saved update state never runs ahead of what was committed (update_state_gate.py).
            updates = HandledUpdates()
            client.dispatcher.updates_queue = updates
            client.storage.gate_update_state(UpdateStateGate(updates, self._events_committed))
        self.recorder.register(client)
        self.dispatcher.register(client)
        self.buttons.register(client)
        metrics = self.services.get("metrics")
        if metrics is not None:  # bot_telegram_connected, read at each scrape
            metrics.telegram_connected_source = lambda: int(client.is_connected)
        # Scheduled jobs of other plugins (the weekly digest) send through this service.
        self._sending = True
        self.services.register("bot_sender", self.outgoing)

    async def _events_committed(self) -> None:
        """Everything put so far is committed (at the pipeline's pace, no early batch)."""
        sink = self.recorder.sink
        await getattr(sink, "committed", sink.flush)()

    def _me_id(self) -> int | None:
        me = self.client.me if self.client is not None else None
        return me.id if me is not None else None

    def _me_username(self) -> str | None:
        me = self.client.me if self.client is not None else None
        return me.username if me is not None else None

    async def _check_session_owner(self, client: Client, tg: TelegramSettings) -> None:
        """A session file of another bot would log in as that bot: refuse it clearly."""
        if tg.session_path is None or not tg.session_path.expanduser().is_file():
            return  # database sessions are keyed by the bot id already
        bot_id = bot_id_from_token(tg.bot_token.get()) if tg.bot_token else None
        storage = client.storage
        await storage.open()
        try:
            stored = await storage.user_id()
        finally:
            await storage.close()
        if stored is not None and bot_id is not None and stored != bot_id:
            raise TelegramStartError(
                f"Telegram: {tg.session_path} holds the session of bot {stored}, not of the "
                f"bot {bot_id} in TELEGRAM_BOT_TOKEN; delete that file or set another "
                "TELEGRAM_SESSION_PATH"
            )

    async def _start(self, client: Client, limit: float) -> None:
        try:
            await asyncio.wait_for(client.start(), timeout=limit)
        except TimeoutError:
            await self._abandon(client)
            raise TelegramStartError(
                f"Telegram: no login within TELEGRAM_START_TIMEOUT={limit:g}s "
                "(is Telegram reachable from here?)"
            ) from None
        except RPCError as exc:
            await self._abandon(client)
            raise TelegramStartError(
                f"Telegram refused the login: {exc.ID or type(exc).__name__} "
                "(check TELEGRAM_API_ID, TELEGRAM_API_HASH and TELEGRAM_BOT_TOKEN)"
            ) from None
        except (OSError, ConnectionError) as exc:
            await self._abandon(client)
            raise TelegramStartError(
                f"Telegram: cannot connect ({type(exc).__name__}); check the network"
            ) from None
        except TelegramStartError:
            await self._abandon(client)
            raise
        except Exception as exc:
            await self._abandon(client)
            detail = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise TelegramStartError(
                f"Telegram: start failed ({type(exc).__name__}: {detail})"
            ) from None
        me = client.me
        self._running = True
        self.status = f"connected as @{me.username}" if me is not None else "connected"
        log.info("Telegram %s", self.status)

    @staticmethod
    async def _abandon(client: Client) -> None:
        """Close what a failed start left open, without waiting long."""
        try:
            if client.is_connected:
                await asyncio.wait_for(client.disconnect(), timeout=5)
            else:
                await asyncio.wait_for(client.storage.close(), timeout=5)
        except Exception as exc:
            log.debug("cleanup after a failed Telegram start: %s", type(exc).__name__)

    async def register_bot_commands(self, client: Client, *, limit: float = 30.0) -> None:
        """Show the command menu per scope: private chats, groups, and group admins."""
        commands = self.all_commands()

        def menu(items: list[BotCommand]) -> list[types.BotCommand]:
            return [types.BotCommand(c.name, c.description[:256]) for c in items]

        group = [c for c in commands if "groups" in c.scopes and not c.admin_only]
        # Telegram shows the most specific scope only, so admins get the group list too.
        admins = group + [
            c for c in commands if c.admin_only and ({"groups", "admins"} & set(c.scopes))
        ]
        private = [c for c in commands if "private" in c.scopes]
        scopes: list[tuple[Any, list[BotCommand]]] = [
            (types.BotCommandScopeAllPrivateChats(), private),
            (types.BotCommandScopeAllGroupChats(), group),
            (types.BotCommandScopeAllChatAdministrators(), admins),
        ]
        for scope, items in scopes:
            try:
                await asyncio.wait_for(
                    client.set_bot_commands(menu(items), scope=scope), timeout=limit
                )
            except Exception as exc:
                log.warning(
                    "could not register the bot command menu for %s: %s",
                    type(scope).__name__,
                    type(exc).__name__,
                )
