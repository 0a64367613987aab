"""All time: a group with eight years of history is read whole through the API
(``from=all``, or any range from its first day on) and the dashboard's "All time",
while an arbitrary range longer than ``API_MAX_RANGE_DAYS`` is still refused. The
expected numbers are counted here from the export file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.test_pages import admin_cookie
from tests.lifecycle.conftest import Flow, days_in, messages_of
from tgstats.plugin_api.testing import running_app

ADMIN = {"X-API-Token": ADMIN_TOKEN}
CHAT = 1_987_654_321  # the export's id; the Bot API calls the supergroup -100<id>
ZONE = "Asia/Kolkata"  # a :30 zone, so local days differ from UTC days
PEOPLE = {21: "Ann", 22: "Ben", 23: "Cleo"}


def _long_export() -> dict[str, Any]:
    """Messages every ~9 days from 2018-11 to 2026-11, by three people in turn."""
    start = datetime(2018, 11, 3, 18, 47, tzinfo=UTC)
    messages = []
    when, msg_id = start, 1
    while when < datetime(2026, 11, 20, tzinfo=UTC):
        user = 21 + msg_id % 3
        messages.append({
            "id": msg_id, "type": "message", "date": when.replace(tzinfo=None).isoformat(),
            "date_unixtime": str(int(when.timestamp())), "from": PEOPLE[user],
            "from_id": f"user{user}", "text": f"note {msg_id}",
        })  # fmt: skip
        when += timedelta(days=9, hours=msg_id % 7)
        msg_id += 1
    return {"name": "Long history", "type": "public_supergroup", "id": CHAT, "messages": messages}


async def test_the_whole_history_through_the_api_and_the_dashboard(
    db: Any, make_settings: Any, tmp_path: Any
) -> None:
    document = _long_export()
    settings = make_settings(
        IMPORT_DIR=str(tmp_path), RATE_LIMIT_PER_MINUTE="1000", JOBS_WORKER="1"
    )
    chat_id = -(10**12) - CHAT
    per_day = days_in(document, ZONE)
    first_day = min(per_day)
    per_user = Counter(m["from_id"] for m in messages_of(document))
    async with running_app(settings) as app:
        flow = Flow(app.client)
        job = await flow.upload(json.dumps(document).encode(), chat_timezone=ZONE)
        assert job["status"] == "done", job
        today = datetime.now(ZoneInfo(ZONE)).date()
        assert (today - first_day).days + 1 > settings.api.max_range_days  # the case at hand

        summary = await flow.get(f"/api/v1/chats/{chat_id}/summary", **{"from": "all"})
        assert (summary["period"]["start"], summary["period"]["end"]) == (
            first_day.isoformat(),
            today.isoformat(),
        )
        assert summary["messages"]["value"] == sum(per_day.values())
        assert summary["active_users"]["value"] == len(per_user)

        # Any range from the first day on (or from before it) is the whole history too.
        since = {"from": (first_day - timedelta(days=40)).isoformat(), "to": today.isoformat()}
        weeks = await flow.get(f"/api/v1/chats/{chat_id}/timeseries", granularity="week", **since)
        assert sum(p["messages"] for p in weeks["points"]) == sum(per_day.values())
        users = await flow.get(f"/api/v1/chats/{chat_id}/users", **{"from": "all"})
        counted = {f"user{row['user_id']}": row["messages"] for row in users["rows"]}
        assert counted == dict(per_user)

        # An arbitrary long range that is not the whole history is still refused.
        later = first_day + timedelta(days=30)
        refused = await app.client.get(
            f"/api/v1/chats/{chat_id}/summary",
            params={"from": later.isoformat(), "to": today.isoformat()},
            headers=ADMIN,
        )
        assert refused.status_code == 400 and "from" in refused.text
        assert "Traceback" not in refused.text

        # The dashboard's "All time": the picker's chip, the page's period from day one.
        cookie = await admin_cookie(app.client)
        page = await app.client.get(f"/chats/{chat_id}", params={"days": "all"}, headers=cookie)
        assert page.status_code == 200, page.text[:300]
        assert f'data-from="{first_day.isoformat()}"' in page.text
        assert f'data-to="{today.isoformat()}"' in page.text
        chip = re.search(r'<a class="chip active"[^>]*data-preset="all"', page.text)
        assert chip is not None
        # The page's own API calls (its dates) are answered, not refused for their length.
        days = f"/api/v1/chats/{chat_id}/timeseries"
        answer = await app.client.get(
            days, params={"from": first_day.isoformat(), "to": today.isoformat()}, headers=ADMIN
        )
        assert answer.status_code == 200
        assert sum(p["messages"] for p in answer.json()["points"]) == sum(per_day.values())
        assert date.fromisoformat(answer.json()["points"][0]["bucket"]) == first_day
