"""The Helm chart: lints and renders with real Helm 3 and 4, passes the Kubernetes schemas, and
maps every `WEBHOOKS_*` setting 1:1."""

from __future__ import annotations

import base64
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information
import pytest
import yaml

from dispatcher.setting_values import parse_duration
from dispatcher.settings import FIELDS
from tests.deploy.conftest import CHART, REPO, Helm, RenderError

PRODUCTION = CHART / "ci" / "production-values.yaml"
EXISTING_SECRET = CHART / "ci" / "existing-secret-values.yaml"
SETTINGS = [field.env for field in FIELDS]
SECRET_SETTINGS = {"WEBHOOKS_DATABASE_URL", "WEBHOOKS_ENCRYPTION_KEY"}
# The chart's deliberate departures from the service defaults, each one required in a pod.
CHART_DEFAULTS = {"WEBHOOKS_HTTP_HOST": "0.0.0.0"}  # the kubelet probes the pod IP
KEY = base64.b64encode(bytes(range(32))).decode()
REQUIRED = {
    "config.WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": "kafka-0:9092,kafka-1:9092",
    "config.WEBHOOKS_ENCRYPTION_KEY": KEY,
    "config.WEBHOOKS_DATABASE_URL": "postgresql://webhooks:pw@db:5432/webhooks",
}
# Chart.yaml's kubeVersion floor and the newest schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.25.0", "1.37.0"]


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def production() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PRODUCTION.read_text())
    return loaded


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def is_hook(doc: dict[str, Any]) -> bool:
    return "helm.sh/hook" in doc["metadata"].get("annotations", {})


def release_secrets(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc for doc in of_kind(docs, "Secret") if not is_hook(doc)]


def hook_secrets(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc for doc in of_kind(docs, "Secret") if is_hook(doc)]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(doc)["containers"]
    assert len(containers) == 1
    first: dict[str, Any] = containers[0]
    return first


def secret_refs(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """env name → (Secret name, key) for every secretKeyRef of the container."""
    return {
        env["name"]: (
            env["valueFrom"]["secretKeyRef"]["name"],
            env["valueFrom"]["secretKeyRef"]["key"],
        )
        for env in container(doc).get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }


# -- values.yaml against dispatcher.settings.FIELDS -------------------------------------------


def test_values_config_maps_every_setting_in_order() -> None:
    """values.yaml's `config` has exactly the service's settings, in FIELDS order."""
    assert list(values()["config"]) == SETTINGS


def test_values_config_defaults_are_the_service_defaults() -> None:
    """Every `config` default is the service's own default, except the listed pod necessities."""
    expected = {field.env: CHART_DEFAULTS.get(field.env, field.default) for field in FIELDS}
    assert values()["config"] == expected


def test_values_config_comments_are_the_settings_docs() -> None:
    """The comment above each `config` key starts with that setting's FIELDS documentation."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    start = lines.index("config:")
    comments: dict[str, str] = {}
    block: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        if line.startswith("  # "):
            block.append(line.removeprefix("  # "))
        elif match := re.match(r"  (WEBHOOKS_\w+):", line):
            comments[match.group(1)] = " ".join(block)
            block = []
    assert set(comments) == set(SETTINGS)
    undocumented = [f.env for f in FIELDS if not comments[f.env].startswith(f.doc)]
    assert undocumented == []


def test_values_schema_types_every_setting_as_a_documented_string() -> None:
    """values.schema.json accepts exactly the settings, as strings, with their documentation."""
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["config"]
    assert schema["additionalProperties"] is False
    assert schema["properties"] == {f.env: {"type": "string", "description": f.doc} for f in FIELDS}


def test_chart_app_version_is_the_service_version() -> None:
    """Chart.yaml's appVersion (the default image tag) is pyproject.toml's version."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]


# -- lint and schemas, on every Helm ----------------------------------------------------------


@pytest.mark.parametrize(
    "values_files",
    [(), (PRODUCTION,), (EXISTING_SECRET,)],
    ids=["defaults", "production", "existing-secret"],
)
def test_chart_lints_strictly(any_helm: Helm, values_files: tuple[Path, ...]) -> None:
    """`helm lint --strict` passes with the default and the CI values files."""
    done = any_helm.lint(*values_files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("kubernetes", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values_file", [PRODUCTION, EXISTING_SECRET], ids=lambda p: p.stem)
def test_rendered_manifests_match_the_kubernetes_schemas(
    any_helm: Helm, values_file: Path, kubernetes: str
) -> None:
    """Every rendered core object, hooks included, passes the strict Kubernetes schema."""
    docs = any_helm.template(values_file)
    problems = []
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # CRDs: test_service_monitor_* and test_prometheus_rule_* check them
        try:
            kubernetes_validate.validate(doc, kubernetes, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(
                f"{doc['kind']}/{doc['metadata']['name']} {list(exc.absolute_path)}: {exc.message}"
            )
    assert problems == []
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap", "Job"}


# -- refusals ---------------------------------------------------------------------------------


def test_defaults_refuse_to_render_without_kafka_and_key(helm: Helm) -> None:
    """Like `webhooks serve`, the chart refuses to run without Kafka servers and a key."""
    with pytest.raises(RenderError) as refused:
        helm.template()
    assert "config.WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS is required" in str(refused.value)
    assert "config.WEBHOOKS_ENCRYPTION_KEY (or secrets.existingSecret) is required" in str(
        refused.value
    )


def test_sqlite_refuses_more_than_one_replica(helm: Helm) -> None:
    """A sqlite:// store with two replicas or autoscaling is refused: SQLite is one node only."""
    overrides = {**REQUIRED, "config.WEBHOOKS_DATABASE_URL": "sqlite:///webhooks.db"}
    for extra in ({"replicaCount": 2}, {"replicaCount": 1, "autoscaling.enabled": True}):
        with pytest.raises(RenderError, match="is one node only"):
            helm.template(overrides={**overrides, **extra})
    docs = helm.template(overrides={**overrides, "replicaCount": 1})
    assert only(docs, "Deployment")["spec"]["replicas"] == 1


@pytest.mark.parametrize(
    ("keys", "message"),
    [("not-base64", "key #1 is not"), (f"{KEY},{KEY[:20]}", "key #2 is not")],
    ids=["garbage", "short-second-key"],
)
def test_malformed_encryption_key_is_refused(helm: Helm, keys: str, message: str) -> None:
    """Each key of WEBHOOKS_ENCRYPTION_KEY must be standard base64 of 32 bytes."""
    with pytest.raises(RenderError, match=message):
        helm.template(overrides={**REQUIRED, "config.WEBHOOKS_ENCRYPTION_KEY": keys})


def test_misspelt_setting_is_refused_by_the_values_schema(helm: Helm) -> None:
    """A `config` key that is not a setting fails the values schema instead of being ignored."""
    with pytest.raises(RenderError, match="WEBHOOKS_RETRY_SHEDULE"):
        helm.template(overrides={**REQUIRED, "config.WEBHOOKS_RETRY_SHEDULE": "1s"})


def test_unquoted_number_is_refused_by_the_values_schema(helm: Helm) -> None:
    """Settings are strings: a YAML number (which Helm may print as 1e+06) is refused."""
    with pytest.raises(RenderError, match="WEBHOOKS_MAX_EVENT_BYTES"):
        helm.template(overrides={**REQUIRED, "config.WEBHOOKS_MAX_EVENT_BYTES": 1000000})


# -- settings: ConfigMap, Secret, existingSecret ----------------------------------------------


def test_configmap_holds_every_setting_except_the_secret_ones(helm: Helm) -> None:
    """The ConfigMap carries each non-secret setting with its value from the values files."""
    configured = {**values()["config"], **production()["config"]}
    configmap = next(
        d
        for d in of_kind(helm.template(PRODUCTION), "ConfigMap")
        if "WEBHOOKS_LEASE" in d.get("data", {})
    )
    expected = {name: configured[name] for name in SETTINGS if name not in SECRET_SETTINGS}
    assert configmap["data"] == expected


def test_secret_holds_the_database_url_and_encryption_key(helm: Helm) -> None:
    """The chart's Secret carries exactly the two credentials, and the pods read them from it."""
    docs = helm.template(PRODUCTION)
    [secret] = release_secrets(docs)
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {name: production()["config"][name] for name in SECRET_SETTINGS}
    name = secret["metadata"]["name"]
    deployment = only(docs, "Deployment")
    assert secret_refs(deployment) == {n: (name, n) for n in SECRET_SETTINGS}
    assert (
        container(deployment)["envFrom"][0]["configMapRef"]["name"]
        == deployment["metadata"]["name"]
    )


def test_existing_secret_replaces_the_chart_secret(helm: Helm) -> None:
    """With secrets.existingSecret no Secret is rendered and both pods read the named keys."""
    docs = helm.template(
        EXISTING_SECRET,
        overrides={"secrets.databaseUrlKey": "db-url", "secrets.encryptionKeyKey": "aes-keys"},
    )
    assert of_kind(docs, "Secret") == []
    expected = {
        "WEBHOOKS_DATABASE_URL": ("webhooks-credentials", "db-url"),
        "WEBHOOKS_ENCRYPTION_KEY": ("webhooks-credentials", "aes-keys"),
    }
    assert secret_refs(only(docs, "Deployment")) == expected
    assert secret_refs(only(docs, "Job")) == expected
    annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" not in annotations


def test_checksums_roll_the_pods_when_settings_change(helm: Helm) -> None:
    """A changed setting changes checksum/config; a changed credential changes checksum/secret."""

    def checksums(**overrides: object) -> tuple[str, str]:
        docs = helm.template(PRODUCTION, overrides=overrides)
        annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/config"], annotations["checksum/secret"]

    config, secret = checksums()
    debug_config, debug_secret = checksums(**{"config.WEBHOOKS_LOG_LEVEL": "debug"})
    assert debug_config != config
    assert debug_secret == secret
    rotated_config, rotated_secret = checksums(**{"config.WEBHOOKS_ENCRYPTION_KEY": f"{KEY},{KEY}"})
    assert rotated_config == config
    assert rotated_secret != secret


# -- the pod ----------------------------------------------------------------------------------


def test_pods_run_hardened_as_the_image_user(helm: Helm) -> None:
    """Service and migration pods: the image's UID, read-only root, no privileges, /tmp writable."""
    user = re.search(r"^USER (\d+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert user is not None
    uid = int(user.group(1))
    docs = helm.template(PRODUCTION)
    for doc in (only(docs, "Deployment"), only(docs, "Job")):
        pod = pod_spec(doc)
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": uid,
            "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert pod["automountServiceAccountToken"] is False
        assert container(doc)["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        }
        mounts = {m["mountPath"]: m["name"] for m in container(doc)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        tmp = mounts["/tmp"]  # noqa: S108 - the mount path under test, not a temporary file
        assert "emptyDir" in volumes[tmp]
        assert "emptyDir" in volumes[mounts["/var/lib/webhooks"]]


def test_ports_and_probes_follow_webhooks_http_port(helm: Helm) -> None:
    """WEBHOOKS_HTTP_PORT drives the container port, probes, scrape port and Service target."""
    docs = helm.template(PRODUCTION, overrides={"config.WEBHOOKS_HTTP_PORT": "9090"})
    deployment = only(docs, "Deployment")
    main = container(deployment)
    assert main["ports"] == [{"name": "http", "containerPort": 9090, "protocol": "TCP"}]
    probes = {
        kind: main[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": {"path": "/healthz", "port": "http"},
        "livenessProbe": {"path": "/healthz", "port": "http"},
        "readinessProbe": {"path": "/readyz", "port": "http"},
    }
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations["prometheus.io/scrape"],
        annotations["prometheus.io/port"],
        annotations["prometheus.io/path"],
    ) == (
        "true",
        "9090",
        "/metrics",
    )
    service = only(docs, "Service")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("shutdown_timeout", ["20s", "2m", "1500ms", "45", "0.5h"])
def test_termination_grace_period_outlasts_the_drain(helm: Helm, shutdown_timeout: str) -> None:
    """The grace period is preStop sleep + WEBHOOKS_SHUTDOWN_TIMEOUT (rounded up) + margin."""
    docs = helm.template(
        PRODUCTION, overrides={"config.WEBHOOKS_SHUTDOWN_TIMEOUT": shutdown_timeout}
    )
    pod = pod_spec(only(docs, "Deployment"))
    chart = values()
    drain = math.ceil(parse_duration(shutdown_timeout))
    assert (
        pod["terminationGracePeriodSeconds"]
        == chart["preStopSleepSeconds"] + drain + chart["terminationGraceMarginSeconds"]
    )
    assert container(only(docs, "Deployment"))["lifecycle"]["preStop"]["exec"]["command"] == [
        "sleep",
        str(chart["preStopSleepSeconds"]),
    ]


def test_explicit_termination_grace_period_must_outlast_the_drain(helm: Helm) -> None:
    """An explicit grace period within preStop + drain is refused; a longer one is used as given."""
    with pytest.raises(
        RenderError, match=r"must exceed preStopSleepSeconds \+ WEBHOOKS_SHUTDOWN_TIMEOUT \(25 s\)"
    ):
        helm.template(PRODUCTION, overrides={"terminationGracePeriodSeconds": 25})
    docs = helm.template(PRODUCTION, overrides={"terminationGracePeriodSeconds": 90})
    assert pod_spec(only(docs, "Deployment"))["terminationGracePeriodSeconds"] == 90


# -- the migration hook -----------------------------------------------------------------------


def test_migration_job_runs_before_install_and_upgrade(helm: Helm) -> None:
    """`webhooks migrate` runs as a pre-install/pre-upgrade hook, after its own Secret."""
    docs = helm.template(PRODUCTION)
    job, deployment = only(docs, "Job"), only(docs, "Deployment")
    [hook_secret] = hook_secrets(docs)
    for hook in (job, hook_secret):
        assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    weight = int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert weight < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    migrate = container(job)
    assert migrate["args"] == ["migrate"]
    assert migrate["image"] == container(deployment)["image"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    # Hooks run before the release's objects exist: nothing may reference them.
    assert "serviceAccountName" not in pod_spec(job)
    assert "envFrom" not in migrate
    assert [env["name"] for env in migrate["env"]] == sorted(
        set(SETTINGS) - SECRET_SETTINGS
    ) + sorted(SECRET_SETTINGS)
    assert set(secret_refs(job).values()) == {
        (hook_secret["metadata"]["name"], n) for n in SECRET_SETTINGS
    }
    assert hook_secret["data"] == release_secrets(docs)[0]["data"]


def test_migration_job_can_be_turned_off(helm: Helm) -> None:
    """migration.enabled false renders neither the Job nor its hook Secret."""
    docs = helm.template(PRODUCTION, overrides={"migration.enabled": False})
    assert of_kind(docs, "Job") == []
    assert hook_secrets(docs) == []


# -- scaling and disruption -------------------------------------------------------------------


def test_autoscaler_owns_the_replica_count(helm: Helm) -> None:
    """With autoscaling the Deployment sets no replicas and the HPA targets it; without, no HPA."""
    docs = helm.template(PRODUCTION)
    deployment, hpa = only(docs, "Deployment"), only(docs, "HorizontalPodAutoscaler")
    assert "replicas" not in deployment["spec"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    docs = helm.template(PRODUCTION, overrides={"autoscaling.enabled": False})
    assert of_kind(docs, "HorizontalPodAutoscaler") == []
    assert only(docs, "Deployment")["spec"]["replicas"] == values()["replicaCount"]


def test_disruption_budget_selects_the_pods(helm: Helm) -> None:
    """The PDB (policy/v1) selects the Deployment's pods; minAvailable replaces maxUnavailable."""
    docs = helm.template(PRODUCTION)
    pdb, deployment = only(docs, "PodDisruptionBudget"), only(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    docs = helm.template(PRODUCTION, overrides={"podDisruptionBudget.minAvailable": "50%"})
    spec = only(docs, "PodDisruptionBudget")["spec"]
    assert ("minAvailable" in spec, "maxUnavailable" in spec, spec.get("minAvailable")) == (
        True,
        False,
        "50%",
    )


# -- monitoring -------------------------------------------------------------------------------


def test_monitoring_resources_are_off_by_default(helm: Helm) -> None:
    """By default: no ServiceMonitor, PrometheusRule or dashboard, only scrape annotations."""
    docs = helm.template(overrides={**REQUIRED})
    assert of_kind(docs, "ServiceMonitor") == []
    assert of_kind(docs, "PrometheusRule") == []
    assert [
        d["metadata"]["name"]
        for d in of_kind(docs, "ConfigMap")
        if "dashboard" in d["metadata"]["name"]
    ] == []
    annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"


def test_service_monitor_scrapes_the_service_http_port(helm: Helm) -> None:
    """The ServiceMonitor selects the chart's Service and scrapes /metrics on its `http` port."""
    docs = helm.template(PRODUCTION)
    monitor, service = only(docs, "ServiceMonitor"), only(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["payments"]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_prometheus_rule_carries_the_alert_rules_file(helm: Helm) -> None:
    """The PrometheusRule's spec is files/prometheus/alerts.yaml, unchanged."""
    rule = only(helm.template(PRODUCTION), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == yaml.safe_load(
        (CHART / "files" / "prometheus" / "alerts.yaml").read_text()
    )


def test_dashboard_configmap_carries_the_dashboard_for_the_grafana_sidecar(helm: Helm) -> None:
    """The dashboard ConfigMap holds files/grafana/layers-webhooks.json under the sidecar label."""
    docs = helm.template(PRODUCTION)
    [dashboard] = [d for d in of_kind(docs, "ConfigMap") if "layers-webhooks.json" in d["data"]]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "files" / "grafana" / "layers-webhooks.json").read_text())
    assert json.loads(dashboard["data"]["layers-webhooks.json"]) == shipped
