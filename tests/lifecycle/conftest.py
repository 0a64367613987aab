"""Whole user flows through the HTTP API, checked against counts made here from the files.

The independent counts read the export JSON with plain Python and ``zoneinfo``; nothing
of tgstats is used to compute an expected number.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.importer.test_api import PLUGINS

ADMIN = {"X-API-Token": ADMIN_TOKEN}
SAMPLES = Path(__file__).resolve().parents[1] / "importer" / "samples"
REAL = SAMPLES / "real"
# A personal chat of 4,610 messages over two years, exported in Ukraine (DST both years).
ADOBY = REAL / "adoby-personal-reactions-2023.json"

__all__ = ["ADMIN", "ADOBY", "PLUGINS", "REAL", "SAMPLES"]


# --------------------------------------------------------------------------- independent counts


def instant(message: dict[str, Any], wall_zone: str) -> datetime:
    """The message's time: ``date_unixtime``, else ``date`` as wall time in ``wall_zone``."""
    if "date_unixtime" in message:
        return datetime.fromtimestamp(int(message["date_unixtime"]), UTC)
    return datetime.fromisoformat(message["date"]).replace(tzinfo=ZoneInfo(wall_zone))


def edit_instant(message: dict[str, Any], wall_zone: str) -> datetime | None:
    if "edited_unixtime" in message:
        return datetime.fromtimestamp(int(message["edited_unixtime"]), UTC)
    if "edited" in message:
        return datetime.fromisoformat(message["edited"]).replace(tzinfo=ZoneInfo(wall_zone))
    return None


def messages_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in document["messages"] if m.get("type") == "message"]


def days_in(document: dict[str, Any], zone: str, wall_zone: str = "UTC") -> Counter[date]:
    """Messages per local day in ``zone``."""
    tz = ZoneInfo(zone)
    return Counter(instant(m, wall_zone).astimezone(tz).date() for m in messages_of(document))


def edits_in(document: dict[str, Any], zone: str, wall_zone: str = "UTC") -> Counter[date]:
    tz = ZoneInfo(zone)
    out: Counter[date] = Counter()
    for m in messages_of(document):
        when = edit_instant(m, wall_zone)
        if when is not None:
            out[when.astimezone(tz).date()] += 1
    return out


def load(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


# --------------------------------------------------------------------------- API helpers


class Flow:
    """One running app and the calls a user makes."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def upload(self, body: bytes, **query: str) -> dict[str, Any]:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        response = await self.client.post(
            f"/api/v1/imports?{params}",
            content=body,
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        for _ in range(1200):
            job: dict[str, Any] = (
                await self.client.get(f"/api/v1/imports/{job_id}", headers=ADMIN)
            ).json()
            if job["status"] in ("done", "failed"):
                return job
            await asyncio.sleep(0.05)
        raise AssertionError("the import did not finish")

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        return response.json()

    async def patch_settings(self, chat_id: int, **fields: Any) -> dict[str, Any]:
        response = await self.client.patch(
            f"/api/v1/chats/{chat_id}/settings", json=fields, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def wait_recount(self, chat_id: int) -> dict[str, Any]:
        seen: list[float] = []
        for _ in range(1200):
            chat: dict[str, Any] = await self.get(f"/api/v1/chats/{chat_id}")
            recount = chat["recount"]
            if recount is not None:
                seen.append(recount["progress"])
                if recount["state"] in ("done", "failed"):
                    assert recount["state"] == "done", recount
                    return chat
            await asyncio.sleep(0.05)
        raise AssertionError(f"the recount did not finish: {seen[-5:]}")

    async def per_day(self, chat_id: int, start: date, end: date) -> tuple[str, Counter[date]]:
        """(the zone the answer says it is in, messages per local day)."""
        answer = await self.get(
            f"/api/v1/chats/{chat_id}/timeseries",
            **{"from": start.isoformat(), "to": end.isoformat()},
            granularity="day",
        )
        days = Counter(
            {
                date.fromisoformat(p["bucket"]): p["messages"]
                for p in answer["points"]
                if p["messages"]
            }
        )
        return answer["timezone"], days

    async def figures(self, chat_id: int, start: date, end: date) -> dict[str, Any]:
        """Every figure a user reads over the whole span: summary, days, members, hours."""
        span = {"from": start.isoformat(), "to": end.isoformat()}
        summary = await self.get(f"/api/v1/chats/{chat_id}/summary", **span)
        series = await self.get(f"/api/v1/chats/{chat_id}/timeseries", **span)
        users = await self.get(f"/api/v1/chats/{chat_id}/users", **span, limit=100)
        heatmap = await self.get(f"/api/v1/chats/{chat_id}/heatmap", **span)
        reactions = await self.get(f"/api/v1/chats/{chat_id}/reactions", **span)
        members = await self.get(f"/api/v1/chats/{chat_id}/members", **span)
        media = await self.get(f"/api/v1/chats/{chat_id}/media", **span)
        for answer in (summary, series, users, heatmap, reactions, members, media):
            answer.pop("generated_at", None)
        return {
            "summary": summary,
            "series": series,
            "users": users,
            "heatmap": heatmap,
            "reactions": reactions,
            "members": members,
            "media": media,
        }


@pytest.fixture
def flow(
    make_settings: Callable[..., Any], app_client: Callable[..., Any], tmp_path: Path
) -> Callable[..., Any]:
    """``async with flow(**env) as f``: the app with the imports API, and its calls."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def open_flow(**env: str) -> Any:
        settings = make_settings(
            IMPORT_DIR=str(tmp_path), API_MAX_RANGE_DAYS="3000", JOBS_WORKER="1", **env
        )
        async with app_client(settings, plugins=PLUGINS) as client:
            yield Flow(client)

    return open_flow


def span_of(days: Counter[date]) -> Iterator[date]:
    yield min(days) - timedelta(days=1)
    yield max(days) + timedelta(days=1)
