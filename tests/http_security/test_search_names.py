"""Names that look like SQL or HTML are stored, searched and shown back intact.

No keyword or "special character" filtering anywhere: SQL is bound parameters
and escaping happens where text is rendered. A search for ``update``,
``select`` or ``O'Brien`` finds exactly those members.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tgstats.events import ChatSnapshot, MessageEvent, UserSnapshot

CHAT = -1007770001
NAMES = {
    1: "O'Brien",
    2: "select",
    3: "update",
    4: "Robert'); DROP TABLE users;--",
    5: "<b>Bold</b> & co",
    6: "Anna",
}


async def test_search_for_sql_looking_names(
    make_settings: Callable[..., Any], app_client: Any, admin_headers: dict[str, str]
) -> None:
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    events: list[Any] = [ChatSnapshot(chat_id=CHAT, chat_type="supergroup", title="names")]
    events += [UserSnapshot(user_id=uid, first_name=name) for uid, name in NAMES.items()]
    events += [
        MessageEvent(chat_id=CHAT, msg_id=uid, date=today - timedelta(days=1), user_id=uid)
        for uid in NAMES
    ]
    async with app_client(make_settings()) as client:
        sink = client.app.state.services.get("events")
        await sink.put_many(events)
        await sink.flush()
        day = (today - timedelta(days=1)).date().isoformat()
        for search, expected in (
            ("O'Brien", [1]),
            ("select", [2]),
            ("update", [3]),
            ("DROP TABLE", [4]),
            ("<b>", [5]),
            ("'", [1, 4]),
        ):
            response = await client.get(
                f"/api/v1/chats/{CHAT}/users",
                params={"search": search, "from": day, "to": day},
                headers=admin_headers,
            )
            assert response.status_code == 200, response.text
            rows = response.json()["rows"]
            assert sorted(row["user_id"] for row in rows) == expected, (search, rows)
            for row in rows:  # JSON carries the name as it is; escaping is for HTML
                assert row["display_name"] == NAMES[row["user_id"]]
        # Nothing was dropped: every member is still there.
        everyone = await client.get(
            f"/api/v1/chats/{CHAT}/users", params={"from": day, "to": day}, headers=admin_headers
        )
        assert sorted(row["user_id"] for row in everyone.json()["rows"]) == sorted(NAMES)
