"""``PrivacyPlugin``: what tgstats keeps, for how long, and who can remove it.

- bot commands ``/forgetme``, ``/optout``, ``/optin``, ``/mydata``, ``/digest``
  (``commands.py``);
- API routes: retention preview, forget a member, opt-outs (``api.py``);
- background jobs in the lifespan: retention (every ``RETENTION_INTERVAL``
  seconds; also deletes the data of chats the bot left more than
  ``REMOVED_CHAT_GRACE_DAYS`` ago) and the weekly digest (checked every minute
  where the Telegram client runs). Both take a PostgreSQL advisory lock, so
  any number of replicas may run them.

Opt-outs are honoured by the core writer (``tgstats.pipeline.optouts``), so
they hold with this plugin disabled too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar.config.app import AppConfig

from tgstats.plugin_api import BotCommand, HealthCheck, Plugin, PluginContext

from .api import PrivacyController
from .commands import PrivacyCommands
from .digest import DigestJob
from .retention import RetentionJob

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ["PrivacyPlugin"]

log = logging.getLogger("tgstats.privacy")

#: Seconds after startup before the first retention run (startup stays quick).
FIRST_RUN_DELAY = 30.0
DIGEST_TICK = 60.0


class PrivacyPlugin(Plugin):
    """Retention, forgetting, opt-outs, data export and the weekly digest."""

    version = "1.0.0"
    priority = 120  # after the Telegram plugin, whose bot_sender the digest uses

    def __init__(self, *, context: PluginContext) -> None:
        super().__init__(context=context)
        self.bot_commands = PrivacyCommands(bot_username=self._bot_username)
        self.retention: RetentionJob | None = None
        self.digest: DigestJob | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.last_error: str | None = None

    def _bot_username(self) -> str | None:
        sender = self.services.get("bot_sender")
        return getattr(sender, "username", None) if sender is not None else None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(PrivacyController)
        return app_config

    def commands(self) -> Sequence[BotCommand]:
        return self.bot_commands.commands()

    async def health(self) -> HealthCheck | None:
        if self.last_error is None:
            return None
        return HealthCheck(name="privacy", ok=False, degraded=True, detail=self.last_error)

    @asynccontextmanager
    async def lifespan(self, *, app: Litestar) -> AsyncIterator[None]:
        database = self.services.get("database")
        factory = self.services.get("session_factory")
        if database is None or factory is None:
            log.warning("privacy: no database; retention and digests do not run")
            yield
            return
        meter = self.services.get("meter")
        metrics = self.services.get("metrics")
        privacy = self.settings.privacy
        self.retention = RetentionJob(
            engine=database.engine,
            grace_days=privacy.removed_chat_grace_days,
            meter=meter,
            metrics=metrics,
        )
        self.digest = DigestJob(
            session_factory=factory,
            services=self.services,
            default_timezone=privacy.default_timezone,
            meter=meter,
            metrics=metrics,
        )
        self._tasks = [
            asyncio.create_task(
                self._every(privacy.retention_interval, FIRST_RUN_DELAY, self._retain),
                name="privacy-retention",
            ),
            asyncio.create_task(
                self._every(DIGEST_TICK, DIGEST_TICK, self._digest), name="privacy-digest"
            ),
        ]
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._tasks = []

    async def _retain(self) -> None:
        if self.retention is not None:
            await self.retention.run()

    async def _digest(self) -> None:
        if self.digest is not None:
            await self.digest.run()

    async def _every(self, interval: float, first: float, job: Any) -> None:
        """Run ``job`` every ``interval`` seconds; a failure is logged, counted, retried."""
        await asyncio.sleep(first)
        while True:
            try:
                await job()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"{job.__name__.strip('_')} failed: {type(exc).__name__}"
                log.exception("privacy: %s", self.last_error)
                metrics = self.services.get("metrics")
                if metrics is not None:
                    metrics.errors.add(1, {"error_type": "privacy_job"})
            await asyncio.sleep(interval)
