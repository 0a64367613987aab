"""Debian's Prometheus scrapes a running tgstats: the seed's queries, the dashboard, the alerts.

A scripted workload goes through the real service (bot updates through kurigram's
dispatcher, one reply refused by Telegram, API reads, an import); then every query of the
monitoring dashboard shipped with the chart, and the seed's example queries, must return
series from what Prometheus scraped. Rates use short windows and a 1 s scrape interval.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.test_monitoring_files import RULES_FILE, dashboard_queries, load_dashboard
from tests.monitoring.service import Prometheus, running_service, workload

# The dashboard's Grafana variables, as Grafana would fill them in for this Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": ".+"}


@pytest.fixture(scope="module")
def work_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tgstats-monitoring-"))


@pytest.fixture(scope="module")
async def scraped(work_dir: Path) -> AsyncIterator[tuple[Prometheus, dict[str, int]]]:
    async with running_service(work_dir) as service:
        prometheus = Prometheus(
            work_dir, service.base_url.removeprefix("http://"), rule_files=(RULES_FILE,)
        )
        prometheus.start()
        try:
            done = await workload(service, rounds=6, work_dir=work_dir)
            # a few more scrapes after the last change, so every rate has two samples
            await prometheus.wait_for('bot_import_jobs_total{status="done"}')
            yield prometheus, done
        finally:
            prometheus.stop()


def _value(result: list[dict[str, Any]]) -> float:
    return sum(float(series["value"][1]) for series in result)


async def test_target_is_up(scraped) -> None:
    prometheus, _ = scraped
    result = await prometheus.wait_for('up{job="tgstats"} == 1')
    assert _value(result) == 1


async def test_counts_scraped_match_the_workload(scraped) -> None:
    prometheus, done = scraped
    messages = await prometheus.wait_for("sum(bot_messages_processed_total)")
    assert _value(messages) == done["messages"] + done["imported_messages"]
    failed = await prometheus.wait_for('sum(bot_errors_total{error_type="command"})')
    assert _value(failed) == done["failed_commands"]
    commands = await prometheus.wait_for('sum(bot_commands_executed_total{command="top"})')
    assert _value(commands) == done["commands"]
    imports = await prometheus.wait_for('sum(bot_import_jobs_total{status="done"})')
    assert _value(imports) == done["imports"]
    # the bot's group; an imported chat is not one the bot is in
    assert await prometheus.wait_for("bot_active_chats == 1"), "bot_active_chats never 1"


@pytest.mark.parametrize(
    "promql",
    [
        "rate(bot_commands_executed_total[5m])",
        "rate(bot_errors_total[5m])",
        "histogram_quantile(0.95, sum by (le) (rate(bot_request_duration_seconds_bucket[5m])))",
        "bot_active_chats",
        # The seed wrote `checked_out / total` without `ignoring(state)`: PromQL matches
        # on every label, `state` differs, so that form can never return a series.
        'bot_db_connections{state="checked_out"} / ignoring(state) '
        'bot_db_connections{state="total"}',
    ],
)
async def test_seed_dashboard_queries_return_series(scraped, promql: str) -> None:
    prometheus, _ = scraped
    result = await prometheus.wait_for(promql)
    assert result, f"{promql} returned no series"


async def test_pool_ratio_without_ignoring_is_empty_as_promql_says(scraped) -> None:
    prometheus, _ = scraped
    assert await prometheus.wait_for('bot_db_connections{state="total"}')
    literal = 'bot_db_connections{state="checked_out"} / bot_db_connections{state="total"}'
    assert await asyncio.to_thread(prometheus.query, literal) == []


async def test_every_dashboard_panel_has_data(scraped) -> None:
    prometheus, _ = scraped
    empty = []
    for title, expr in dashboard_queries(load_dashboard()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        result = await prometheus.wait_for(expr, limit=20)
        if not result:
            empty.append((title, expr))
    assert not empty, empty


async def test_alert_rules_load_and_stay_quiet_on_a_healthy_service(scraped) -> None:
    prometheus, _ = scraped
    async with httpx.AsyncClient(base_url=prometheus.url, timeout=10) as client:
        rules = (await client.get("/api/v1/rules")).json()["data"]["groups"]
    loaded = [r for g in rules for r in g["rules"]]
    assert len(loaded) >= 10 and all(r["health"] == "ok" for r in loaded), loaded
    firing = [r["name"] for r in loaded if r["state"] == "firing"]
    # the refused replies count as errors, but no alert's `for:` has passed yet
    assert firing == [], firing
