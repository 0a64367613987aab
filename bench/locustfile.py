"""Locust load test of the dashboard and the API (``nox -s load`` runs it on ``tgstats demo``).

Two kinds of user, both signed in with the admin token (``TGSTATS_LOAD_TOKEN``):

- ``DashboardUser`` signs in through the login form (the session cookie), opens the chat
  list, then a chat's page and every ``/api/v1`` call that page's scripts make (summary,
  timeseries, heatmap, members table, media, words, reactions, links, members, topics,
  interactions), and downloads the members table as CSV;
- ``ApiUser`` calls the API with ``X-API-Token``, as a script would: chats, summary,
  timeseries, users as CSV.

The period of each page view is drawn from a few fixed windows and a random one, so the
stats response cache answers some requests and the database the rest. ``/health/live``
runs now and then as the baseline: what one request costs through the same server, event
loop and locust with no database behind it.

At the end one line ``load: {...}`` (JSON) gives the request count, p50/p95/p99 (ms) over
all requests and for the baseline, requests/s, failures and 5xx; the run exits 1 on any
failure (locust's default) and on any 5xx. Run by hand:

    TGSTATS_LOAD_TOKEN=... locust -f bench/locustfile.py --headless -u 10 -r 5 -t 30s \
        --host http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import os
import random
import re
from datetime import date, timedelta
from typing import Any

from locust import HttpUser, between, events, task

TOKEN = os.environ.get("TGSTATS_LOAD_TOKEN", "")
SUMMARY_FILE = os.environ.get("TGSTATS_LOAD_SUMMARY")
CHAT_PANELS = (
    ("summary", {}),
    ("timeseries", {"granularity": "day", "rolling": "7"}),
    ("heatmap", {}),
    ("users", {"limit": "50", "offset": "0", "sort": "messages", "order": "desc"}),
    ("media", {}),
    ("words", {"limit": "20"}),
    ("reactions", {}),
    ("links", {}),
    ("members", {}),
    ("topics", {}),
    ("interactions", {"limit": "10"}),
)
_server_errors = 0
_CSRF = re.compile(r'name="tgstats-csrf" content="([^"]+)"')


@events.request.add_listener
def _count_server_errors(response: Any = None, **_: Any) -> None:
    global _server_errors
    if response is not None and getattr(response, "status_code", 0) >= 500:
        _server_errors += 1


def _period() -> dict[str, str]:
    """A period the dashboard could ask for: last 7/30/90 days, or a random month."""
    today = date.today()
    choice = random.random()
    if choice < 0.6:
        days = random.choice((7, 30, 90))
        start, end = today - timedelta(days=days - 1), today
    else:
        end = today - timedelta(days=random.randrange(0, 90))
        start = end - timedelta(days=29)
    return {"from": start.isoformat(), "to": end.isoformat()}


class _Signed(HttpUser):
    abstract = True
    chat_ids: list[int]

    def _chat_ids(self, **kwargs: Any) -> list[int]:
        with self.client.get("/api/v1/chats", catch_response=True, **kwargs) as response:
            if response.status_code != 200:
                response.failure(f"chat list answered {response.status_code}")
                return []
            return [chat["chat_id"] for chat in response.json()["chats"]]

    @task(1)
    def health_baseline(self) -> None:
        self.client.get("/health/live", name="/health/live (baseline)")


class DashboardUser(_Signed):
    """A person on the dashboard: sign in, chat list, a chat's page and its calls, CSV."""

    weight = 3
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.client.get("/login?next=/", name="/login")
        with self.client.post(
            "/login",
            data={"token": TOKEN, "next": "/"},
            headers={"Origin": self.host.rstrip("/")},
            allow_redirects=False,
            catch_response=True,
            name="/login (sign in)",
        ) as response:
            if response.status_code != 303 or "tgstats_session" not in response.cookies:
                response.failure(f"sign-in answered {response.status_code}")
        self.chat_ids = self._chat_ids()

    @task(2)
    def chat_list(self) -> None:
        self.client.get("/", name="/ (chat list page)")
        self.chat_ids = self._chat_ids() or self.chat_ids

    @task(6)
    def chat_page(self) -> None:
        if not self.chat_ids:
            return
        chat_id = random.choice(self.chat_ids)
        page = self.client.get(f"/chats/{chat_id}", name="/chats/[id] (page)")
        if page.status_code == 200 and not _CSRF.search(page.text):
            page.failure("the chat page has no CSRF token")
        period = _period()
        for path, params in CHAT_PANELS:
            self.client.get(
                f"/api/v1/chats/{chat_id}/{path}",
                params={**period, **params},
                headers={"Accept": "application/json"},
                name=f"/api/v1/chats/[id]/{path}",
            )

    @task(1)
    def members_csv(self) -> None:
        if not self.chat_ids:
            return
        chat_id = random.choice(self.chat_ids)
        with self.client.get(
            f"/api/v1/chats/{chat_id}/users",
            params={**_period(), "format": "csv", "limit": "200"},
            name="/api/v1/chats/[id]/users (CSV)",
            catch_response=True,
        ) as response:
            if response.status_code == 200 and not response.headers.get(
                "content-type", ""
            ).startswith("text/csv"):
                response.failure("CSV export answered " + response.headers.get("content-type", ""))


class ApiUser(_Signed):
    """A script on the API with ``X-API-Token``."""

    weight = 1
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.client.headers["X-API-Token"] = TOKEN
        self.chat_ids = self._chat_ids()

    @task(3)
    def summary_and_timeseries(self) -> None:
        if not self.chat_ids:
            return
        chat_id = random.choice(self.chat_ids)
        period = _period()
        self.client.get(
            f"/api/v1/chats/{chat_id}/summary", params=period, name="/api/v1/chats/[id]/summary"
        )
        self.client.get(
            f"/api/v1/chats/{chat_id}/timeseries",
            params={**period, "granularity": "week"},
            name="/api/v1/chats/[id]/timeseries",
        )

    @task(1)
    def timeseries_csv(self) -> None:
        if not self.chat_ids:
            return
        chat_id = random.choice(self.chat_ids)
        self.client.get(
            f"/api/v1/chats/{chat_id}/timeseries",
            params={**_period(), "format": "csv"},
            name="/api/v1/chats/[id]/timeseries (CSV)",
        )


@events.quitting.add_listener
def _report(environment: Any, **_: Any) -> None:
    stats = environment.stats
    total = stats.total
    baseline = stats.get("/health/live (baseline)", "GET")

    def percentiles(entry: Any) -> dict[str, float]:
        if not entry.num_requests:
            return {}
        return {
            f"p{int(q * 100)}_ms": round(entry.get_response_time_percentile(q), 1)
            for q in (0.5, 0.95, 0.99)
        }

    summary = {
        "requests": total.num_requests,
        **percentiles(total),
        "rps": round(total.total_rps, 1),
        "failures": total.num_failures,
        "server_errors": _server_errors,
        "baseline": {"requests": baseline.num_requests, **percentiles(baseline)},
        "slowest": sorted(
            (
                {"name": e.name, "requests": e.num_requests, **percentiles(e)}
                for e in stats.entries.values()
                if e.num_requests
            ),
            key=lambda row: -row.get("p95_ms", 0),
        )[:5],
    }
    print("load: " + json.dumps(summary), flush=True)
    if SUMMARY_FILE:
        with open(SUMMARY_FILE, "w", encoding="utf-8") as out:
            json.dump(summary, out)
    if _server_errors:
        environment.process_exit_code = 1
