"""The MTProto session in PostgreSQL (and in a file): what survives a restart."""

from __future__ import annotations

import asyncio

import pytest
from pyrogram import raw
from pyrogram.storage import UpdateState
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tgstats_mtproto.raw_updates import wire
from tgstats_mtproto.storage import (
    DatabaseStorage,
    FileSessionStorage,
    mtproto_peers,
    mtproto_update_state,
)
from tgstats_mtproto.testing import MTProtoHarness, RawUpdates
from tgstats_mtproto.update_state_gate import HandledUpdates


@pytest.fixture
def name(request):
    return f"test_{request.node.name[:40]}"


async def test_session_row_peers_and_state_round_trip(session_factory, name):
    storage = DatabaseStorage(name, session_factory)
    await storage.open()
    assert await storage.dc_id() == 2 and await storage.auth_key() is None
    key = bytes(range(256))
    await storage.dc_id(4)
    await storage.server_address("149.154.167.91")
    await storage.api_id(12345)
    await storage.test_mode(False)
    await storage.auth_key(key)
    await storage.user_id(777)
    await storage.is_bot(True)
    await storage.update_peers(
        [(11, 341, "user", "+4912345"), (-1000000001001, 13013, "supergroup", None)]
    )
    await storage.update_usernames([(11, ["Alice", None, "alice_alt"])])
    await storage.set_update_state(UpdateState(0, 100, 5, 1700000000, 3))
    await storage.set_update_state(UpdateState(-1000000001001, 40, None, None, None))
    await storage.set_update_state(UpdateState(0, 101, None, None, None))  # None keeps old values
    await storage.save()
    await storage.close()

    again = DatabaseStorage(name, session_factory)
    await again.open()
    assert (await again.dc_id(), await again.server_address(), await again.api_id()) == (
        4,
        "149.154.167.91",
        12345,
    )
    assert await again.auth_key() == key
    assert (await again.user_id(), await again.is_bot(), await again.test_mode()) == (
        777,
        True,
        False,
    )
    assert await again.date() > 0
    assert await again.get_peer_by_id(11) == raw.types.InputPeerUser(user_id=11, access_hash=341)
    assert await again.get_peer_by_id(-1000000001001) == raw.types.InputPeerChannel(
        channel_id=1001, access_hash=13013
    )
    assert await again.get_peer_by_username("ALICE_alt") == raw.types.InputPeerUser(
        user_id=11, access_hash=341
    )
    assert await again.get_peer_by_phone_number("+4912345") == raw.types.InputPeerUser(
        user_id=11, access_hash=341
    )
    with pytest.raises(KeyError):
        await again.get_peer_by_id(99)
    with pytest.raises(KeyError):
        await again.get_peer_by_username("nobody")
    states = {s.id: s for s in await again.get_update_states()}
    assert states[0] == UpdateState(0, 101, 5, 1700000000, 3)
    assert states[-1000000001001].pts == 40
    assert [s.id for s in await again.get_update_states(0)] == [0]
    await again.delete_update_state(-1000000001001)
    await again.close()

    third = DatabaseStorage(name, session_factory)
    await third.open()
    assert [s.id for s in await third.get_update_states()] == [0]
    await third.delete()
    await third.close()
    fourth = DatabaseStorage(name, session_factory)
    await fourth.open()
    assert await fourth.auth_key() is None and await fourth.get_update_states() == []
    await fourth.close()


async def test_sessions_are_kept_apart_by_name(session_factory, name):
    one, two = (
        DatabaseStorage(name + "a", session_factory),
        DatabaseStorage(name + "b", session_factory),
    )
    await one.open()
    await two.open()
    await one.user_id(1)
    await one.update_peers([(11, 1, "user", None)])
    await one.close()
    await two.close()
    fresh = DatabaseStorage(name + "b", session_factory)
    await fresh.open()
    assert await fresh.user_id() is None
    with pytest.raises(KeyError):
        await fresh.get_peer_by_id(11)
    await fresh.close()


async def test_peers_and_state_are_written_in_the_background(session_factory, name):
    storage = DatabaseStorage(name, session_factory, flush_interval=0.0)
    await storage.open()
    await storage.update_peers([(12, 99, "user", None)])
    assert storage._flush_task is not None
    await storage._flush_task
    async with session_factory() as session:
        row = (
            await session.execute(select(mtproto_peers).where(mtproto_peers.c.session_name == name))
        ).one()
    assert (row.id, row.access_hash) == (12, 99)
    await storage.close()


async def test_a_failed_flush_keeps_what_was_not_written(session_factory, name):
    storage = DatabaseStorage(name, session_factory)
    await storage.open()
    dead_engine = create_async_engine(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none", connect_args={"timeout": 1}
    )
    storage._sessions = async_sessionmaker(dead_engine)
    await storage.set_update_state(UpdateState(0, 7, 1, 1, 1))
    with pytest.raises(OSError):
        await storage.flush()
    storage._sessions = session_factory
    await storage.flush()
    async with session_factory() as session:
        row = (
            await session.execute(
                select(mtproto_update_state).where(mtproto_update_state.c.session_name == name)
            )
        ).one()
    assert row.pts == 7
    await storage.close()
    await dead_engine.dispose()


async def test_real_client_state_survives_a_restart(plugin, session_factory, name, sink):
    """Updates fed through kurigram store peers and pts; a new process resumes from them."""
    tg = RawUpdates()
    storage = DatabaseStorage(name, session_factory)
    harness = await MTProtoHarness.start(plugin, raw_updates=tg, storage=storage)
    group, alice = tg.supergroup(1001, "Friends"), tg.user(11, "Alice", username="alice")
    for _ in range(3):
        await harness.feed(tg.new_message(group, alice, "hi"))
    last_pts = next(tg._pts) - 1
    await harness.close()

    restarted = DatabaseStorage(name, session_factory)
    await restarted.open()
    assert await restarted.user_id() == tg.bot.id and await restarted.is_bot() is True
    assert await restarted.get_peer_by_id(-1000000001001) == raw.types.InputPeerChannel(
        channel_id=1001, access_hash=1001 * 13
    )
    assert await restarted.get_peer_by_username("alice") == raw.types.InputPeerUser(
        user_id=11, access_hash=11 * 31
    )
    [channel_state] = await restarted.get_update_states(-1000000001001)
    assert channel_state.pts == last_pts  # catch-up asks getChannelDifference from here
    await restarted.close()


async def test_file_session_at_the_exact_path(tmp_path):
    path = tmp_path / "state" / "bot.session"
    storage = FileSessionStorage(path)
    await storage.open()
    await storage.auth_key(b"k" * 256)
    await storage.user_id(5)
    await storage.update_peers([(11, 1, "user", None)])
    await storage.save()
    await storage.close()
    assert path.is_file()
    again = FileSessionStorage(path)
    await again.open()
    assert await again.auth_key() == b"k" * 256 and await again.user_id() == 5
    assert await again.get_peer_by_id(11) == raw.types.InputPeerUser(user_id=11, access_hash=1)
    await again.close()


async def _saved_pts(session_factory, name, state_id):
    async with session_factory() as session:
        row = (
            await session.execute(
                select(mtproto_update_state.c.pts).where(
                    mtproto_update_state.c.session_name == name,
                    mtproto_update_state.c.id == state_id,
                )
            )
        ).first()
    return None if row is None else row.pts


async def test_update_state_is_saved_only_once_its_updates_are_committed(
    plugin, session_factory, name, sink
):
    """A crash must never leave a saved pts ahead of what was recorded (catch-up starts there)."""
    tg = RawUpdates()
    storage = DatabaseStorage(name, session_factory, flush_interval=3600)
    harness = await MTProtoHarness.start(plugin, raw_updates=tg, storage=storage)
    group, alice = tg.supergroup(1001, "Friends"), tg.user(11, "Alice")
    channel = -1000000001001
    await harness.feed(tg.new_message(group, alice, "one"))
    await storage.flush()
    first_pts = await _saved_pts(session_factory, name, channel)
    assert first_pts == next(tg._pts) - 1

    committed = asyncio.Event()
    commits: list[int] = []

    async def held_flush() -> None:  # the pipeline's commit, held back by the test
        await committed.wait()
        commits.append(len(sink.events))

    sink.flush = held_flush
    before = len(sink.events)
    # The second update arrives (kurigram moves its state at once) but is not handled yet.
    await harness.client.handle_updates(wire(tg.new_message(group, alice, "two")))
    assert (await storage.get_update_states(channel))[0].pts > first_pts
    saving = asyncio.create_task(storage.flush())
    await asyncio.sleep(0.2)
    assert not saving.done()  # waits for the dispatcher to handle the update
    assert await _saved_pts(session_factory, name, channel) == first_pts

    dispatcher = harness.client.dispatcher
    dispatcher.updates_queue.put_nowait(None)
    await dispatcher.handler_worker(asyncio.Lock())
    handled = len(sink.events)
    assert handled > before  # handled: its events are in the sink, not committed yet
    await asyncio.sleep(0.2)
    assert not saving.done()  # now waits for the commit
    assert await _saved_pts(session_factory, name, channel) == first_pts

    committed.set()
    await asyncio.wait_for(saving, 5)
    assert commits == [handled]
    assert await _saved_pts(session_factory, name, channel) > first_pts
    await harness.close()


async def test_handled_updates_counts_what_every_worker_finished():
    queue = HandledUpdates()
    release: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}
    finished: list[str] = []

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            await release[item].wait()
            finished.append(item)

    workers = [asyncio.create_task(worker()) for _ in range(2)]
    queue.put_nowait("a")
    queue.put_nowait("b")
    await asyncio.sleep(0.05)
    assert (queue.arrived, queue.handled_through()) == (2, 0)
    waiting = asyncio.create_task(queue.wait_handled(2))
    release["b"].set()  # the second finishes first: the first still holds the watermark
    await asyncio.sleep(0.05)
    assert finished == ["b"] and queue.handled_through() == 0 and not waiting.done()
    release["a"].set()
    await asyncio.wait_for(waiting, 5)
    assert queue.handled_through() == 2
    for _ in workers:
        queue.put_nowait(None)  # kurigram's stop sentinels are not updates
    await asyncio.gather(*workers)
    assert queue.arrived == 2


@pytest.mark.parametrize("kind", ["database", "file"])
async def test_a_pinned_data_centre_address_wins_over_what_kurigram_writes(
    session_factory, name, tmp_path, kind
):
    """``TELEGRAM_DC_ADDRESS``: a new session is written Telegram's DC 2; reads stay pinned."""
    pinned = ("127.0.0.1", 4567)
    if kind == "database":
        storage = DatabaseStorage(name, session_factory, dc_address=pinned)
    else:
        storage = FileSessionStorage(tmp_path / "pinned.session", dc_address=pinned)
    await storage.open()
    await storage.server_address("149.154.167.51")  # what kurigram's load_session writes
    await storage.port(443)
    assert (await storage.server_address(), await storage.port()) == pinned
    await storage.close()
