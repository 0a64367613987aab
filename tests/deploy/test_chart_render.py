"""The Helm chart, linted and rendered by Helm's Go SDK and checked against Kubernetes schemas.

Run alone with `nox -s chart` or `pytest tests/deploy`.
"""

from __future__ import annotations

import base64
import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
from kubernetes_validate import utils as kubernetes_validate

from tests.deploy.support import (
    CHART_DIR,
    FAKE_SECRETS,
    HEALTH_PATHS,
    NAMESPACE,
    RELEASE,
    Manifest,
    Rendered,
    b64,
    ci_value_sets,
    containers,
    render,
)
from tgstats.settings import ENV_VARS

FULLNAME = f"{RELEASE}-tgstats"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas
# kubernetes-validate ships: a manifest must be valid on both.
KUBE_VERSIONS = ("1.27.0", "1.37.0")
# Custom resources: kubernetes-validate has no schema for them; checked field by field below.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
VALUE_SETS = ci_value_sets()
SECRET_ENV = {v.name for v in ENV_VARS if v.secret} | {"TELEGRAM_API_ID"}


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge value layers (later wins), as repeated `-f` files do."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = merged(result[key], value)
            else:
                result[key] = copy.deepcopy(value)
    return result


def all_secrets(**extra: Any) -> dict[str, Any]:
    return merged({"secrets": dict(FAKE_SECRETS)}, extra)


def pod_spec(manifest: Manifest) -> dict[str, Any]:
    spec = manifest.body["spec"]
    return spec["template"]["spec"] if "template" in spec else spec


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


# --------------------------------------------------------------------------- lint and schema


def test_value_sets_cover_the_realistic_setups() -> None:
    assert {
        "minimal-values",
        "external-services-values",
        "ingress-values",
        "servicemonitor-values",
        "existing-secret-values",
        "second-bot-values",
        "hardened-values",
    } <= set(VALUE_SETS)


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", ["defaults", *VALUE_SETS])
def test_helm_lint_strict_is_clean(value_set: str, kube_version: str) -> None:
    values = {} if value_set == "defaults" else VALUE_SETS[value_set]
    report = helm.lint(
        CHART_DIR, values, strict=True, namespace=NAMESPACE, kube_version=f"v{kube_version}"
    )
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    # Not even an informational message (severity 1, e.g. "icon is recommended").
    assert report["messages"] == []


def test_defaults_alone_refuse_to_render_without_a_database() -> None:
    with pytest.raises(helm.HelmRenderError, match=r"secrets\.databaseUrl is required"):
        render({})


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_manifest_validates_strictly_against_kubernetes(value_set: str) -> None:
    rendered = render(VALUE_SETS[value_set])
    assert rendered, "nothing rendered"
    failures = []
    for manifest in rendered:
        if manifest.kind in CUSTOM_KINDS:
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(manifest.body, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                failures.append(
                    f"{manifest.template} {manifest.kind} @{version}: {where}: {exc.message}"
                )
            except kubernetes_validate.SchemaNotFoundError as exc:
                failures.append(f"{manifest.template}: {exc.message}")
    assert failures == []


@pytest.mark.parametrize(
    ("bad_values", "message"),
    [
        ({"bot": {"replicaCount": 3}}, "/bot/replicaCount"),
        ({"replicaCount": 3}, "replicaCount"),
        ({"config": {"DATABASE_URL": "postgresql://x@y/z"}}, "/config/DATABASE_URL"),
        ({"config": {"TELEGRAM_SESSION_PATH": "/x"}}, "/config/TELEGRAM_SESSION_PATH"),
        ({"config": {"lower_case": "x"}}, "lower_case"),
        ({"secrets": {"databaseUrl": "mysql://db/x"}}, "/secrets/databaseUrl"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ],
)
def test_schema_refuses_bad_values(
    minimal_values: dict[str, Any], bad_values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=message):
        render(merged(minimal_values, bad_values))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"web": {"replicaCount": 3}}, r"secrets\.redisUrl is required with more than one"),
        (
            {"secrets": {"existingSecret": "mine"}},
            r"secrets\.\w+ is set together with secrets\.existingSecret: put \w+ into",
        ),
        (
            {
                "metrics": {"serviceMonitor": {"enabled": True}},
                "config": {"ENABLE_METRICS": "false"},
            },
            r"needs config\.ENABLE_METRICS",
        ),
        (
            {
                "web": {"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": 0}},
                "secrets": {"redisUrl": "redis://r:6379"},
            },
            r"targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage",
        ),
        (
            {
                "metrics": {"serviceMonitor": {"enabled": True, "namespace": "monitoring"}},
                "secrets": {"metricsToken": "t"},
            },
            r"metrics\.serviceMonitor\.namespace must be the release namespace",
        ),
    ],
)
def test_templates_refuse_broken_combinations(
    minimal_values: dict[str, Any], values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(merged(minimal_values, values))


# --------------------------------------------------------------------------- the bot


def assert_one_recreate_bot(rendered: Rendered) -> None:
    bot = rendered.get("Deployment", f"{FULLNAME}-bot")
    assert bot.body["spec"]["replicas"] == 1
    assert bot.body["spec"]["strategy"] == {"type": "Recreate"}
    assert not [
        h
        for h in rendered.of_kind("HorizontalPodAutoscaler")
        if h.body["spec"]["scaleTargetRef"]["name"] == bot.name
    ]


def test_bot_runs_one_replica_with_recreate_when_web_scales(minimal_values: dict[str, Any]) -> None:
    rendered = render(
        merged(
            minimal_values,
            {"secrets": {"redisUrl": "redis://r:6379/0"}, "web": {"replicaCount": 7}},
        )
    )
    assert rendered.get("Deployment", FULLNAME).body["spec"]["replicas"] == 7
    assert_one_recreate_bot(rendered)
    rendered = render(
        merged(
            minimal_values,
            {
                "secrets": {"redisUrl": "redis://r:6379/0"},
                "web": {"autoscaling": {"enabled": True}},
            },
        )
    )
    assert_one_recreate_bot(rendered)


def test_bot_template_forces_one_replica_even_without_the_schema(
    tmp_path: Path, minimal_values: dict[str, Any]
) -> None:
    """The schema refuses bot.replicaCount; the template must not depend on that alone."""
    chart = tmp_path / "tgstats"
    shutil.copytree(CHART_DIR, chart)
    (chart / "values.schema.json").unlink()
    forced = merged(
        minimal_values,
        {
            "replicaCount": 5,
            "bot": {"replicaCount": 5, "strategy": {"type": "RollingUpdate"}},
            "web": {"replicaCount": 1},
        },
    )
    assert_one_recreate_bot(render(forced, chart_dir=chart))


def test_session_file_gets_a_volume_claim(minimal_values: dict[str, Any]) -> None:
    rendered = render(merged(minimal_values, {"bot": {"sessionFile": {"enabled": True}}}))
    claim = rendered.get("PersistentVolumeClaim", f"{FULLNAME}-session")
    assert claim.body["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim.body["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    bot = rendered.get("Deployment", f"{FULLNAME}-bot")
    (container,) = containers(bot)
    assert env_of(container)["TELEGRAM_SESSION_PATH"]["value"] == (
        "/var/lib/tgstats/session/tgstats.session"
    )
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["session"] == "/var/lib/tgstats/session"
    volumes = {v["name"]: v for v in pod_spec(bot)["volumes"]}
    assert volumes["session"]["persistentVolumeClaim"]["claimName"] == claim.name
    # Only the bot holds the session; the web pods never see it.
    (web,) = containers(rendered.get("Deployment", FULLNAME))
    assert "TELEGRAM_SESSION_PATH" not in env_of(web)

    rendered = render(
        merged(minimal_values, {"bot": {"sessionFile": {"enabled": True, "existingClaim": "old"}}})
    )
    assert rendered.of_kind("PersistentVolumeClaim") == []
    volumes = {
        v["name"]: v for v in pod_spec(rendered.get("Deployment", f"{FULLNAME}-bot"))["volumes"]
    }
    assert volumes["session"]["persistentVolumeClaim"]["claimName"] == "old"


def test_session_defaults_to_the_database(minimal_values: dict[str, Any]) -> None:
    rendered = render(minimal_values)
    assert rendered.of_kind("PersistentVolumeClaim") == []
    (container,) = containers(rendered.get("Deployment", f"{FULLNAME}-bot"))
    assert "TELEGRAM_SESSION_PATH" not in env_of(container)
    assert container["args"] == ["bot", "--no-migrate"]
    assert "TGSTATS_ROLE" not in env_of(container)  # `tgstats bot` sets its own role


def test_second_bot_release_runs_only_the_bot() -> None:
    rendered = render(VALUE_SETS["second-bot-values"])
    assert {m.kind for m in rendered} == {"ConfigMap", "Deployment", "Service", "ServiceAccount"}
    assert [m.name for m in rendered.of_kind("Deployment")] == [f"{FULLNAME}-bot"]
    assert_one_recreate_bot(rendered)


# --------------------------------------------------------------------------- secrets


@pytest.fixture(scope="module")
def everything_on() -> Rendered:
    """Every optional part on, every secret set to a recognisable fake value."""
    return render(
        all_secrets(
            ingress={
                "enabled": True,
                "tls": [{"secretName": "t", "hosts": ["tgstats.example.com"]}],
            },
            metrics={"serviceMonitor": {"enabled": True}, "podAnnotations": True},
            web={"autoscaling": {"enabled": True}},
            bot={"sessionFile": {"enabled": True}},
            extraEnv=[{"name": "TGSTATS_PLUGIN_DEMO_LEVEL", "value": "3"}],
        )
    )


def test_no_secret_value_outside_a_secret(everything_on: Rendered) -> None:
    leaks = []
    for manifest in everything_on:
        if manifest.kind == "Secret":
            continue
        for key, value in FAKE_SECRETS.items():
            if value in manifest.text or b64(value) in manifest.text:
                leaks.append(f"{key} in {manifest.kind}/{manifest.name}")
    for key, value in FAKE_SECRETS.items():
        if value in everything_on.notes:
            leaks.append(f"{key} in NOTES.txt")
    assert leaks == []


def test_no_secret_variable_as_an_env_literal_or_config_key(everything_on: Rendered) -> None:
    for manifest in everything_on.of_kind("ConfigMap"):
        assert not set(manifest.body["data"]) & SECRET_ENV
    for kind in ("Deployment", "Job", "Pod"):
        for manifest in everything_on.of_kind(kind):
            for container in containers(manifest):
                for name, entry in env_of(container).items():
                    if name in SECRET_ENV:
                        assert "value" not in entry, f"{name} is a literal in {manifest.name}"
                        assert "secretKeyRef" in entry["valueFrom"]


def test_secret_holds_every_secret_setting_of_the_app(everything_on: Rendered) -> None:
    secret = everything_on.get("Secret", FULLNAME)
    decoded = {k: base64.b64decode(v).decode() for k, v in secret.body["data"].items()}
    # Every variable settings.py marks secret (plus the API id) has a place in the chart.
    assert set(decoded) == SECRET_ENV
    assert decoded["DATABASE_URL"] == FAKE_SECRETS["databaseUrl"]
    assert decoded["TELEGRAM_BOT_TOKEN"] == FAKE_SECRETS["telegramBotToken"]
    assert decoded["TELEGRAM_API_ID"] == FAKE_SECRETS["telegramApiId"]
    # The migration hook gets its own Secret with nothing but the database URL.
    hook = everything_on.get("Secret", f"{FULLNAME}-migrate")
    assert set(hook.body["data"]) == {"DATABASE_URL"}


def test_unset_secrets_are_left_out(minimal_values: dict[str, Any]) -> None:
    secret = render(minimal_values).get("Secret", FULLNAME)
    assert set(secret.body["data"]) == {
        "DATABASE_URL",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_ID",
        "TELEGRAM_API_HASH",
        "ADMIN_API_TOKEN",
    }


def test_existing_secret_is_used_everywhere() -> None:
    rendered = render(VALUE_SETS["existing-secret-values"])
    assert rendered.of_kind("Secret") == []
    for name in (FULLNAME, f"{FULLNAME}-bot"):
        (container,) = containers(rendered.get("Deployment", name))
        refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
        assert refs == ["tgstats-secrets"]
        assert {"configMapRef": {"name": "tgstats-extra-settings"}} in container["envFrom"]
        assert env_of(container)["TGSTATS_PLUGIN_ENGAGEMENT_WINDOW_DAYS"]["value"] == "28"
    (migrate,) = containers(rendered.get("Job", f"{FULLNAME}-migrate"))
    assert env_of(migrate)["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "tgstats-secrets",
        "key": "DATABASE_URL",
    }
    monitor = rendered.get("ServiceMonitor", FULLNAME)
    credentials = monitor.body["spec"]["endpoints"][0]["authorization"]["credentials"]
    assert credentials == {"name": "tgstats-secrets", "key": "METRICS_TOKEN", "optional": True}


def test_variables_the_chart_sets_are_settings_of_the_app() -> None:
    """A variable the app does not declare would be silently ignored."""
    declared = {v.name for v in ENV_VARS}
    chart_set = {"TGSTATS_ROLE", "TGSTATS_PORT", "TGSTATS_WORKERS", "TELEGRAM_SESSION_PATH"}
    missing = chart_set - declared
    assert missing == set(), (
        f"{sorted(missing)} not in tgstats.settings.ENV_VARS, so the app ignores what the chart "
        "sets (TGSTATS_ROLE=web keeps the Telegram client out of the web pods)"
    )


def test_config_keys_are_plain_settings_of_the_app() -> None:
    plain = {v.name for v in ENV_VARS if not v.secret} - SECRET_ENV
    with helm.Chart.load(CHART_DIR) as chart:
        defaults = chart.values
    for name, values in {"values.yaml": defaults, **VALUE_SETS}.items():
        unknown = set(values.get("config", {})) - plain
        assert unknown == set(), f"{name}: config keys the app does not read: {unknown}"


# --------------------------------------------------------------------------- pods


def test_probes_use_the_health_endpoints(everything_on: Rendered) -> None:
    expected = {
        "startupProbe": "/health/startup",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    for name in (FULLNAME, f"{FULLNAME}-bot"):
        (container,) = containers(everything_on.get("Deployment", name))
        for probe, path in expected.items():
            assert container[probe]["httpGet"] == {"path": path, "port": "http"}, (name, probe)
            assert path in HEALTH_PATHS
        assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
        assert env_of(container)["TGSTATS_PORT"]["value"] == "8000"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_pod_is_locked_down(value_set: str) -> None:
    rendered = render(VALUE_SETS[value_set])
    pods = [m for m in rendered if m.kind in {"Deployment", "Job", "Pod"}]
    assert pods
    for manifest in pods:
        spec = pod_spec(manifest)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(manifest):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["runAsNonRoot"] is True
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"]
            assert resources["limits"]["memory"]
            if manifest.kind == "Pod":  # the `helm test` pod only makes one request
                continue
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], manifest.name
            assert env_of(container)["TMPDIR"]["value"] == "/tmp"


def test_image_tag_defaults_to_the_app_version(
    minimal_values: dict[str, Any], chart_metadata: dict[str, Any]
) -> None:
    app_version = chart_metadata["appVersion"]
    rendered = render(minimal_values)
    images = {
        c["image"]
        for m in rendered
        if m.kind in {"Deployment", "Job", "Pod"}
        for c in containers(m)
    }
    assert images == {f"ghcr.io/tgstats/tgstats:{app_version}"}
    web = rendered.get("Deployment", FULLNAME)
    assert web.body["metadata"]["labels"]["app.kubernetes.io/version"] == app_version

    tagged = render(merged(minimal_values, {"image": {"tag": "1.2.3", "registry": ""}}))
    (container,) = containers(tagged.get("Deployment", FULLNAME))
    assert container["image"] == "tgstats/tgstats:1.2.3"
    digest = "sha256:" + "ab" * 32
    pinned = render(merged(minimal_values, {"image": {"digest": digest}}))
    (container,) = containers(pinned.get("Deployment", f"{FULLNAME}-bot"))
    assert container["image"] == f"ghcr.io/tgstats/tgstats@{digest}"


def test_settings_changes_roll_the_pods(minimal_values: dict[str, Any]) -> None:
    def checksums(values: dict[str, Any]) -> dict[str, str]:
        pod = render(values).get("Deployment", FULLNAME).body["spec"]["template"]["metadata"]
        return {k: v for k, v in pod["annotations"].items() if k.startswith("checksum/")}

    before = checksums(minimal_values)
    config_changed = checksums(merged(minimal_values, {"config": {"LOG_LEVEL": "DEBUG"}}))
    secret_changed = checksums(merged(minimal_values, {"secrets": {"adminApiToken": "other"}}))
    assert config_changed["checksum/config"] != before["checksum/config"]
    assert config_changed["checksum/secret"] == before["checksum/secret"]
    assert secret_changed["checksum/secret"] != before["checksum/secret"]


def test_web_runs_serve_without_migrating(minimal_values: dict[str, Any]) -> None:
    rendered = render(merged(minimal_values, {"web": {"workers": 3}}))
    (container,) = containers(rendered.get("Deployment", FULLNAME))
    assert container["args"] == ["serve", "--no-migrate"]
    assert env_of(container)["TGSTATS_WORKERS"]["value"] == "3"
    # Without this every web replica would also run the Telegram client.
    assert env_of(container)["TGSTATS_ROLE"]["value"] == "web"
    envfrom = container["envFrom"]
    assert {"configMapRef": {"name": FULLNAME}} in envfrom
    assert {"secretRef": {"name": FULLNAME}} in envfrom


# --------------------------------------------------------------------------- migrations


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(
    minimal_values: dict[str, Any],
) -> None:
    rendered = render(merged(minimal_values, {"config": {"DB_STATEMENT_TIMEOUT_MS": 0}}))
    job = rendered.get("Job", f"{FULLNAME}-migrate")
    annotations = job.body["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    hook_secret = rendered.get("Secret", f"{FULLNAME}-migrate")
    secret_weight = int(hook_secret.body["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert secret_weight < int(annotations["helm.sh/hook-weight"])
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    # Hooks run before the release's ConfigMap, Secret and ServiceAccount exist.
    assert "serviceAccountName" not in spec
    (container,) = containers(job)
    assert container["args"] == ["migrate"]
    assert "envFrom" not in container
    env = env_of(container)
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == hook_secret.name
    assert env["DB_STATEMENT_TIMEOUT_MS"]["value"] == "0"
    assert env["ENVIRONMENT"]["value"] == "production"

    off = render(merged(minimal_values, {"migrations": {"enabled": False}}))
    assert off.of_kind("Job") == []


# --------------------------------------------------------------------------- traffic and metrics


def test_service_and_ingress_reach_the_web_pods() -> None:
    rendered = render(VALUE_SETS["ingress-values"])
    service = rendered.get("Service", FULLNAME)
    web = rendered.get("Deployment", FULLNAME)
    pod_labels = web.body["spec"]["template"]["metadata"]["labels"]
    assert service.body["spec"]["selector"].items() <= pod_labels.items()
    assert service.body["spec"]["ports"][0]["targetPort"] == "http"
    ingress = rendered.get("Ingress", FULLNAME)
    assert ingress.body["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress.body["spec"]["rules"]
    assert rule["host"] == "stats.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service.name, "port": {"name": "http"}}
    assert ingress.body["spec"]["tls"] == [
        {"hosts": ["stats.example.com"], "secretName": "tgstats-tls"}
    ]
    bot_labels = rendered.get("Deployment", f"{FULLNAME}-bot").body["spec"]["template"]["metadata"][
        "labels"
    ]
    assert not service.body["spec"]["selector"].items() <= bot_labels.items()


def test_autoscaler_owns_the_web_replica_count() -> None:
    rendered = render(VALUE_SETS["external-services-values"])
    web = rendered.get("Deployment", FULLNAME)
    assert "replicas" not in web.body["spec"]
    hpa = rendered.get("HorizontalPodAutoscaler", FULLNAME)
    assert hpa.body["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": FULLNAME,
    }
    assert (hpa.body["spec"]["minReplicas"], hpa.body["spec"]["maxReplicas"]) == (3, 10)
    assert {m["resource"]["name"] for m in hpa.body["spec"]["metrics"]} == {"cpu", "memory"}
    pdb = rendered.get("PodDisruptionBudget", FULLNAME)
    assert pdb.body["spec"]["minAvailable"] == 2
    assert pdb.body["spec"]["selector"]["matchLabels"].items() <= (
        web.body["spec"]["template"]["metadata"]["labels"].items()
    )


def test_service_monitor_scrapes_web_and_bot_metrics() -> None:
    rendered = render(VALUE_SETS["servicemonitor-values"])
    monitor = rendered.get("ServiceMonitor", FULLNAME)
    assert monitor.body["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor.body["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor.body["spec"]
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = spec["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s" and endpoint["scrapeTimeout"] == "5s"
    selected = [
        s
        for s in rendered.of_kind("Service")
        if spec["selector"]["matchLabels"].items() <= s.body["metadata"]["labels"].items()
    ]
    assert {s.name for s in selected} == {FULLNAME, f"{FULLNAME}-bot"}
    for service in selected:
        assert endpoint["port"] in {p["name"] for p in service.body["spec"]["ports"]}
    credentials = endpoint["authorization"]["credentials"]
    assert credentials["key"] == "METRICS_TOKEN" and credentials["optional"] is False
    assert "METRICS_TOKEN" in rendered.get("Secret", credentials["name"]).body["data"]
    assert "/metrics" in rendered.notes and "ServiceMonitor" in rendered.notes
    for name in (FULLNAME, f"{FULLNAME}-bot"):
        annotations = rendered.get("Deployment", name).body["spec"]["template"]["metadata"][
            "annotations"
        ]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert annotations["prometheus.io/port"] == "8000"


# --------------------------------------------------------------------------- packaging and CLI


def test_kubernetes_validate_cli_accepts_every_rendered_manifest(tmp_path: Path) -> None:
    """The same check through the `kubernetes-validate --strict` command line."""
    files = []
    for value_set, values in VALUE_SETS.items():
        for index, manifest in enumerate(render(values)):
            path = tmp_path / f"{value_set}-{index:02d}-{manifest.kind}.yaml"
            path.write_text(manifest.text, encoding="utf-8")
            files.append(str(path))
    cli = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet"]
    # One version is enough here: the library test above covers both through the same code.
    for version in KUBE_VERSIONS[:1]:
        result = subprocess.run(
            [*cli, "-k", version, *files], capture_output=True, text=True, timeout=120
        )
        lines = result.stdout.splitlines()
        assert result.returncode == 0, "\n".join(lines)
        # Only the custom resources have no schema to check against.
        warnings = [line for line in lines if line.startswith("WARN")]
        assert all(any(kind in line for kind in CUSTOM_KINDS) for line in warnings), warnings


def test_chart_packages_without_the_ci_values(tmp_path: Path) -> None:
    archive = helm.package(CHART_DIR, destination=tmp_path)
    assert Path(archive).name == "tgstats-0.1.0.tgz"
    with helm.Chart.load_archive(Path(archive).read_bytes()) as chart:
        files = {f["name"] for f in chart.files}
        assert chart.schema is not None
    assert "README.md" in files
    assert not [f for f in files if f.startswith("ci/")]


def test_notes_tell_how_to_reach_the_release_and_what_is_missing(
    minimal_values: dict[str, Any],
) -> None:
    notes = render(minimal_values).notes
    assert f"kubectl -n {NAMESPACE} port-forward svc/{FULLNAME} 8080:80" in notes
    assert f"logs job/{FULLNAME}-migrate" in notes
    assert "MTProto session: stored in the database" in notes
    assert "WARNING" not in notes
    unset = merged(minimal_values, {"secrets": {"adminApiToken": "", "telegramBotToken": ""}})
    notes = render(unset).notes
    assert "secrets.adminApiToken is empty" in notes
    assert "secrets.telegramBotToken is empty" in notes
    ingress = render(VALUE_SETS["ingress-values"]).notes
    assert "https://stats.example.com/" in ingress


def test_the_network_policy_is_optional_and_covers_every_pod_of_the_release(
    minimal_values: dict[str, Any],
) -> None:
    assert render(minimal_values).of_kind("NetworkPolicy") == []
    rendered = render(merged(minimal_values, {"networkPolicy": {"enabled": True}}))
    (policy,) = rendered.of_kind("NetworkPolicy")
    spec = policy.body["spec"]
    # Ingress only to the app's port; egress left open when no egress rules are given.
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    selector = spec["podSelector"]["matchLabels"]
    pods = [m for m in rendered if m.kind in {"Deployment", "Job", "Pod"}]
    assert {m.kind for m in pods} == {"Deployment", "Job", "Pod"}
    for manifest in pods:
        labels = manifest.body["metadata"]["labels"]
        if manifest.kind != "Pod":
            labels = manifest.body["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), manifest.name

    hardened = render(VALUE_SETS["hardened-values"])
    (policy,) = hardened.of_kind("NetworkPolicy")
    spec = policy.body["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    # DNS and the release's own pods come first, then the operator's rules.
    assert spec["egress"][0]["ports"][0] == {"port": 53, "protocol": "UDP"}
    assert spec["egress"][1]["to"] == [{"podSelector": {"matchLabels": selector}}]
    assert {"port": 5432, "protocol": "TCP"} in spec["egress"][2]["ports"]
    assert spec["ingress"][0]["from"][0] == {"podSelector": {"matchLabels": selector}}
    image = containers(hardened.get("Deployment", FULLNAME))[0]
    assert image["image"].endswith("@" + VALUE_SETS["hardened-values"]["image"]["digest"])
    assert image["imagePullPolicy"] == "Always"
