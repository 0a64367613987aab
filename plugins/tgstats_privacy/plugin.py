"""``PrivacyPlugin``: what tgstats keeps, for how long, and who can remove it.

- bot commands ``/forgetme``, ``/optout``, ``/optin``, ``/mydata``, ``/digest``
  (``commands.py``);
- API routes: retention preview, forget a member, opt-outs (``api.py``);
- periodic jobs on the job queue (``job_kinds``): ``privacy.retention``
  (``RETENTION_SCHEDULE``; also deletes the data of chats the bot left more than
  ``REMOVED_CHAT_GRACE_DAYS`` ago) and ``privacy.digest`` (``DIGEST_SCHEDULE``, on the
  ``telegram`` queue: taken where the Telegram client runs). The queue defers each
  tick once per deployment, so any number of replicas may run workers.

Opt-outs are honoured by the core writer (``tgstats.pipeline.optouts``), so
they hold with this plugin disabled too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar.config.app import AppConfig

from tgstats.plugin_api import (
    TELEGRAM_QUEUE,
    BotCommand,
    HealthCheck,
    JobKind,
    JobRun,
    Plugin,
    PluginContext,
    RetryLater,
)

from .api import PrivacyController
from .commands import PrivacyCommands
from .digest import DigestJob
from .retention import RetentionJob

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ["PrivacyPlugin"]

log = logging.getLogger("tgstats.privacy")


class PrivacyPlugin(Plugin):
    """Retention, forgetting, opt-outs, data export and the weekly digest."""

    version = "1.0.0"
    priority = 120  # after the Telegram plugin, whose bot_sender the digest uses

    def __init__(self, *, context: PluginContext) -> None:
        super().__init__(context=context)
        self.bot_commands = PrivacyCommands(bot_username=self._bot_username)
        self.retention: RetentionJob | None = None
        self.digest: DigestJob | None = None
        self.last_error: str | None = None

    def _bot_username(self) -> str | None:
        sender = self.services.get("bot_sender")
        return getattr(sender, "username", None) if sender is not None else None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(PrivacyController)
        return app_config

    def commands(self) -> Sequence[BotCommand]:
        return self.bot_commands.commands()

    def job_kinds(self) -> Sequence[JobKind]:
        privacy = self.settings.privacy
        return [
            JobKind(
                name="privacy.retention",
                run=self._retain,
                schedule=privacy.retention_schedule,
                queueing_lock="privacy.retention",
                describe="remove text and raw rows past each chat's retention",
            ),
            JobKind(
                name="privacy.digest",
                run=self._digest,
                schedule=privacy.digest_schedule,
                queueing_lock="privacy.digest",
                queue=TELEGRAM_QUEUE,
                max_attempts=1,  # the next tick looks again; a claim is never sent twice
                describe="post the weekly digests that are due",
            ),
        ]

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
        try:
            yield
        finally:
            self.retention = self.digest = None

    async def _retain(self, run: JobRun) -> None:
        if self.retention is None:
            raise RetryLater("the privacy plugin has not started here yet")
        await self._counted("retention", self.retention.run())

    async def _digest(self, run: JobRun) -> None:
        if self.digest is None:
            raise RetryLater("the privacy plugin has not started here yet")
        await self._counted("digest", self.digest.run())

    async def _counted(self, name: str, work: Any) -> None:
        """Run ``work``; a failure is kept for /health/ready and counted, then raised."""
        try:
            await work
            self.last_error = None
        except Exception as exc:
            self.last_error = f"{name} failed: {type(exc).__name__}"
            metrics = self.services.get("metrics")
            if metrics is not None:
                metrics.errors.add(1, {"error_type": "privacy_job"})
            raise
