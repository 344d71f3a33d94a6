"""The Kubernetes manifests in ``deploy/k8s``: every overlay renders with the pinned kustomize
(``deploy/k8s/tools.sh``), every document validates offline against the Kubernetes API
schemas (kubernetes-validate, strict: an unknown or misspelt field is an error), and the
rendered objects keep the contract the processes depend on: the right subcommand per
Deployment, probes on the ports the processes serve, resources, the restricted security
context, secrets only by reference, a grace period covering the drain, and a disruption
budget, network policy and scrape configuration for every process.

Rendering needs Go the first time (kustomize is built from source, then cached in
``deploy/k8s/.bin/``); the module is skipped, saying so, only when Go is missing.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from orderflow.settings import ENV_PREFIX, Settings

pytestmark = pytest.mark.timeout(900)  # the first render may build kustomize (about a minute)

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
TOOLS = K8S / "tools.sh"

# The oldest Kubernetes these manifests claim to support, and the newest whose schemas
# kubernetes-validate ships (pinned in pyproject.toml).
KUBERNETES_VERSIONS = ("1.30", "1.37")

OVERLAYS = sorted(path.name for path in (K8S / "overlays").iterdir() if path.is_dir())
# Components rendered on top of an overlay by a kustomization the test writes itself.
COMPOSED = {"prod+erp-http": ("prod", "erp-http")}
RENDERS = [*OVERLAYS, *COMPOSED]

SECRET_NAME = "orderflow-secrets"
IMAGE = "ghcr.io/orderflow/orderflow"

COMMANDS = {
    "webhook": ["orderflow", "webhook"],
    "poller": ["orderflow", "poller"],
    "enricher": ["orderflow", "enricher"],
    "erp-sync": ["orderflow", "consume", "erp-sync"],
    "stock-restore": ["orderflow", "consume", "stock-restore"],
    "auto-cancel": ["orderflow", "consume", "auto-cancel"],
}
JOB_COMMANDS = {"migrate": ["orderflow", "migrate"], "topics": ["orderflow", "topics"]}
CONSUMERS = ("erp-sync", "stock-restore", "auto-cancel")

# What each workload may reach, by the NetworkPolicy that grants it (name without prefix).
_CORE = {"dns", "egress-kafka", "egress-schema-registry", "egress-database"}
EGRESS = {
    "webhook": _CORE,
    "poller": _CORE | {"egress-shopee"},
    "enricher": _CORE | {"egress-shopee"},
    "erp-sync": _CORE,
    "stock-restore": _CORE | {"egress-shopee"},
    "auto-cancel": _CORE | {"egress-shopee"},
    "migrate": {"dns", "egress-database"},
    "topics": {"dns", "egress-kafka", "egress-schema-registry"},
}
COMPONENT_EGRESS = {"erp-http": {"erp-sync": {"egress-erp"}}}

# Env var names that hold secrets: they must come from the Secret, never a literal value.
SECRET_LIKE = re.compile(r"(_KEY|_PASSWORD|_TOKEN|DATABASE_URL)$")

# Kinds without a schema in kubernetes-validate (custom resources): shape-checked here and
# checked field by field in their own tests below.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}

# The port each process serves /healthz, /readyz and /metrics on, by container port name,
# and the setting that chooses its number. The Jobs serve nothing.
SERVES = {name: ("metrics", "ORDERFLOW_METRICS_PORT") for name in COMMANDS}
SERVES["webhook"] = ("http", "ORDERFLOW_WEBHOOK_PORT")


def _drain_seconds(component: str, config: dict[str, str]) -> float:
    """Seconds a process may need after SIGTERM, on top of any preStop sleep: the webhook's
    uvicorn drain (``timeout_graceful_shutdown=5`` in producers/webhook.py) and the flush of
    the last acknowledgements; a consumer's or the enricher's batch in hand, allowed three
    Shopee calls at the client timeout."""

    def setting(name: str) -> float:
        return float(config.get(ENV_PREFIX + name.upper(), Settings.model_fields[name].default))

    if component == "webhook":
        return 5 + setting("webhook_ack_timeout_seconds")
    return 3 * setting("shopee_timeout_seconds")


# --- rendering ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomize() -> str:
    result = subprocess.run(
        ["bash", str(TOOLS), "kustomize"], capture_output=True, text=True, timeout=800
    )
    if result.returncode == 3:
        pytest.skip(f"Go is not installed, so kustomize cannot be built: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def rendered(
    kustomize: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[dict[str, Any]]]:
    """Every render's documents, built once per module."""
    renders: dict[str, list[dict[str, Any]]] = {}
    for name in RENDERS:
        if name in COMPOSED:
            overlay, component = COMPOSED[name]
            directory = tmp_path_factory.mktemp(name.replace("+", "-"))
            relative = os.path.relpath(K8S, directory)  # kustomize refuses absolute paths
            namespace = _namespace_of(renders[overlay])  # overlays come first in RENDERS
            (directory / "kustomization.yaml").write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "kustomize.config.k8s.io/v1beta1",
                        "kind": "Kustomization",
                        "namespace": namespace,
                        "resources": [f"{relative}/overlays/{overlay}"],
                        "components": [f"{relative}/components/{component}"],
                    }
                )
            )
            renders[name] = _build(kustomize, directory)
        else:
            renders[name] = _build(kustomize, K8S / "overlays" / name)
    return renders


def _build(kustomize: str, directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kustomize, "build", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kustomize build {directory} failed:\n{result.stderr}"
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert docs, f"kustomize build {directory} rendered nothing"
    return docs


def _namespace_of(docs: list[dict[str, Any]]) -> str:
    (namespace,) = [doc["metadata"]["name"] for doc in docs if doc["kind"] == "Namespace"]
    return str(namespace)


# --- helpers over rendered documents ------------------------------------------------------


def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def _component(doc: dict[str, Any]) -> str:
    return str(doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


def _deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {_component(doc): doc for doc in _of_kind(docs, "Deployment")}


def _workloads(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployments and Jobs by process name."""
    return {_component(doc): doc for doc in docs if doc["kind"] in ("Deployment", "Job")}


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _config(docs: list[dict[str, Any]]) -> dict[str, str]:
    (config_map,) = _of_kind(docs, "ConfigMap")
    return dict(config_map["data"])


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels and matchExpressions) matches."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    return dict(doc["spec"]["template"]["metadata"]["labels"])


def _quantity(value: str | int) -> float:
    """A CPU or memory quantity as a number (cores or bytes)."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _pre_stop_seconds(container: dict[str, Any]) -> float:
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if pre_stop is None:
        return 0.0
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, f"preStop is not a sleep: {command}"
    return float(command[1])


render = pytest.mark.parametrize("render", RENDERS)


# --- schemas ------------------------------------------------------------------------------


@render
def test_every_document_validates_against_the_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    for doc in rendered[render]:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            # No schema ships for custom resources: the shape here, the fields in their tests.
            assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}, name
            assert doc["metadata"]["name"] and isinstance(doc["spec"], dict) and doc["spec"], name
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(part) for part in exc.path)
                pytest.fail(
                    f"{render}: {name} is invalid for Kubernetes {version}: {path}: {exc.message}"
                )
            except kubernetes_validate.SchemaNotFoundError:
                pytest.fail(f"{render}: no schema for {name} ({doc['apiVersion']}): a new kind?")


def test_the_validator_rejects_a_misspelt_field(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The schema check is not vacuous: a typo in a rendered Deployment is caught."""
    broken = copy.deepcopy(_deployments(rendered["prod"])["webhook"])
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


@render
def test_every_namespaced_object_lands_in_the_overlay_namespace(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    namespace = _namespace_of(docs)
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]
    assert {doc["kind"] for doc in docs} >= {"Namespace", "ConfigMap", "ServiceAccount"}


# --- the processes ------------------------------------------------------------------------


@render
def test_each_process_runs_its_orderflow_subcommand_from_the_one_image(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    deployments = _deployments(docs)
    assert {name: _container(doc)["command"] for name, doc in deployments.items()} == COMMANDS
    jobs = {_component(doc): _container(doc)["command"] for doc in _of_kind(docs, "Job")}
    assert jobs == JOB_COMMANDS
    images = {_container(doc)["image"] for doc in _workloads(docs).values()}
    assert len(images) == 1, f"one image for every process, got {images}"
    (image,) = images
    repository, _, tag = image.rpartition(":")
    assert repository == IMAGE
    if render == "dev":
        assert tag == "dev", image
    else:
        assert tag not in ("dev", "latest"), f"{render} runs a released tag, got {image}"


@render
def test_probes_ask_each_process_on_the_port_it_serves(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    config = _config(docs)
    for name, doc in _deployments(docs).items():
        container = _container(doc)
        port_name, setting = SERVES[name]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports == {port_name: int(config[setting])}, name
        for probe, path in (
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ):
            assert container[probe]["httpGet"] == {"path": path, "port": port_name}, (name, probe)


@render
def test_every_container_has_requests_and_limits(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    for name, doc in _workloads(rendered[render]).items():
        resources = _container(doc)["resources"]
        for resource in ("cpu", "memory"):
            request = _quantity(resources["requests"][resource])
            limit = _quantity(resources["limits"][resource])
            assert 0 < request <= limit, (name, resource, resources)
        # A Python process with its Kafka and database clients needs more than this.
        assert _quantity(resources["limits"]["memory"]) >= 256 * 2**20, name


@render
def test_every_pod_runs_restricted(rendered: dict[str, list[dict[str, Any]]], render: str) -> None:
    for name, doc in _workloads(rendered[render]).items():
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        # Service links would set ORDERFLOW_WEBHOOK_PORT=tcp://... from the webhook's Service.
        assert pod["enableServiceLinks"] is False, name
        context = _container(doc)["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["runAsNonRoot"] is True, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        mounts = {mount["mountPath"]: mount["name"] for mount in _container(doc)["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name
    for namespace in _of_kind(rendered[render], "Namespace"):
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@render
def test_secrets_come_only_from_the_operators_secret(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    assert not _of_kind(docs, "Secret"), "no Secret is committed: the operator creates it"
    assert not [key for key in _config(docs) if SECRET_LIKE.search(key)]
    fields = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    assert set(_config(docs)) <= fields, "every ConfigMap key must be a setting"
    documented = (K8S / "README.md").read_text()
    for name, doc in _workloads(docs).items():
        container = _container(doc)
        assert [source for source in container["envFrom"] if "configMapRef" not in source] == []
        for variable in container.get("env", []):
            assert variable["name"] in fields, (name, variable["name"])
            if SECRET_LIKE.search(variable["name"]):
                assert "value" not in variable, (name, variable["name"])
                reference = variable["valueFrom"]["secretKeyRef"]
                assert reference["name"] == SECRET_NAME, (name, variable)
                assert reference["key"] == variable["name"], (name, variable)
                assert f"`{reference['key']}`" in documented, f"{reference['key']} not in README"


@render
def test_the_settings_of_each_render_are_valid(
    rendered: dict[str, list[dict[str, Any]]], render: str, clean_env: pytest.MonkeyPatch
) -> None:
    for key, value in _config(rendered[render]).items():
        clean_env.setenv(key, value)
    # Stand-ins for what the Secret holds, so cross-field rules (SASL needs a password) apply.
    clean_env.setenv("ORDERFLOW_KAFKA_SASL_PASSWORD", "from-the-secret")
    settings = Settings(_env_file=None)
    assert settings.webhook_public_url and settings.shopee_partner_id is not None
    # The defaults point at 127.0.0.1, which in a pod is the pod itself.
    assert "127.0.0.1" not in settings.kafka_bootstrap_servers + settings.schema_registry_url


@render
def test_the_grace_period_covers_the_pre_stop_sleep_and_the_drain(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    config = _config(docs)
    for name, doc in _deployments(docs).items():
        pod = doc["spec"]["template"]["spec"]
        needed = _pre_stop_seconds(_container(doc)) + _drain_seconds(name, config)
        assert pod["terminationGracePeriodSeconds"] >= needed, (name, needed)
    # The webhook keeps answering while it leaves the Service's endpoints.
    assert _pre_stop_seconds(_container(_deployments(docs)["webhook"])) >= 5


# --- availability and scaling -------------------------------------------------------------


@render
def test_every_deployment_has_one_disruption_budget_that_never_blocks_a_drain(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    budgets = _of_kind(docs, "PodDisruptionBudget")
    for name, doc in _deployments(docs).items():
        selecting = [b for b in budgets if _selects(b["spec"]["selector"], _pod_labels(doc))]
        assert len(selecting) == 1, (name, [b["metadata"]["name"] for b in selecting])
        assert selecting[0]["spec"].get("maxUnavailable", 0) >= 1, name
    assert len(budgets) == len(_deployments(docs))


@render
def test_the_webhook_scales_with_its_autoscaler_alone(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    (autoscaler,) = _of_kind(docs, "HorizontalPodAutoscaler")
    webhook = _deployments(docs)["webhook"]
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": webhook["metadata"]["name"],
    }
    assert 1 <= autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]
    assert "replicas" not in webhook["spec"], "a fixed count would fight the autoscaler"


def test_dev_runs_one_of_everything(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["dev"]
    for name, doc in _deployments(docs).items():
        if name != "webhook":
            assert doc["spec"]["replicas"] == 1, name
    (autoscaler,) = _of_kind(docs, "HorizontalPodAutoscaler")
    assert autoscaler["spec"]["minReplicas"] == 1


@pytest.mark.parametrize("render", [name for name in RENDERS if name.startswith("prod")])
def test_prod_runs_several_replicas_where_that_is_safe(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    partitions = int(_config(docs)["ORDERFLOW_TOPIC_PARTITIONS"])
    scaled = {so["spec"]["scaleTargetRef"]["name"] for so in _of_kind(docs, "ScaledObject")}
    for name, doc in _deployments(docs).items():
        if name == "webhook":
            (autoscaler,) = _of_kind(docs, "HorizontalPodAutoscaler")
            assert autoscaler["spec"]["minReplicas"] >= 2
        elif doc["metadata"]["name"] not in scaled:
            assert 2 <= doc["spec"]["replicas"] <= partitions, name
        # Memory is guaranteed, not overcommitted.
        resources = _container(doc)["resources"]
        assert resources["requests"]["memory"] == resources["limits"]["memory"], name


def test_keda_scales_the_consumers_on_their_own_groups(
    rendered: dict[str, list[dict[str, Any]]], clean_env: pytest.MonkeyPatch
) -> None:
    docs = rendered["prod-keda"]
    config = _config(docs)
    for key, value in config.items():
        clean_env.setenv(key, value)
    clean_env.setenv("ORDERFLOW_KAFKA_SASL_PASSWORD", "from-the-secret")
    settings = Settings(_env_file=None)
    expected = {
        "enricher": (settings.enricher_group_id, settings.topic_notices),
        **{
            name: (settings.consumer_group_prefix + name, settings.topic_orders)
            for name in CONSUMERS
        },
    }
    deployments = {doc["metadata"]["name"]: doc for doc in _of_kind(docs, "Deployment")}
    authentications = {doc["metadata"]["name"] for doc in _of_kind(docs, "TriggerAuthentication")}
    scaled = {}
    for scaled_object in _of_kind(docs, "ScaledObject"):
        target = deployments[scaled_object["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "a fixed count would fight KEDA"
        spec = scaled_object["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= settings.topic_partitions
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["bootstrapServersFromEnv"] in config
        assert trigger["authenticationRef"]["name"] in authentications
        scaled[_component(target)] = (
            trigger["metadata"]["consumerGroup"],
            trigger["metadata"]["topic"],
        )
    assert scaled == expected


# --- traffic ------------------------------------------------------------------------------


@render
def test_only_the_push_endpoint_is_exposed_at_the_registered_url(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    (ingress,) = _of_kind(docs, "Ingress")
    (service,) = _of_kind(docs, "Service")
    webhook = _deployments(docs)["webhook"]
    assert _selects({"matchLabels": service["spec"]["selector"]}, _pod_labels(webhook))
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["http"]["paths"] == [
        {
            "path": "/shopee/push",
            "pathType": "Exact",
            "backend": {"service": {"name": service["metadata"]["name"], "port": {"name": "http"}}},
        }
    ]
    url = urlsplit(_config(docs)["ORDERFLOW_WEBHOOK_PUBLIC_URL"])
    assert (url.hostname, url.path) == (rule["host"], "/shopee/push")
    tls_hosts = {host for entry in ingress["spec"].get("tls", []) for host in entry["hosts"]}
    if render.startswith("prod"):
        assert url.scheme == "https" and rule["host"] in tls_hosts
    if url.scheme == "https":
        assert rule["host"] in tls_hosts


@render
def test_network_policies_admit_only_what_each_process_needs(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    policies = _of_kind(docs, "NetworkPolicy")
    expected = {name: set(needs) for name, needs in EGRESS.items()}
    for component in render.split("+")[1:]:
        for name, extra in COMPONENT_EGRESS[component].items():
            expected[name] |= extra
    for policy in policies:
        for rule in policy["spec"].get("egress", []) + policy["spec"].get("ingress", []):
            peers = rule.get("to", rule.get("from"))
            assert peers and rule.get("ports"), f"{policy['metadata']['name']}: any peer or port"

    for name, doc in _workloads(docs).items():
        labels = _pod_labels(doc)
        selecting = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        default_deny = [
            p for p in selecting if not p["spec"].get("egress") and not p["spec"].get("ingress")
        ]
        assert default_deny and set(default_deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        granted = {p["metadata"]["name"].removeprefix("orderflow-"): p["spec"] for p in selecting}
        egress = {policy for policy, spec in granted.items() if spec.get("egress")}
        assert egress == expected[name], name
        ingress = {
            port["port"]
            for spec in granted.values()
            for rule in spec.get("ingress", [])
            for port in rule["ports"]
        }
        assert ingress == ({SERVES[name][0]} if name in SERVES else set()), name

    shopee = next(p for p in policies if p["metadata"]["name"] == "orderflow-egress-shopee")
    (rule,) = shopee["spec"]["egress"]
    assert [port["port"] for port in rule["ports"]] == [443]
    (block,) = [peer["ipBlock"] for peer in rule["to"]]
    excepted = [ipaddress.ip_network(cidr) for cidr in block["except"]]
    for private in ("10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254"):
        assert any(ipaddress.ip_address(private) in net for net in excepted), private


@render
def test_prometheus_scrapes_every_process_by_name(
    rendered: dict[str, list[dict[str, Any]]], render: str
) -> None:
    docs = rendered[render]
    monitors = _of_kind(docs, "PodMonitor")
    for name, doc in _deployments(docs).items():
        selecting = [m for m in monitors if _selects(m["spec"]["selector"], _pod_labels(doc))]
        assert len(selecting) == 1, name
        (monitor,) = selecting
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/component"
        endpoints = [(e["port"], e["path"]) for e in monitor["spec"]["podMetricsEndpoints"]]
        assert endpoints == [(SERVES[name][0], "/metrics")], name
