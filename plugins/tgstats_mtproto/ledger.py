"""The coverage ledger's heartbeat: when this run of the bot was in which chat.

``CaptureHeartbeat`` starts a run in ``capture_runs`` once the client is logged
in, and then every ``HEARTBEAT_SECONDS`` (and once more at stop) extends the
live stretch of every chat the bot is in (``capture_heartbeat``): one indexed
statement over the chats, whatever the traffic. A crashed run ends at its last
heartbeat, so the ledger overstates live coverage by at most that interval.
"""

from __future__ import annotations

import asyncio
import logging

from tgstats.plugin_api import ServiceRegistry
from tgstats.plugin_api.coverage import HEARTBEAT_SECONDS, capture_heartbeat, start_capture_run

__all__ = ["CaptureHeartbeat"]

log = logging.getLogger("tgstats.mtproto.ledger")


class CaptureHeartbeat:
    def __init__(self, services: ServiceRegistry, *, interval: float = HEARTBEAT_SECONDS) -> None:
        self.services = services
        self.interval = interval
        self.run_id: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        factory = self.services.get("session_factory")
        if factory is None:
            return
        try:
            async with factory() as session:
                self.run_id = await start_capture_run(session)
                await capture_heartbeat(session, self.run_id)
                await session.commit()
        except Exception as exc:  # the ledger is a report; never stop the bot for it
            log.warning("could not start the coverage ledger's run: %s", type(exc).__name__)
            return
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.beat()

    async def beat(self, *, stopped: bool = False) -> None:
        factory = self.services.get("session_factory")
        if factory is None or self.run_id is None:
            return
        try:
            async with factory() as session:
                await capture_heartbeat(session, self.run_id, stopped=stopped)
                await session.commit()
        except Exception as exc:  # the next beat tries again
            log.warning("coverage ledger heartbeat failed: %s", type(exc).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.beat(stopped=True)
