"""The alerts and the Grafana dashboard shipped with the chart, checked without a cluster.

``promtool check rules`` and ``promtool test rules`` (tests/deploy/alerts_test.yaml, a
firing and a quiet case per alert) on the plain rules file; the chart's PrometheusRule and
dashboard ConfigMap carry exactly those files. That every panel's query returns data from
a real Prometheus scraping tgstats is checked by ``nox -s monitoring`` (tests/monitoring).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    CHART_DIR,
    CI_VALUES_DIR,
    NAMESPACE,
    RELEASE,
    load_values_file,
    render,
)

RULES_FILE = CHART_DIR / "files" / "prometheus-rules.yaml"
DASHBOARD_FILE = CHART_DIR / "files" / "grafana-dashboard.json"
RULE_TESTS = Path(__file__).parent / "alerts_test.yaml"
FULLNAME = f"{RELEASE}-tgstats"


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") or os.environ.get("TGSTATS_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is required in CI (apt-get install prometheus)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return promtool


def _alert_names() -> list[str]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"]]


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return dashboard


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel."""
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


def test_promtool_check_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES_FILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alert_names())} rules found" in result.stdout


def test_promtool_unit_tests_of_every_alert() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=RULE_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # every alert has a case in which it fires
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert set(_alert_names()) <= fired, set(_alert_names()) - fired


def test_prometheus_rule_carries_the_rules_file() -> None:
    rendered = render(load_values_file(CI_VALUES_DIR / "servicemonitor-values.yaml"))
    rule = rendered.get("PrometheusRule", FULLNAME)
    assert rule.body["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule.body["metadata"]["namespace"] == NAMESPACE
    assert rule.body["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule.body["spec"]["groups"] == yaml.safe_load(RULES_FILE.read_text())["groups"]
    # the templating in the annotations reaches Prometheus untouched
    text = json.dumps(rule.body)
    assert "{{ $labels.instance }}" in text


def test_dashboard_config_map_for_the_grafana_sidecar() -> None:
    rendered = render(load_values_file(CI_VALUES_DIR / "servicemonitor-values.yaml"))
    config_map = rendered.get("ConfigMap", f"{FULLNAME}-dashboard")
    assert config_map.body["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map.body["metadata"]["annotations"]["grafana_folder"] == "Chat bots"
    assert json.loads(config_map.body["data"]["tgstats.json"]) == load_dashboard()
    # off by default
    default = render(load_values_file(CI_VALUES_DIR / "minimal-values.yaml"))
    assert not [m for m in default.of_kind("ConfigMap") if m.name.endswith("-dashboard")]
    assert not default.of_kind("PrometheusRule")


def test_dashboard_json() -> None:
    dashboard = load_dashboard()
    # Grafana 10/11 write schemaVersion 38-39; older ones migrate it up on import.
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] == "tgstats"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    assert variables["job"]["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert '{job=~"$job"' in target["expr"] or 'job=~"$job",' in target["expr"]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("messages", "commands", "errors", "p95", "active chats", "pool", "queue",
                  "batch", "import"):  # fmt: skip
        assert topic in titles, topic
