"""The stats REST API over the seeded chats: JSON, CSV, errors, access per token."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest

from tgstats.events import MessageEvent
from tgstats.stats.period import Period
from tgstats.web.auth import mint_chat_token

from .conftest import Seeded, feed
from .dataset import BERLIN, KATHMANDU, ZONES, Truth

Q = {"from": "2026-10-20", "to": "2026-10-30"}
PERIOD = Period(start=date(2026, 10, 20), end=date(2026, 10, 30))
ENDPOINTS = [
    "summary", "timeseries", "heatmap", "users", "users/1", "media", "words", "links",
    "reactions", "interactions", "members", "topics",
]  # fmt: skip


@pytest.fixture
async def client(seeded: Seeded, make_settings, app_client):
    async with app_client(make_settings()) as test_client:
        yield test_client


async def test_every_endpoint_answers_json_matching_the_stats_functions(
    client, admin_headers, seeded: Seeded
):
    for name in ENDPOINTS:
        response = await client.get(
            f"/api/v1/chats/{BERLIN}/{name}", params=Q, headers=admin_headers
        )
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["period"] == {"start": "2026-10-20", "end": "2026-10-30"}, name
        assert body["timezone"] == "Europe/Berlin", name
    summary = (
        await client.get(f"/api/v1/chats/{BERLIN}/summary", params=Q, headers=admin_headers)
    ).json()
    truth = Truth(seeded.events, BERLIN, ZONES[BERLIN]).summary(PERIOD.start, PERIOD.end)
    assert summary["messages"]["value"] == truth["messages"]
    assert summary["average_dau"]["value"] == truth["average_dau"]


async def test_tz_override_and_defaults(client, admin_headers, seeded: Seeded):
    response = await client.get(
        f"/api/v1/chats/{BERLIN}/heatmap",
        params={**Q, "tz": "Asia/Kathmandu"},
        headers=admin_headers,
    )
    assert response.status_code == 200
    truth = Truth(seeded.events, BERLIN, "Asia/Kathmandu")
    assert response.json()["matrix"] == truth.heatmap(PERIOD.start, PERIOD.end)
    assert response.json()["timezone"] == "Asia/Kathmandu"
    # No from/to: the last 30 local days, today included.
    body = (await client.get(f"/api/v1/chats/{KATHMANDU}/summary", headers=admin_headers)).json()
    start, end = (
        date.fromisoformat(body["period"]["start"]),
        date.fromisoformat(body["period"]["end"]),
    )
    assert (end - start).days == 29


async def test_csv_by_accept_header_and_format_param(client, admin_headers):
    response = await client.get(
        f"/api/v1/chats/{BERLIN}/users",
        params=Q,
        headers={**admin_headers, "Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    json_rows = (
        await client.get(f"/api/v1/chats/{BERLIN}/users", params=Q, headers=admin_headers)
    ).json()["rows"]
    assert [int(r["user_id"]) for r in rows] == [r["user_id"] for r in json_rows]
    assert [int(r["messages"]) for r in rows] == [r["messages"] for r in json_rows]
    # A hostile display name never reaches a spreadsheet as a formula.
    hostile = [r for r in rows if r["user_id"] == "4"]
    assert hostile and hostile[0]["display_name"].startswith("'=")
    for name, column in (("timeseries", "bucket"), ("heatmap", "weekday"), ("members", "day")):
        response = await client.get(
            f"/api/v1/chats/{BERLIN}/{name}", params={**Q, "format": "csv"}, headers=admin_headers
        )
        assert response.status_code == 200, name
        assert response.text.splitlines()[0].split(",")[0] == column, name
    summary_csv = await client.get(
        f"/api/v1/chats/{BERLIN}/summary", params={**Q, "format": "csv"}, headers=admin_headers
    )
    assert summary_csv.text.startswith("metric,value,previous,change,change_pct")
    bad = await client.get(
        f"/api/v1/chats/{BERLIN}/summary", params={**Q, "format": "xml"}, headers=admin_headers
    )
    assert bad.status_code == 400 and "format" in bad.text


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-02-30"}, "to"),
        ({"from": "2026-10-30", "to": "2026-10-01"}, "from"),
        # Over max_range_days, and not the whole history (the data starts in October 2026).
        ({"from": "2026-11-01", "to": "2031-01-01"}, "from"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"granularity": "year"}, "granularity"),
        ({"rolling": "0"}, "rolling"),
    ],
)
async def test_bad_parameters_answer_400_naming_them(client, admin_headers, params, name):
    response = await client.get(
        f"/api/v1/chats/{BERLIN}/timeseries", params=params, headers=admin_headers
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert name in error["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("users", {"sort": "secret"}, "sort"),
        ("users", {"limit": "0"}, "limit"),
        ("users", {"order": "sideways"}, "order"),
        ("words", {"kind": "passwords"}, "kind"),
        ("members", {"inactive_days": "-1"}, "inactive_days"),
    ],
)
async def test_bad_endpoint_parameters(client, admin_headers, path, params, name):
    response = await client.get(
        f"/api/v1/chats/{BERLIN}/{path}", params=params, headers=admin_headers
    )
    assert response.status_code == 400, response.text
    assert name in response.json()["error"]["message"]


async def test_unknown_chat_and_member_are_404(client, admin_headers):
    for path in ("", "/summary", "/users", "/settings"):
        response = await client.get(f"/api/v1/chats/-1009999/{path.lstrip('/')}".rstrip("/"),
                                    headers=admin_headers)  # fmt: skip
        assert response.status_code == 404, path
    response = await client.get(f"/api/v1/chats/{BERLIN}/users/424242", headers=admin_headers)
    assert response.status_code == 404


async def test_auth_and_chat_tokens(client, admin_headers, seeded: Seeded):
    assert (await client.get("/api/v1/chats")).status_code == 401
    listed = (await client.get("/api/v1/chats", headers=admin_headers)).json()
    assert {c["chat_id"] for c in listed["chats"]} == {BERLIN, KATHMANDU}
    async with seeded.db.session_factory() as session:
        _, token = await mint_chat_token(session, KATHMANDU, None, label="test")
        await session.commit()
    chat_headers = {"Authorization": f"Bearer {token}"}
    own = await client.get("/api/v1/chats", headers=chat_headers)
    assert [c["chat_id"] for c in own.json()["chats"]] == [KATHMANDU]
    assert (await client.get(f"/api/v1/chats/{KATHMANDU}/summary", headers=chat_headers)).is_success
    assert (
        await client.get(f"/api/v1/chats/{BERLIN}/summary", headers=chat_headers)
    ).status_code == 403
    assert (await client.get(f"/api/v1/chats/{BERLIN}", headers=chat_headers)).status_code == 403
    patched = await client.patch(
        f"/api/v1/chats/{KATHMANDU}/settings", json={"locale": "ru"}, headers=chat_headers
    )
    assert patched.status_code == 403


async def test_settings_get_and_patch(client, admin_headers):
    url = f"/api/v1/chats/{BERLIN}/settings"
    got = (await client.get(url, headers=admin_headers)).json()
    assert got["timezone"] == "Europe/Berlin"
    bad = await client.patch(url, json={"timezone": "Nowhere/Land"}, headers=admin_headers)
    assert bad.status_code == 400 and "timezone" in bad.json()["error"]["message"]
    unknown = await client.patch(url, json={"admin": True}, headers=admin_headers)
    assert unknown.status_code == 400
    # Only languages with a catalog are accepted; a region is dropped ("ru-RU" is "ru").
    unsupported = await client.patch(url, json={"locale": "de"}, headers=admin_headers)
    assert unsupported.status_code == 400
    assert "locale" in unsupported.json()["error"]["message"]
    assert "en, ru" in unsupported.text  # the reason names the languages
    for wrong in (None, 7, "", "x" * 40):
        refused = await client.patch(url, json={"locale": wrong}, headers=admin_headers)
        assert refused.status_code == 400, wrong
    changed = await client.patch(url, json={"locale": "ru-RU"}, headers=admin_headers)
    assert changed.status_code == 200 and changed.json()["locale"] == "ru"
    assert (await client.get(url, headers=admin_headers)).json()["locale"] == "ru"


async def test_openapi_lists_the_stats_routes(client):
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    assert "/api/v1/chats/{chat_id}/summary" in paths
    params = {p["name"] for p in paths["/api/v1/chats/{chat_id}/summary"]["get"]["parameters"]}
    assert {"from", "to", "tz", "format"} <= params


async def test_answers_are_cached_per_data_version(client, admin_headers, seeded: Seeded):
    """Answers are cached under the chat's data version: new rows show once it is bumped.

    The app's own writer bumps the version after each commit; here the rows come
    from a pipeline outside the app (the test client runs the app on its own event
    loop), so the cached answer stays until a settings change bumps the version.
    """
    url = f"/api/v1/chats/{KATHMANDU}/summary"
    params = {"from": "2026-11-05", "to": "2026-11-05"}
    first = (await client.get(url, params=params, headers=admin_headers)).json()
    assert first["messages"]["value"] == 0
    event = MessageEvent(
        chat_id=KATHMANDU, msg_id=99_999, date=datetime(2026, 11, 5, 6, 0, tzinfo=UTC), user_id=1
    )
    seeded.events.append(event)  # keep the truth in step for any later test
    await feed(seeded.db, [event])
    cached = (await client.get(url, params=params, headers=admin_headers)).json()
    assert cached["messages"]["value"] == 0  # served from the cache
    patched = await client.patch(
        f"/api/v1/chats/{KATHMANDU}/settings", json={"locale": "ru"}, headers=admin_headers
    )
    assert patched.status_code == 200
    fresh = (await client.get(url, params=params, headers=admin_headers)).json()
    assert fresh["messages"]["value"] == 1
