"""checkov's Kubernetes policies on the chart, rendered for each value set in ``ci/``.

The chart is rendered with Helm's Go SDK (no helm binary), every manifest is written to a
folder per value set, and one ``checkov --framework kubernetes`` run scans them all. A
failed check must be one of ``JUSTIFIED`` (with the reason it does not apply), and only
where it says; the ``hardened`` set, what a careful operator runs (digest, pull policy
``Always``, NetworkPolicy), must pass everything but the checks that apply to no
configuration of tgstats. A justification that no longer matches a failure fails too, so
the list cannot go stale.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.deploy.support import ci_value_sets, render

VALUE_SETS = ci_value_sets()
HARDENED = "hardened-values"

#: Checks that fail for every configuration of tgstats, and why that is right.
ALWAYS = {
    "CKV_K8S_35": (
        "Secrets as environment variables: tgstats reads its settings (DATABASE_URL, tokens) "
        "from the environment only, the twelve-factor way its image and docs use; the values "
        "come from a Secret through secretKeyRef/envFrom, never from the manifest"
    ),
    "CKV_K8S_8": (
        "Liveness probe on the `helm test` pod: it runs one request to /health/ready and "
        "exits; there is nothing long-lived to probe"
    ),
    "CKV_K8S_9": "Readiness probe on the `helm test` pod: no Service sends it traffic",
}
#: Checks that the chart passes when configured for them (the hardened set), and why the
#: defaults and the other examples leave them failing.
UNLESS_CONFIGURED = {
    "CKV_K8S_43": (
        "Image by digest: the chart cannot know the digest of an image built later; "
        "`image.digest` pins it (the hardened set does)"
    ),
    "CKV_K8S_15": (
        "Pull policy Always: IfNotPresent is right for an immutable tag or a digest and "
        "avoids a registry round trip per pod start; `image.pullPolicy: Always` is there"
    ),
    "CKV2_K8S_6": (
        "NetworkPolicy: which namespaces may reach the pods (ingress controller, Prometheus) "
        "and where they may go (PostgreSQL, Redis, Telegram) differ per cluster; "
        "`networkPolicy.enabled` with `ingressFrom`/`egress` makes one (the hardened set)"
    ),
}
#: Which kinds of object each justified check may fail on.
KINDS = {
    "CKV_K8S_35": {"Deployment", "Job", "Pod"},
    "CKV_K8S_8": {"Pod"},
    "CKV_K8S_9": {"Pod"},
    "CKV_K8S_43": {"Deployment", "Job", "Pod"},
    "CKV_K8S_15": {"Deployment", "Job", "Pod"},
    "CKV2_K8S_6": {"Pod"},
}


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, set[str]]]:
    """``{value set: {check id: {"Kind/name", ...}}}`` of every failed check."""
    checkov = shutil.which("checkov") or str(Path(sys.executable).parent / "checkov")
    assert Path(checkov).exists(), "checkov not installed: run `nox -s chart_scan`"
    root = tmp_path_factory.mktemp("rendered")
    for number, (name, values) in enumerate(VALUE_SETS.items()):
        folder = root / name
        folder.mkdir()
        # checkov connects objects across the whole scan by their labels: a release name
        # per set keeps one set's NetworkPolicy from covering another set's pods.
        for index, manifest in enumerate(render(values, release=f"scan{number}")):
            (folder / f"{index:02d}-{manifest.kind}-{manifest.name}.yaml").write_text(manifest.text)
    result = subprocess.run(
        [checkov, "-d", str(root), "--framework", "kubernetes", "--output", "json",
         "--compact", "--skip-download", "--no-fail-on-crash"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    scanned = sum(r["summary"]["resource_count"] for r in reports)
    assert scanned >= 10 * len(VALUE_SETS), reports
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for report in reports:
        for check in report["results"]["failed_checks"]:
            value_set = Path(check["file_path"]).parts[1]
            kind, _namespace, name = check["resource"].split(".", 2)
            found[value_set][check["check_id"]].add(f"{kind}/{name}")
    return found


def test_every_value_set_was_scanned(failures: dict[str, dict[str, set[str]]]) -> None:
    assert HARDENED in VALUE_SETS
    # Every set fails at least the always-justified checks, so each shows up here.
    assert set(failures) == set(VALUE_SETS)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_only_justified_checks_fail(
    value_set: str, failures: dict[str, dict[str, set[str]]]
) -> None:
    allowed = ALWAYS if value_set == HARDENED else {**ALWAYS, **UNLESS_CONFIGURED}
    failed = failures[value_set]
    unjustified = {check: sorted(objs) for check, objs in failed.items() if check not in allowed}
    assert unjustified == {}
    wrong_kind = {
        check: sorted(o for o in objs if o.split("/")[0] not in KINDS[check])
        for check, objs in failed.items()
    }
    assert {check: objs for check, objs in wrong_kind.items() if objs} == {}


def test_no_justification_is_stale(failures: dict[str, dict[str, set[str]]]) -> None:
    """Each justified check still fails somewhere (else it is fixed: drop it from the list),
    and each check the hardened set fixes really fails without its settings."""
    failing = {check for per_set in failures.values() for check in per_set}
    assert set(ALWAYS) | set(UNLESS_CONFIGURED) <= failing
    others = {check for name, per_set in failures.items() if name != HARDENED for check in per_set}
    assert set(UNLESS_CONFIGURED) <= others
    assert set(KINDS) == set(ALWAYS) | set(UNLESS_CONFIGURED)
