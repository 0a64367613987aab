"""Scenario 6: hostile updates through the dispatcher and hostile HTTP requests.

A normal workload goes in before and after the hostile input; at the end its
counts must be exact, each hostile update must have the one precise effect
stated beside it, every HTTP answer must be a clear 4xx in the app's error
format, and ``/health/ready`` must still say 200.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from pyrogram import raw

from tests.resilience.sim_plugin import encode_updates
from tests.resilience.simulator import Counts, build_workload, diff_counts, send, stored_counts
from tgstats_mtproto.testing import RawUpdates, bot_api_id

INT64_MAX = 2**63 - 1
HUGE_TEXT = "ab😀" * 70_000  # 210 000 code points, 280 000 UTF-16 units


def _hostile_updates(tg: RawUpdates) -> tuple[list[Any], dict[int, Counts], dict[str, Any]]:
    """Hostile updates, what they must add to the counts, and ids to look at afterwards."""
    group = tg.supergroup(9100, "Hostile")
    chat_id = bot_api_id(group)
    # The largest id an MTProto long can carry (the builders' access hashes would overflow).
    edge_user = raw.types.User(id=INT64_MAX, first_name="Max", access_hash=7)
    sender = tg.user(91001, "Sender")
    bad_entities = [
        raw.types.MessageEntityUrl(offset=-5, length=10),
        raw.types.MessageEntityTextUrl(offset=2**31 - 1, length=2**31 - 1, url="https://x.org"),
        raw.types.MessageEntityMention(offset=1, length=1),  # splits a surrogate pair
        raw.types.MessageEntityHashtag(offset=3, length=-4),
    ]
    # A channel id past what Bot API ids can express in int64: -100… overflows bigint.
    overflow_group = raw.types.Channel(
        id=INT64_MAX,
        title="Overflow",
        photo=raw.types.ChatPhotoEmpty(),
        date=tg.now,
        megagroup=True,
        access_hash=7,
    )
    long_names = tg.supergroup(9200, "T" * 100_000, username="g" * 300)
    long_user = raw.types.User(id=91002, first_name="F" * 50_000, username="u" * 300, access_hash=3)
    updates = [
        tg.new_message(group, sender, HUGE_TEXT, msg_id=1),
        tg.new_message(
            group, sender, "😀x #tag @who https://ok.example", msg_id=2, entities=bad_entities
        ),
        tg.new_message(group, edge_user, "edge", msg_id=2**31 - 1),  # largest int32 msg id
        tg.new_message(group, sender, "nul\x00inside", msg_id=4),
        # Names longer than any column: the username columns are varchar(64).
        tg.new_message(long_names, long_user, "long names", msg_id=6),
        # Update kinds nothing in tgstats handles: kurigram has no parser or no handler.
        tg.updates([raw.types.UpdateConfig()], []),
        tg.updates(
            [
                raw.types.UpdateUserTyping(
                    user_id=sender.id, action=raw.types.SendMessageTypingAction()
                )
            ],
            [sender],
        ),
        tg.updates(
            [
                raw.types.UpdateReadChannelInbox(
                    channel_id=group.id, max_id=3, still_unread_count=0, pts=1
                )
            ],
            [group],
        ),
        # A reaction on a message id that never existed, from the int64-edge user.
        tg.reaction(group, edge_user, 2**31 - 2, new=[tg.emoji("🔥")]),
    ]
    expected = {
        chat_id: Counts(
            messages=4,
            text_length=len(HUGE_TEXT) + len("😀x #tag @who https://ok.example") + 4 + 10,
            reactions=1,
        )
    }
    overflow = tg.new_message(overflow_group, sender, "overflowing chat id", msg_id=5)
    expected[bot_api_id(long_names)] = Counts(messages=1, text_length=len("long names"))
    return updates, expected, {"chat_id": chat_id, "overflow": overflow}


BIG = "99999999999999999999999999"  # past int64
NO_ADMIN = {"X-API-Token": ""}  # replaces the admin token: the request is anonymous

# (method, path, headers, body, expected status)
HOSTILE_REQUESTS: list[tuple[str, str, dict[str, Any], bytes | None, int]] = [
    ("GET", "/api/v1/chats/{chat}/summary?from=2024-13-45", {}, None, 400),
    ("GET", "/api/v1/chats/{chat}/summary?from=2025-01-10&to=2024-01-01", {}, None, 400),
    ("GET", "/api/v1/chats/{chat}/summary?from=0001-01-01&to=9999-12-31", {}, None, 400),
    ("GET", "/api/v1/chats/{chat}/summary?tz=Mars%2FOlympus", {}, None, 400),
    ("GET", f"/api/v1/chats/{BIG}/summary", {}, None, 400),
    ("GET", f"/api/v1/chats/-{BIG}/summary", {}, None, 400),
    ("GET", f"/api/v1/chats/{BIG}", {}, None, 400),
    ("GET", f"/api/v1/chats/{BIG}/settings", {}, None, 400),
    ("GET", f"/api/v1/chats/{BIG}/tokens", {}, None, 400),
    ("GET", f"/api/v1/chats/{{chat}}/users/{BIG}", {}, None, 400),
    ("GET", "/api/v1/chats/-9223372036854775808/summary", {}, None, 404),
    ("GET", "/api/v1/chats/{chat}/users?limit=-1", {}, None, 400),
    ("GET", "/api/v1/chats/{chat}/users?limit=99999999999999999999", {}, None, 400),
    ("GET", "/api/v1/chats/{chat}/users?sort=__class__&order=sideways", {}, None, 400),
    ("GET", "/api/v1/chats/{chat}/users?search=" + "%27%3B--" * 40, {}, None, 400),
    ("GET", "/api/v1/chats/{chat}/words?kind=%00", {}, None, 400),
    ("GET", "/api/v1/chats/{chat}/summary", {"X-API-Token": "x" * 16_000}, None, 401),
    (
        "GET",
        "/api/v1/chats/{chat}/summary",
        {"X-API-Token": "tgc_\u00e9\u00e8".encode()},
        None,
        401,
    ),
    (
        "GET",
        "/api/v1/chats/{chat}/summary",
        {**NO_ADMIN, "Authorization": "Bearer a" + "\t" * 50 + "b"},
        None,
        401,
    ),
    ("GET", "/api/v1/chats", {"X-Request-ID": "a\tb" * 2000}, None, 200),
    (
        "POST",
        "/api/v1/chats/{chat}/tokens",
        {"Content-Type": "application/json"},
        b"{" * 50_000,
        400,
    ),
    (
        "POST",
        "/api/v1/chats/{chat}/tokens",
        # The server closes the connection after its early 413; without "close" the
        # client could pool it and send the next request into that close (a
        # RemoteProtocolError of the client's keep-alive race, not of the service).
        {"Content-Type": "application/json", "Connection": "close"},
        b'{"name": "' + b"x" * 1_100_000 + b'"}',
        413,
    ),
    ("GET", "/static/dashboard/..%2F..%2F..%2Fetc%2Fpasswd", {}, None, 404),
    ("GET", f"/chats/{BIG}", {}, None, 400),
]


async def _hostile_http(
    client: httpx.AsyncClient, chat_id: int, admin: dict[str, str]
) -> list[str]:
    """Every hostile request: a 4xx, the app's error body on /api, no internals leaked."""
    problems = []
    for method, path, headers, body, expected in HOSTILE_REQUESTS:
        url = path.replace("{chat}", str(chat_id))
        sent = {k: v for k, v in {**admin, **headers}.items() if v}
        try:
            response = await client.request(method, url, headers=sent, content=body)
        except httpx.TransportError as exc:
            if expected == 413 and body is not None:
                # The server answers 413 as soon as the declared length is over the limit and
                # closes the connection; a client still uploading may see the reset instead of
                # the answer. The service must still be up: checked right below.
                alive = await client.get("/health/live")
                if alive.status_code != 200:
                    problems.append(f"{method} {url[:80]}: service down after an oversize body")
                continue
            problems.append(f"{method} {url[:80]}: connection failed ({type(exc).__name__})")
            continue
        text = response.text
        where = f"{method} {url[:80]} -> {response.status_code}"
        if response.status_code != expected:
            problems.append(f"{where}: expected {expected}")
        if any(leak in text for leak in ("Traceback", "asyncpg", "sqlalchemy", 'File "/')):
            problems.append(f"{where}: leaks internals")
        if url.startswith("/api/") and response.status_code >= 400:
            try:
                error = json.loads(text)["error"]
                assert error["status"] == response.status_code and error["message"]
            except Exception:
                problems.append(f"{where}: not the app's error format: {text[:120]!r}")
        echoed = response.headers.get("x-request-id", "")
        if len(echoed) > 200:
            problems.append(f"{where}: echoed a hostile X-Request-ID")
    return problems


async def test_bad_input(
    deploy: Callable[..., Any], admin_headers: dict[str, str], report: Callable[..., None]
) -> None:
    tg = RawUpdates()
    before = build_workload(tg, chats=3, messages_per_chat=30, seed=10)
    after = build_workload(tg, chats=3, messages_per_chat=30, seed=11, chat_base=6000)
    hostile, hostile_expected, ids = _hostile_updates(tg)
    async with deploy() as d, d.client() as client:
        first = await send(client, before.updates)
        fed = await send(client, hostile, batch=1)  # one per request: each must be accepted
        # kurigram's own peer storage refuses the overflowing channel id before dispatch.
        refused = await client.post("/_sim/updates", content=encode_updates([ids["overflow"]]))
        garbage = await client.post("/_sim/updates", content=b"\x00\x00\x00\x10not a TL object")
        (await client.post("/_sim/flush")).raise_for_status()
        http_problems = await _hostile_http(client, ids["chat_id"], admin_headers)
        last = await send(client, after.updates)
        (await client.post("/_sim/flush")).raise_for_status()
        ready = (await client.get("/health/ready")).status_code
        errors_metric = (await client.get("/metrics")).text
        conn = await d.pg.connect(d.database)
        try:
            stored = await stored_counts(conn)
            edge_user = await conn.fetchval("SELECT id FROM users WHERE id = $1", INT64_MAX)
            huge = await conn.fetchrow(
                "SELECT text_length, url_count FROM messages WHERE chat_id = $1 AND msg_id = 1",
                ids["chat_id"],
            )
            overflow_rows = await conn.fetchval(
                "SELECT count(*) FROM messages WHERE text_length = $1", len("overflowing chat id")
            )
        finally:
            await conn.close()
    expected = {**before.expected, **after.expected, **hostile_expected}
    problems = diff_counts(expected, stored) + http_problems
    if edge_user != INT64_MAX:
        problems.append("the int64-edge user was not stored exactly")
    if huge is None or huge["text_length"] != len(HUGE_TEXT):
        problems.append(f"huge text stored as {huge}")
    if overflow_rows:
        problems.append("a message of the overflowing chat id was stored")
    if refused.status_code != 200 or refused.json() != {"fed": 0, "rejected": 1}:
        problems.append(f"the overflowing update was answered {refused.text}")
    if garbage.status_code != 400:
        problems.append(f"undecodable update body answered {garbage.status_code}")
    unacked = len(first.unacked) + len(fed.unacked) + len(last.unacked)
    poison_logged = 'error_type="poison_event"' in errors_metric
    passed = not problems and unacked == 0 and ready == 200
    report(
        "bad input",
        f"{len(hostile)} hostile updates (210k-code-point text, out-of-range/negative/"
        f"surrogate-splitting entity offsets, NUL, unknown update kinds, int64/int32 edge ids, "
        f"300-char usernames, a channel id overflowing bigint refused by kurigram; batches "
        f"bisected for a poison event: {poison_logged}) and "
        f"{len(HOSTILE_REQUESTS)} hostile HTTP requests (each its precise 4xx in the error format: "
        f"{not http_problems}) between two normal workloads; ready {ready}; counts "
        f"{'exact' if not diff_counts(expected, stored) else 'WRONG'}",
        passed,
    )
    assert not problems, "\n".join(problems)
    assert unacked == 0, (first.error, fed.error, last.error)
    assert ready == 200
