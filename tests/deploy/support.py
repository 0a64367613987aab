"""Helpers for the deployment checks: render the Helm chart and read what it made.

The chart is linted and rendered with Helm's own Go SDK (``helm-python-sdk``), so no
``helm`` binary and no cluster are needed. Rendered manifests are validated against the
Kubernetes OpenAPI schemas shipped in ``kubernetes-validate``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "tgstats"
CI_VALUES_DIR = CHART_DIR / "ci"
RELEASE = "stats"
NAMESPACE = "tgstats"

# The health endpoints the app serves (the lead's `create_app` routes); probes and the
# Containerfile HEALTHCHECK may only use these.
HEALTH_PATHS = frozenset(
    {
        "/health",
        "/health/live",
        "/health/ready",
        "/health/startup",
        "/health/stats",
        "/health/plugins",
    }
)

# Distinctive fake secrets: if one shows up outside a Secret, a test finds it by grep.
FAKE_SECRETS: dict[str, str] = {
    "databaseUrl": "postgresql://tgstats:pw-Db4s3cr3t@db.example.internal:5432/tgstats",
    "databaseReadUrl": "postgresql://tgstats:pw-R3pl1ca@replica.example.internal:5432/tgstats",
    "redisUrl": "rediss://:pw-R3d1sS3cr3t@cache.example.internal:6380/0",
    "telegramBotToken": "987654:fake-bot-token-AAH7xQ",
    "telegramApiId": "7654321",
    "telegramApiHash": "fakeapihash0f1e2d3c4b5a69788796a5b4",
    "adminApiToken": "fake-admin-token-9Ksd72hQ",
    "metricsToken": "fake-metrics-token-Lp03Zx",
    "sessionSecret": "fake-session-secret-Yy81Qw",
    "sentryDsn": "https://fake-sentry-key-Q1w2@sentry.example.internal/7",
}


@dataclass(frozen=True)
class Manifest:
    """One rendered Kubernetes object and the template it came from."""

    template: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def text(self) -> str:
        return yaml.safe_dump(self.body, sort_keys=True)


class Rendered(list[Manifest]):
    """Every object a release would create, with lookup by kind and name."""

    notes: str = ""

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self if m.kind == kind]

    def get(self, kind: str, name: str) -> Manifest:
        for manifest in self:
            if manifest.kind == kind and manifest.name == name:
                return manifest
        raise KeyError(f"{kind}/{name} not rendered; have {[f'{m.kind}/{m.name}' for m in self]}")


def load_values_file(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


def ci_value_sets() -> dict[str, dict[str, Any]]:
    """The realistic value sets in charts/tgstats/ci/ (the chart-testing convention)."""
    return {p.stem: load_values_file(p) for p in sorted(CI_VALUES_DIR.glob("*-values.yaml"))}


def render(
    values: dict[str, Any] | None = None, *, chart_dir: Path = CHART_DIR, release: str = RELEASE
) -> Rendered:
    """Render the chart as `helm install` would (offline) and parse every manifest."""
    with helm.Chart.load(chart_dir) as chart:
        output = chart.render(values or {}, name=release, namespace=NAMESPACE, is_install=True)
    rendered = Rendered()
    for template, text in sorted(output.items()):
        if template.endswith("NOTES.txt"):
            rendered.notes = text
            continue
        for body in yaml.safe_load_all(text):
            if body:
                rendered.append(Manifest(template=template, body=body))
    return rendered


def lint(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """`helm lint --strict` for the chart with ``values``; returns the SDK's report."""
    report: dict[str, Any] = helm.lint(CHART_DIR, values or {}, strict=True, namespace=NAMESPACE)
    return report


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def containers(manifest: Manifest) -> list[dict[str, Any]]:
    spec = manifest.body["spec"]
    pod = spec["template"]["spec"] if "template" in spec else spec
    return list(pod.get("initContainers", [])) + list(pod["containers"])
