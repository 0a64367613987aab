"""The bot on a real wire: ``tgstats bot`` against the local MTProto test data centre.

Each scenario starts ``tgstats bot`` (the Helm chart's bot process) with its
session in a fresh PostgreSQL database and ``TELEGRAM_DC_ADDRESS`` pointing at a
``TestDataCentre`` (``tests/wire/server.py``) in this process. What the data
centre posts is counted independently (``tests/wire/expected.py``) and compared
with the rows and rollups in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.resilience.processes import (
    REPO_ROOT,
    PrivatePostgres,
    ServiceProcess,
    free_port,
    service_env,
)
from tests.resilience.simulator import Counts, diff_counts, stored_counts
from tests.wire.expected import Tally, held_messages
from tests.wire.key_plugin import write_key_distribution
from tests.wire.keys import ENV as KEY_ENV
from tests.wire.keys import ServerKey
from tests.wire.server import TestDataCentre, bot_api_chat_id
from tgstats.coverage import ChatCoverage, chat_coverage
from tgstats.db.engine import open_database
from tgstats.settings import DatabaseSettings

BOT_TOKEN = "4242001:wire-test-token"
METRICS_TOKEN = "wire-metrics-" + secrets.token_hex(6)


@pytest.fixture(scope="session")
def dc_key() -> ServerKey:
    return ServerKey.generate()


@pytest.fixture(scope="session")
def key_path(work_dir: Path) -> Path:
    return write_key_distribution(work_dir / "dc-key-dist")


class Bot:
    """One scenario's ``tgstats bot``: its database, its env, its (restartable) process."""

    def __init__(self, pg: PrivatePostgres, database: str, env: dict[str, str], log: Path) -> None:
        self.pg, self.database, self.env, self.log = pg, database, env, log
        self.service = ServiceProcess(env, log, command="bot")

    async def start(self, *, ready: bool = True, limit: float = 60) -> None:
        self.service = ServiceProcess(self.env, self.log, command="bot")
        if ready:
            await self.service.start(limit=limit)
        else:
            self.service.spawn()

    async def counts(self) -> dict[int, Counts]:
        conn = await self.pg.connect(self.database)
        try:
            # One snapshot: the bot may be committing between stored_counts' statements.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await stored_counts(conn)
        finally:
            await conn.close()

    async def deleted(self) -> dict[int, set[int]]:
        conn = await self.pg.connect(self.database)
        try:
            rows = await conn.fetch("SELECT chat_id, msg_id FROM messages WHERE is_deleted")
        finally:
            await conn.close()
        found: dict[int, set[int]] = {}
        for row in rows:
            found.setdefault(row["chat_id"], set()).add(row["msg_id"])
        return found

    async def until(self, expected: dict[int, Counts], limit: float = 40) -> list[str]:
        """Wait until PostgreSQL holds exactly ``expected``; the differences left if not."""
        deadline = time.monotonic() + limit
        while True:
            problems = diff_counts(
                {k: v for k, v in expected.items() if v != Counts()}, await self.counts()
            )
            if not problems or time.monotonic() > deadline:
                return problems
            await asyncio.sleep(0.3)

    async def gaps(self, limit: float = 20) -> list[dict[str, Any]]:
        """The recorded gaps, oldest first (the columns the scenarios check), once none
        is still being repaired (or after ``limit`` seconds)."""
        deadline = time.monotonic() + limit
        while True:
            conn = await self.pg.connect(self.database)
            try:
                rows = await conn.fetch(
                    "SELECT chat_id, from_msg_id, to_msg_id, state, recovered, unavailable"
                    " FROM coverage_gaps ORDER BY id"
                )
            finally:
                await conn.close()
            found = [dict(row) for row in rows]
            if time.monotonic() > deadline or all(
                g["state"] not in ("open", "repairing") for g in found
            ):
                return found
            await asyncio.sleep(0.3)

    async def coverage(self, chat_ids: Iterable[int]) -> dict[int, ChatCoverage]:
        """Each chat's coverage ledger, read from the bot's database."""
        database = open_database(
            self.pg.url(self.database), DatabaseSettings(pool_size=1, max_overflow=0)
        )
        try:
            async with database.session_factory() as session:
                return {c: await chat_coverage(session, c) for c in chat_ids}
        finally:
            await database.dispose()

    async def cli(self, *args: str, limit: float = 60) -> tuple[int, str]:
        """``tgstats ARGS`` with the bot's environment: exit code and output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from tgstats.cli import main; sys.exit(main())",
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=limit)
        return int(process.returncode or 0), out.decode(errors="replace")

    async def saved_states(self) -> dict[int, int]:
        """The update states the bot saved: state id -> pts."""
        conn = await self.pg.connect(self.database)
        try:
            rows = await conn.fetch("SELECT id, pts FROM mtproto_update_state")
        finally:
            await conn.close()
        return {row["id"]: row["pts"] for row in rows}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def bot(private_postgres: PrivatePostgres, key_path: Path, dc_key: ServerKey) -> Callable[..., Any]:
    """``async with bot(dc, **env) as b``: ``tgstats bot`` started against ``dc``."""

    @asynccontextmanager
    async def start(
        dc: TestDataCentre | None, *, ready: bool = True, dc_port: int | None = None, **env: str
    ) -> AsyncIterator[Bot]:
        database = await private_postgres.create_database()
        port = dc_port if dc_port is not None else (dc.port if dc is not None else free_port())
        full_env = service_env(
            database_url=private_postgres.url(database),
            redis_url=None,
            sim_path=key_path,
            admin_token="wire-admin-" + secrets.token_hex(6),
            TELEGRAM_API_ID="1",
            TELEGRAM_API_HASH="0" * 32,
            TELEGRAM_BOT_TOKEN=BOT_TOKEN,
            TELEGRAM_DC_ADDRESS=f"127.0.0.1:{port}",
            METRICS_TOKEN=METRICS_TOKEN,
            **{KEY_ENV: dc_key.public_text()},
            **env,
        )
        logs = REPO_ROOT / "test-artifacts" / "resilience-logs"
        logs.mkdir(parents=True, exist_ok=True)
        deployment = Bot(private_postgres, database, full_env, logs / f"wire-{database}.log")
        await deployment.start(ready=ready)
        try:
            yield deployment
        finally:
            await deployment.service.stop()

    return start


@asynccontextmanager
async def data_centre(dc_key: ServerKey, **kwargs: Any) -> AsyncIterator[TestDataCentre]:
    async with TestDataCentre(bot_token=BOT_TOKEN, key=dc_key, **kwargs) as dc:
        yield dc


def chats(dc: TestDataCentre) -> tuple[Any, Any, Any, Any, list[Any]]:
    """Two basic groups, two supergroups, six people."""
    people = [dc.user(100 + i, f"Person{i}") for i in range(6)]
    return (
        dc.group(5001, "Basic A"),
        dc.group(5002, "Basic B"),
        dc.supergroup(7001, "Super A"),
        dc.supergroup(7002, "Super B"),
        people,
    )


def one_line_failure(log: str) -> list[str]:
    """The lines that say why tgstats stopped (granian prefixes them with [ERROR])."""
    return [line for line in log.splitlines() if line.startswith("[ERROR] tgstats could not start")]


# ---------------------------------------------------------------------------- login


async def test_login_and_live_updates(
    bot: Callable[..., Any], dc_key: ServerKey, report: Callable[..., None]
) -> None:
    async with data_centre(dc_key) as dc:
        basic_a, basic_b, super_a, super_b, people = chats(dc)
        tally = Tally(dc)
        async with bot(dc) as b:
            ids: dict[int, list[int]] = {}
            for round_ in range(5):
                for chat in (basic_a, basic_b, super_a, super_b):
                    for person in people:
                        msg = tally.post(chat, person, f"hello {round_} from {person.first_name}")
                        ids.setdefault(chat.id, []).append(msg)
                await asyncio.sleep(0.05)
            for chat in (basic_a, super_a, super_b):
                for msg_id in ids[chat.id][:6]:
                    tally.edit(chat, msg_id, f"edited {msg_id}")
                for person in people[:4]:
                    tally.react(chat, ids[chat.id][0], person, "👍")
            tally.delete(super_a, ids[super_a.id][-3:])
            newcomer = dc.user(200, "Newcomer")
            for chat in (basic_b, super_b):
                tally.join(chat, newcomer)
            tally.leave(super_b, people[5])
            problems = await b.until(tally.counts)
            deleted = await b.deleted()
        logins = dc.logins
    want_deleted = {bot_api_chat_id(super_a): set(ids[super_a.id][-3:])}
    passed = not problems and deleted == want_deleted and logins == 1
    total = sum(c.messages for c in tally.counts.values())
    report(
        "wire login + live updates",
        f"bot logged in over MTProto ({logins} login), {total} messages, edits, "
        f"reactions, joins/leaves and 3 deletions in 2 basic groups + 2 supergroups "
        f"-> {'counts exact' if not problems else problems[:3]}",
        passed,
    )
    assert not problems, problems
    assert deleted == want_deleted
    assert logins == 1


async def test_wrong_token_is_one_line(
    bot: Callable[..., Any], dc_key: ServerKey, report: Callable[..., None]
) -> None:
    async with data_centre(dc_key) as dc:
        dc.bot_token = "4242001:another-token"  # Telegram knows this bot by another token
        async with bot(dc, ready=False) as b:
            code = await b.service.wait(60)
            log = b.log_text()
    lines = one_line_failure(log)
    passed = code != 0 and len(lines) == 1 and "ACCESS_TOKEN_INVALID" in lines[0]
    passed = passed and "Traceback" not in log and BOT_TOKEN.split(":")[1] not in log
    report(
        "wire wrong token",
        f"exit {code}; {lines[0] if lines else 'no failure line'!r}",
        passed,
    )
    assert passed, log[-3000:]


@pytest.mark.parametrize("kind", ["refused", "silent"])
async def test_unreachable_is_one_line_within_timeout(
    bot: Callable[..., Any], dc_key: ServerKey, report: Callable[..., None], kind: str
) -> None:
    """Nothing listens (refused), or a server accepts and never answers (a black hole)."""
    timeout = 4
    async with data_centre(dc_key) as dc:
        if kind == "silent":
            dc.silence(3600)
        port = dc.port if kind == "silent" else free_port()
        async with bot(None, ready=False, dc_port=port, TELEGRAM_START_TIMEOUT=str(timeout)) as b:
            code = await b.service.wait(120)
            exited = time.monotonic()
            log = b.log_text()
        first_contact = dc.connection_times[0] if dc.connection_times else None
    lines = one_line_failure(log)
    expected = "no login within TELEGRAM_START_TIMEOUT=4s" if kind == "silent" else "cannot connect"
    login_s = exited - first_contact if first_contact is not None else None
    passed = code != 0 and len(lines) == 1 and expected in lines[0]
    passed = passed and "Traceback" not in log and "ExceptionGroup" not in log
    if kind == "silent":
        # the process exits after the line: granian stops its worker and itself (~2-3 s here)
        passed = passed and login_s is not None and login_s <= timeout + 5
    report(
        f"wire unreachable Telegram ({kind})",
        f"exit {code}"
        + (f", {login_s:.1f}s after its first packet" if login_s is not None else "")
        + f" (TELEGRAM_START_TIMEOUT={timeout}); {len(log.splitlines())} log lines in all; "
        f"{lines[0] if lines else 'no failure line'!r}",
        passed,
    )
    assert passed, log[-3000:]


# ---------------------------------------------------------------------------- connection faults


async def test_dropped_connections_and_silence(
    bot: Callable[..., Any], dc_key: ServerKey, report: Callable[..., None]
) -> None:
    async with data_centre(dc_key) as dc:
        basic_a, _, super_a, super_b, people = chats(dc)
        tally = Tally(dc)
        cuts = 0
        async with bot(dc) as b:
            for phase in range(4):
                for i in range(30):
                    for chat in (basic_a, super_a, super_b):
                        tally.post(chat, people[i % 6], f"phase {phase} message {i}")
                    if i == 15 and phase < 3:
                        cuts += dc.cut_connections()  # mid-stream
                    await asyncio.sleep(0.01)
                if phase == 2:
                    dc.silence(3)  # reads nothing, answers nothing, pushes nothing
                    for i in range(20):
                        tally.post(super_a, people[i % 6], f"during silence {i}")
                    await asyncio.sleep(3.5)
            problems = await b.until(tally.counts, limit=60)
            log = b.log_text()
    reconnects = log.count("reconnected to Telegram")
    passed = not problems and cuts >= 3
    total = sum(c.messages for c in tally.counts.values())
    report(
        "wire dropped connections + silence",
        f"{total} messages in 3 chats, {cuts} connections cut mid-stream, 3 s of silence "
        f"-> {reconnects} catch-ups after reconnects, "
        f"{'counts exact' if not problems else problems[:3]}",
        passed,
    )
    assert not problems, problems


async def test_gap_while_connected_is_filled(
    bot: Callable[..., Any], dc_key: ServerKey, report: Callable[..., None]
) -> None:
    async with data_centre(dc_key) as dc:
        basic_a, _, super_a, _, people = chats(dc)
        tally = Tally(dc)
        async with bot(dc) as b:
            for chat in (basic_a, super_a):
                tally.post(chat, people[0], "before")
            assert not await b.until(tally.counts)
            withheld = 0
            for chat in (basic_a, super_a):
                for i in range(4):
                    tally.post(chat, people[1], f"never pushed {i}", live=False)
                    withheld += 1
                tally.post(chat, people[2], "after the gap")  # its pts shows the hole
            problems = await b.until(tally.counts)
            log = b.log_text()
    gaps = log.count("update gap in sequence")
    passed = not problems and gaps >= 2
    report(
        "wire pts gap while connected",
        f"{withheld} updates never pushed in a basic group and a supergroup -> "
        f"{gaps} gaps noticed and filled, {'counts exact' if not problems else problems[:3]}",
        passed,
    )
    assert passed, problems or log[-2000:]


# ---------------------------------------------------------------------------- downtime


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
async def test_catch_up_after_downtime(
    bot: Callable[..., Any], dc_key: ServerKey, report: Callable[..., None], signum: int
) -> None:
    async with data_centre(dc_key) as dc:
        basic_a, basic_b, super_a, super_b, people = chats(dc)
        live = Tally(dc)
        async with bot(dc) as b:
            posting = True

            async def keep_posting() -> int:
                sent = 0
                while posting:
                    for chat in (basic_a, basic_b, super_a, super_b):
                        msg = live.post(chat, people[sent % 6], f"stream {sent}")
                        if sent % 5 == 0:
                            live.edit(chat, msg, f"stream {sent} (edited)")
                    sent += 1
                    await asyncio.sleep(0.1)  # ~50 updates a second in all
                return sent

            poster = asyncio.create_task(keep_posting())
            await asyncio.sleep(7)  # the session storage saves update states every 5 s
            b.service.signal(signum)  # the data centre goes on posting meanwhile
            await b.service.wait(60)
            await asyncio.sleep(3)
            posting = False
            await poster
            logins_before = dc.logins
            saved = await b.saved_states()
            await b.start()  # from the session saved in the database
            problems = await b.until(live.only("messages", "text_length", "edits"), limit=60)
            logins = dc.logins
    total = sum(c.messages for c in live.counts.values())
    passed = not problems and logins == logins_before == 1
    name = signal.Signals(signum).name
    report(
        f"wire catch-up after {name}",
        f"{name} while the data centre kept posting; {total} messages (+ edits) in 2 basic "
        f"groups and 2 supergroups, restart from the saved session ({logins} login in all, "
        f"saved pts {sorted(saved.values())}, data centre at {dc.common.pts}) -> "
        f"{'every message and edit stored once' if not problems else problems[:3]}",
        passed,
    )
    assert not problems, problems
    assert logins == 1


async def test_too_long_loss_is_repaired(
    bot: Callable[..., Any], dc_key: ServerKey, report: Callable[..., None]
) -> None:
    async with data_centre(dc_key, history_limit=40) as dc:
        _, _, super_a, super_b, people = chats(dc)
        async with bot(dc) as b:
            for i in range(10):
                dc.post(super_a, people[i % 6], f"seen {i}")
            dc.post(super_b, people[0], "seen")  # both supergroups' pts are saved
            assert not await b.until(held_messages(dc))
            b.service.signal(signal.SIGTERM)
            await b.service.wait(60)
            down = [dc.post(super_a, people[i % 6], f"while down {i}") for i in range(100)]
            dc.delete(super_a, down[40:45])  # gone before the bot could see them
            for i in range(15):  # super_b's sequence still has all of these
                dc.post(super_b, people[i % 6], f"kept {i}")
            await b.start()
            for i in range(5):
                dc.post(super_a, people[i % 6], f"after restart {i}")
            problems = await b.until(held_messages(dc))
            gaps = await b.gaps()
            async with httpx.AsyncClient(base_url=b.service.base_url) as client:
                metrics = (
                    await client.get(
                        "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
                    )
                ).text
            log = b.log_text()
    lost = _metric(metrics, r"tgstats_telegram_updates_lost_total\{[^}]*channel[^}]*\}")
    recovered = _metric(metrics, r"tgstats_gap_repair_messages_total\{[^}]*recovered[^}]*\}")
    unavailable = _metric(metrics, r"tgstats_gap_repair_messages_total\{[^}]*unavailable[^}]*\}")
    warned = re.search(r"Telegram no longer has (\d+) update\(s\) of chat", log)
    want_gap = {
        "chat_id": bot_api_chat_id(super_a),
        "from_msg_id": 11,
        "to_msg_id": 110,
        "state": "repaired",
        "recovered": 95,
        "unavailable": 5,
    }
    passed = (
        not problems
        and lost == 105  # 100 messages and a deletion of 5, in pts
        and warned is not None
        and gaps == [want_gap]
        and (recovered, unavailable) == (95, 5)
    )
    report(
        "wire too long + gap repair",
        f"100 supergroup messages posted while down (5 of them deleted), the data centre "
        f"keeps 40 updates -> {lost} pts lost to catch-up (metric, one warning), the gap "
        f"recorded and repaired by id: {recovered} recovered, {unavailable} unavailable; "
        f"a second supergroup's 15 caught up; "
        f"{'counts equal the data centre' if not problems else problems[:3]}",
        passed,
    )
    assert passed, (problems, lost, gaps, recovered, unavailable, log[-2000:])


async def test_repair_on_demand(
    bot: Callable[..., Any], dc_key: ServerKey, report: Callable[..., None]
) -> None:
    """History from before the bot joined is in no update sequence: ``tgstats chats
    repair`` fetches it by id, and a second repair counts nothing twice."""
    async with data_centre(dc_key) as dc:
        _, _, super_a, _, people = chats(dc)
        before = [dc.backfill(super_a, people[i % 6], f"old {i}") for i in range(30)]
        dc.delete(super_a, before[5:8])
        async with bot(dc) as b:
            for i in range(3):
                dc.post(super_a, people[i], f"live {i}")
            live_only = await b.until(held_messages(dc), limit=5)  # the old ones are missing
            chat_id = bot_api_chat_id(super_a)
            first = await b.cli("chats", "repair", str(chat_id), "--from-id", "1")
            problems = await b.until(held_messages(dc))
            again = await b.cli("chats", "repair", str(chat_id), "--from-id", "1")
            problems += await b.until(held_messages(dc), limit=3)
            gaps = await b.gaps()
    asked = [(g["recovered"], g["unavailable"], g["state"]) for g in gaps]
    passed = (
        bool(live_only)
        and not problems
        and first[0] == 0
        and again[0] == 0
        and asked == [(27, 3, "repaired"), (0, 0, "repaired")]
        and "27 recovered, 3 unavailable" in first[1]
    )
    report(
        "wire repair on demand",
        f"30 messages from before the bot joined (3 deleted), 3 live -> `tgstats chats repair` "
        f"fetched {asked[0][:2] if asked else None} (recovered, unavailable), a second repair "
        f"fetched nothing again; {'counts equal the data centre' if not problems else problems}",
        passed,
    )
    assert passed, (live_only, problems, first, again, asked)


async def test_coverage_ledger_after_downtime(
    bot: Callable[..., Any], dc_key: ServerKey, report: Callable[..., None]
) -> None:
    """The ledger of three chats after a downtime: caught up, repaired, and missing."""
    async with data_centre(dc_key, history_limit=40) as dc:
        basic_a, _, super_a, super_b, people = chats(dc)
        async with bot(dc) as b:
            for chat in (basic_a, super_a, super_b):
                dc.post(chat, people[0], "seen")
            assert not await b.until(held_messages(dc))
            b.service.signal(signal.SIGTERM)
            await b.service.wait(60)
            for i in range(50):  # past the 40 updates kept: lost for good in a basic group
                dc.post(basic_a, people[i % 6], f"basic while down {i}")
                dc.post(super_a, people[i % 6], f"super while down {i}")  # repaired by id
            for i in range(5):
                dc.post(super_b, people[i % 6], f"kept {i}")  # within what is kept
            await b.start()
            for chat in (basic_a, super_a, super_b):
                dc.post(chat, people[1], "after")
            expected = held_messages(dc)
            expected[bot_api_chat_id(basic_a)] = Counts(messages=2, text_length=9)
            problems = await b.until(expected)
            await b.gaps()  # every repair done
            ledgers = await b.coverage(bot_api_chat_id(c) for c in (basic_a, super_a, super_b))
    shapes = {
        chat_id: [(s.kind, s.reason) for s in ledger.segments]
        for chat_id, ledger in ledgers.items()
    }
    want = {
        bot_api_chat_id(basic_a): [("live", None), ("missing", "too_long"), ("live", None)],
        bot_api_chat_id(super_a): [("live", None), ("repaired", None), ("live", None)],
        bot_api_chat_id(super_b): [("live", None), ("caught_up", None), ("live", None)],
    }
    basic_ledger = ledgers[bot_api_chat_id(basic_a)]
    complete = (
        basic_ledger.complete_since == basic_ledger.segments[2].start
        and ledgers[bot_api_chat_id(super_a)].complete_since
        == ledgers[bot_api_chat_id(super_a)].segments[0].start
    )
    passed = not problems and shapes == want and complete
    report(
        "wire coverage ledger",
        "a downtime past what Telegram keeps, in a basic group, a supergroup and a quiet "
        f"supergroup -> ledgers {[[k for k, _ in v] for v in shapes.values()]}; the basic "
        "group complete since the restart, the supergroups since the first start; "
        f"{'counts exact' if not problems else problems[:3]}",
        passed,
    )
    assert passed, (problems, shapes)


def _metric(text: str, pattern: str) -> int | None:
    found = re.search(pattern + r" (\d+)", text)
    return int(found.group(1)) if found else None


# ---------------------------------------------------------------------------- flood wait


async def test_flood_wait_on_a_reply_does_not_stall_ingestion(
    bot: Callable[..., Any], dc_key: ServerKey, report: Callable[..., None]
) -> None:
    async with data_centre(dc_key) as dc:
        _, _, super_a, _, people = chats(dc)
        tally = Tally(dc)
        async with bot(dc) as b:
            dc.flood_wait("messages.SendMessage", 4)
            asked = time.monotonic()
            tally.post(super_a, people[0], f"/help@{dc.raw.bot.username}")
            for i in range(40):
                tally.post(super_a, people[i % 6], f"meanwhile {i}")
            problems = await b.until(tally.counts, limit=20)
            stored_after = time.monotonic() - asked
            replies_while_stored = len(dc.sent)
            deadline = time.monotonic() + 30
            while not dc.sent and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a list
                await asyncio.sleep(0.1)
            replied_after = time.monotonic() - asked
    passed = not problems and replies_while_stored == 0 and dc.sent and replied_after >= 4
    report(
        "wire FLOOD_WAIT on a reply",
        f"FLOOD_WAIT_4 on the /help reply: 41 messages stored after {stored_after:.1f}s "
        f"(no reply yet), reply sent after {replied_after:.1f}s",
        bool(passed),
    )
    assert passed, (problems, replies_while_stored, replied_after)
