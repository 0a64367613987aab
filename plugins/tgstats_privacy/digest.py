"""The weekly digest: a short summary a chat opted into, posted by the bot once a week.

A chat subscribes with ``/digest on [weekday] [hour]`` (local to the chat's
time zone; Monday 09:00 by default). ``DigestJob.run`` is called every minute
where the Telegram client runs. A chat is due on its weekday from its hour
until the local day ends; the digest covers the seven local days before that
day, with the week before them for growth.

Exactly once per period: a run first *claims* the period by inserting
``(chat_id, period_end)`` into ``digest_deliveries`` (the primary key lets one
insert win across replicas and runs), then sends, then records ``sent``. A
chat that was silent all week gets ``skipped`` and no message. If Telegram
refuses (the bot was removed) or sending fails in a way that may hide a
message Telegram did post (a timeout), the period is ``failed`` and not
retried; if the digest could not be prepared, or no client runs here, the
claim is dropped and the next run tries again. A crash between sending and
recording leaves the claim, so the digest is never sent twice (it may then be
missed that week).
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.plugin_api import (
    SUPPORTED_LOCALES,
    DeliveryError,
    ServiceRegistry,
    Translator,
    charts,
    check_timezone,
    stats,
    translator,
)
from tgstats.plugin_api.stats import MetricDelta, Summary, UserLeaderboard

__all__ = [
    "DIGEST_LOCK",
    "WEEKDAYS",
    "DigestJob",
    "DigestOutcome",
    "compose_digest",
    "parse_digest_args",
]

log = logging.getLogger("tgstats.privacy")

DIGEST_LOCK = 0x7467_7374_6469_6701
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TOP_POSTERS = 5
NAME_LIMIT = 28
CHART_DAYS = 28

#: Subscriptions due at ``:now`` and not handled yet this period, ``:limit`` at a time
#: after ``:after`` (keyset over chat ids): the weekday and hour are compared in SQL in
#: each chat's zone, and a period already claimed (``digest_deliveries``) is left out,
#: so a run reads only the chats it has to deliver to. A stored zone the server or
#: Python does not know counts as UTC (``:zones`` are the known ones).
_DUE = """
WITH subs AS (
    SELECT d.chat_id, d.weekday, d.hour,
           CASE WHEN coalesce(s.timezone, :default_tz) = ANY(:zones)
                THEN coalesce(s.timezone, :default_tz) ELSE 'UTC' END AS tz,
           coalesce(s.locale, 'en') AS locale
    FROM digest_subscriptions d JOIN chats c ON c.id = d.chat_id
    LEFT JOIN chat_settings s ON s.chat_id = d.chat_id
    WHERE c.bot_present AND d.chat_id > :after
), local AS (
    SELECT subs.*, CAST(:now AS timestamptz) AT TIME ZONE subs.tz AS wall FROM subs
)
SELECT chat_id, tz, locale, CAST(wall AS date) AS day FROM local
WHERE CAST(extract(isodow FROM wall) AS int) - 1 = weekday
  AND CAST(extract(hour FROM wall) AS int) >= hour
  AND NOT EXISTS (SELECT 1 FROM digest_deliveries dd
                  WHERE dd.chat_id = local.chat_id AND dd.period_end = CAST(wall AS date))
ORDER BY chat_id LIMIT :limit
"""
_ZONES_IN_USE = "SELECT DISTINCT timezone FROM chat_settings WHERE timezone IS NOT NULL"
#: Due chats read per statement, and digests sent per run at most (the rest stay due
#: and are sent by the next runs: a chat is due until its local day ends).
DUE_BATCH = 500
MAX_PER_RUN = 2000

_CLAIM = """
INSERT INTO digest_deliveries (chat_id, period_end, status) VALUES (:chat, :day, 'sending')
ON CONFLICT (chat_id, period_end) DO NOTHING RETURNING chat_id
"""


class DigestOutcome(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period_end: date
    status: str  # sent | skipped | failed | retry
    message_id: int | None = None


def _weekday_names() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(full, abbreviated) weekday names in every language spoken here, lower case, so
    ``/digest on пятница 18`` and ``/digest on пт 18`` work too."""
    return [
        (
            tuple(name.lower() for name in translator(code).weekdays("wide")),
            tuple(name.lower() for name in translator(code).weekdays("abbreviated")),
        )
        for code in SUPPORTED_LOCALES
    ]


def parse_digest_args(args: str) -> tuple[int, int]:
    """``"[weekday] [hour]"`` after ``on`` → (weekday 0=Monday, hour); ValueError when wrong."""
    weekday, hour = 0, 9
    for part in args.lower().split():
        names = [
            i
            for full, short in _weekday_names()
            for i, name in enumerate(full)
            if (len(part) >= 3 and name.startswith(part)) or part == short[i]
        ]
        if names:
            weekday = names[0]
            continue
        clock = part.removesuffix(":00")
        if clock.isdigit() and 0 <= int(clock) <= 23:
            hour = int(clock)
            continue
        raise ValueError(f"not a weekday or an hour (0-23): {part[:20]}", part[:20])
    return weekday, hour


def _change(metric: MetricDelta, t: Translator) -> str:
    if metric.change_pct is None:
        return t.gettext("new") if metric.value else "±0"
    sign = "+" if metric.change_pct >= 0 else "-"
    return sign + t.percent(abs(metric.change_pct), 0)


def compose_digest(
    *,
    title: str,
    summary: Summary,
    top: UserLeaderboard,
    escape: Any,
    timezone: str,
    t: Translator | None = None,
) -> str:
    """The digest caption (Telegram HTML, within the 1024 characters of a photo caption),
    in the chat's language (``t``; English when None)."""
    t = t or translator(None)
    period = summary.period
    messages, users = summary.messages, summary.active_users
    joined, left = int(summary.new_members.value), int(summary.left_members.value)
    lines = [
        "<b>" + t.gettext("Weekly digest · {chat}", chat=escape(title, 48)) + "</b>",
        t.gettext(
            "{start} to {end} ({zone})",
            start=t.day_month(period.start),
            end=t.day_month(period.end),
            zone=escape(timezone, 40),
        ),
        "",
        t.gettext(
            "Messages: <b>{value}</b> ({change} vs the week before)",
            value=t.number(int(messages.value)),
            change=_change(messages, t),
        ),
        t.gettext(
            "Active members: <b>{value}</b> ({change})",
            value=t.number(int(users.value)),
            change=_change(users, t),
        ),
        t.gettext(
            "Joined: <b>{joined}</b> · Left: <b>{left}</b>",
            joined=t.number(joined),
            left=t.number(left),
        ),
    ]
    if top.rows:
        lines += ["", "<b>" + t.gettext("Top posters") + "</b>"]
        for row in top.rows[:TOP_POSTERS]:
            lines.append(
                f"{row.rank}. {escape(row.display_name, NAME_LIMIT)} — {t.number(row.messages)}"
            )
    lines += ["", t.gettext("Chart: messages per day, last 4 weeks. /digest off stops these.")]
    return "\n".join(lines)


@dataclass
class DigestJob:
    session_factory: async_sessionmaker[AsyncSession]
    services: ServiceRegistry
    default_timezone: str = "UTC"
    meter: Any = None
    #: ``bot_pass_duration_seconds`` / ``bot_pass_backlog`` (the ``metrics`` service).
    metrics: Any = None
    due_batch: int = DUE_BATCH
    max_per_run: int = MAX_PER_RUN
    _sent: Any = field(default=None)

    def __post_init__(self) -> None:
        if self.meter is not None:
            self._sent = self.meter.create_counter(
                "bot_digests", unit="1", description="Weekly digests by status"
            )

    def _escape(self) -> Any:
        sanitizer = self.services.get("sanitizer")

        def escape(value: str | None, limit: int | None = None) -> str:
            if sanitizer is not None:
                return str(sanitizer.html(value, max_length=limit))
            import html

            return html.escape((value or "")[: limit or None], quote=False)

        return escape

    async def run(self, *, now: datetime | None = None) -> list[DigestOutcome]:
        """Send the digests due at ``now``, at most ``max_per_run`` (the rest stay due for
        the next run); one replica at a time (advisory lock)."""
        sender = self.services.get("bot_sender")
        if sender is None or not getattr(sender, "available", True):
            return []  # only the process that runs the Telegram client posts
        moment = now or datetime.now(UTC)
        outcomes: list[DigestOutcome] = []
        # A connection of its own: a session-level advisory lock lives on one connection,
        # and committing right away keeps no transaction (and no table lock) open while
        # charts are drawn and sent.
        engine = self.session_factory.kw["bind"]
        async with engine.connect() as conn:
            locked = (
                await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": DIGEST_LOCK})
            ).scalar()
            await conn.commit()
            if not locked:
                return []
            started = time.perf_counter()
            try:
                await self._run_locked(conn, sender, moment, outcomes)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": DIGEST_LOCK})
                await conn.commit()
                if self.metrics is not None:
                    self.metrics.pass_finished("digest", time.perf_counter() - started)
        return outcomes

    async def _zones(self, conn: Any) -> list[str]:
        """The zones in use that both Python and the server know."""
        names = {self.default_timezone, *(await conn.execute(text(_ZONES_IN_USE))).scalars()}
        known = []
        for name in sorted(names):
            try:
                zoneinfo.ZoneInfo(name)
                check_timezone(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
            known.append(name)
        return known

    async def _run_locked(
        self, conn: Any, sender: Any, moment: datetime, outcomes: list[DigestOutcome]
    ) -> None:
        params = {
            "now": moment,
            "default_tz": self.default_timezone,
            "zones": await self._zones(conn),
            "limit": self.due_batch,
        }
        after = -(2**63)
        delivered = 0
        while True:
            due = list(await conn.execute(text(_DUE), {**params, "after": after}))
            await conn.commit()
            if not due:
                break
            for chat_id, _tz, locale, day in due:
                if delivered >= self.max_per_run:
                    break
                outcome = await self._deliver(sender, chat_id, day, translator(locale))
                delivered += 1
                if outcome is not None:
                    outcomes.append(outcome)
                    if self._sent is not None:
                        self._sent.add(1, {"status": outcome.status})
            after = due[-1][0]
            if delivered >= self.max_per_run or len(due) < self.due_batch:
                break
        if self.metrics is not None:
            left = 0
            if delivered >= self.max_per_run:  # cut short: count what stays due
                counted = await conn.execute(
                    text(f"SELECT count(*) FROM ({_DUE.replace('LIMIT :limit', '')}) due"),
                    {**params, "after": -(2**63)},
                )
                left = int(counted.scalar_one())
                await conn.commit()
            self.metrics.pass_backlog("digest", left)

    async def _set(
        self, chat_id: int, day: date, status: str, message_id: int | None = None
    ) -> None:
        async with self.session_factory() as session:
            if status == "retry":
                await session.execute(
                    text(
                        "DELETE FROM digest_deliveries WHERE chat_id = :chat AND period_end = :day"
                    ),
                    {"chat": chat_id, "day": day},
                )
            else:
                await session.execute(
                    text(
                        "UPDATE digest_deliveries SET status = :status, message_id = :msg"
                        " WHERE chat_id = :chat AND period_end = :day"
                    ),
                    {"chat": chat_id, "day": day, "status": status, "msg": message_id},
                )
            await session.commit()

    async def _prepare(self, chat_id: int, day: date, t: Translator) -> tuple[str, bytes] | None:
        """The caption and chart of the week before ``day``; None when the chat was silent."""
        period = stats.Period(start=day - timedelta(days=7), end=day - timedelta(days=1))
        factory = self.services.get("read_session_factory") or self.session_factory
        async with factory() as session:
            scope = await stats.load_chat_scope(
                session, chat_id, default_timezone=self.default_timezone
            )
            summary = await stats.summary(session, scope, period)
            if not summary.messages.value:
                return None
            top = await stats.users(session, scope, period, limit=TOP_POSTERS)
            series = await stats.timeseries(
                session, scope, stats.Period(start=day - timedelta(days=CHART_DAYS), end=period.end)
            )
        # Drawn after the session is closed: no connection is held while matplotlib works.
        title = scope.title or str(chat_id)
        caption = compose_digest(
            title=title,
            summary=summary,
            top=top,
            escape=self._escape(),
            timezone=scope.timezone,
            t=t,
        )
        png = await charts.render(
            charts.history_png,
            series.points,
            title=title + " · " + t.ngettext("last {n} day", "last {n} days", CHART_DAYS),
            t=t,
        )
        return caption, png

    async def _deliver(
        self, sender: Any, chat_id: int, day: date, t: Translator | None = None
    ) -> DigestOutcome | None:
        async with self.session_factory() as session:
            claimed = (await session.execute(text(_CLAIM), {"chat": chat_id, "day": day})).first()
            await session.commit()
        if claimed is None:
            return None  # this period was handled already (here or by another replica)
        try:
            prepared = await self._prepare(chat_id, day, t or translator(None))
        except Exception:
            await self._set(chat_id, day, "retry")
            log.exception("digest: chat %s could not be prepared; will retry", chat_id)
            return DigestOutcome(chat_id=chat_id, period_end=day, status="retry")
        if prepared is None:
            await self._set(chat_id, day, "skipped")
            log.info("digest: chat %s was silent the week before %s; skipped", chat_id, day)
            return DigestOutcome(chat_id=chat_id, period_end=day, status="skipped")
        caption, png = prepared
        try:
            message_id = await sender.send(chat_id, caption, photo=png)
        except DeliveryError as exc:
            await self._set(chat_id, day, "failed")
            log.warning("digest: chat %s: %s", chat_id, exc)
            return DigestOutcome(chat_id=chat_id, period_end=day, status="failed")
        except RuntimeError:  # no Telegram client here: nothing left the process
            await self._set(chat_id, day, "retry")
            log.warning("digest: chat %s: no Telegram client; will retry", chat_id)
            return DigestOutcome(chat_id=chat_id, period_end=day, status="retry")
        except Exception:
            # A timeout may hide a message Telegram did post: never risk a second one.
            await self._set(chat_id, day, "failed")
            log.exception("digest: chat %s: sending failed; not retried this week", chat_id)
            return DigestOutcome(chat_id=chat_id, period_end=day, status="failed")
        await self._set(chat_id, day, "sent", message_id)
        log.info("digest: sent to chat %s for the week before %s", chat_id, day)
        return DigestOutcome(chat_id=chat_id, period_end=day, status="sent", message_id=message_id)
