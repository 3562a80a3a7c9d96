"""deploy/k8s: the base and the production overlay, rendered as `kustomize build` does,
validated against the Kubernetes OpenAPI schemas and KEDA's CRD, and checked
against what the service really reads and serves."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from contracts.topics import INBOUND_TOPICS
from tests.deploy import kustomize
from tests.deploy.leads_settings import (
    DEPLOY,
    DOCKERFILE,
    SCHEDULER_PATHS,
    SECRET_SETTINGS,
    TLS_DIR,
    duration,
    effective,
    served_paths,
    settings_from,
    unknown_settings,
)

Manifest = dict[str, Any]

TARGETS = {
    "base": DEPLOY / "k8s" / "base",
    "production": DEPLOY / "k8s" / "overlays" / "production",
}
# The oldest Kubernetes the manifests support (the preStop sleep action is on by
# default from 1.30) and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
KEDA_CRD = Path(__file__).parent / "schemas" / "keda.sh_scaledobjects.yaml"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}

# KEDA's kafka scaler (v2.20): the parameters a TriggerAuthentication may give it
# (a misspelt one is ignored without a word), and its `tls` and `sasl` for each
# LEADS_KAFKA_SECURITY_PROTOCOL and LEADS_KAFKA_SASL_MECHANISM.
KEDA_KAFKA_AUTH_PARAMETERS = {"sasl", "tls", "username", "password", "ca", "cert", "key"}
KEDA_TLS = {
    "PLAINTEXT": "disable",
    "SASL_PLAINTEXT": "disable",
    "SSL": "enable",
    "SASL_SSL": "enable",
}
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}
# The settings naming what KEDA reads as each parameter of the same Secret.
KAFKA_CREDENTIAL_SETTINGS = {
    "LEADS_KAFKA_SASL_USERNAME": "username",
    "LEADS_KAFKA_SASL_PASSWORD": "password",
}
KAFKA_FILE_SETTINGS = {
    "LEADS_KAFKA_SSL_CAFILE": "ca",
    "LEADS_KAFKA_SSL_CERTFILE": "cert",
    "LEADS_KAFKA_SSL_KEYFILE": "key",
}

SERVE, SCHEDULER = "leads-serve", "leads-scheduler"
DEPLOYMENT_PORT_SETTING = {SERVE: "LEADS_HTTP_PORT", SCHEDULER: "LEADS_SCHEDULER_HTTP_PORT"}


@dataclass
class Rendered:
    name: str
    manifests: list[Manifest]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, name: str) -> Manifest:
        (found,) = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        return found

    @property
    def config(self) -> dict[str, str]:
        """The LEADS_* settings every container gets from the ConfigMap."""
        return dict(self.one("ConfigMap", "leads-config")["data"])

    def pod(self, deployment: str) -> Manifest:
        spec: Manifest = self.one("Deployment", deployment)["spec"]["template"]["spec"]
        return spec

    def container(self, deployment: str) -> Manifest:
        containers: list[Manifest] = self.pod(deployment)["containers"]
        (container,) = containers
        return container

    def secret_refs(self, deployment: str) -> dict[str, Manifest]:
        """Setting -> the `secretKeyRef` it is read from."""
        return {
            env["name"]: env["valueFrom"]["secretKeyRef"]
            for env in self.container(deployment).get("env", [])
            if "secretKeyRef" in env.get("valueFrom", {})
        }

    def environment(self, deployment: str) -> dict[str, str]:
        """The LEADS_* variables the container starts with; those from the Secret or
        the pod itself as placeholders."""
        env = dict(self.config)
        for variable in self.container(deployment).get("env", []):
            env[variable["name"]] = variable.get("value", f"<{variable['name']} at run time>")
        return env

    def secret_files(self, deployment: str) -> dict[str, tuple[str, str]]:
        """Path in the container -> (Secret, key) of each file mounted from a Secret."""
        volumes = {volume["name"]: volume for volume in self.pod(deployment)["volumes"]}
        files = {}
        for mount in self.container(deployment).get("volumeMounts", []):
            secret = volumes[mount["name"]].get("secret")
            if secret is not None:
                # Named keys only: the whole Secret would put the MongoDB URI, the
                # token key and the passwords on disk as well.
                for item in secret["items"]:
                    path = PurePosixPath(mount["mountPath"]) / item["path"]
                    files[str(path)] = secret["secretName"], item["key"]
        return files

    @property
    def keda_secret_refs(self) -> dict[str, tuple[str, str]]:
        """KEDA parameter -> (Secret, key) it is read from."""
        (auth,) = self.of_kind("TriggerAuthentication")
        return {
            ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]
        }


@pytest.fixture(scope="module", params=sorted(TARGETS))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return Rendered(request.param, kustomize.build(TARGETS[request.param]))


def test_every_manifest_validates_against_the_kubernetes_schemas(rendered: Rendered) -> None:
    core = [m for m in rendered.manifests if m["kind"] not in KEDA_KINDS]
    assert {m["kind"] for m in core} >= {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    for manifest in core:
        for version in KUBERNETES_VERSIONS:
            # strict: an unknown (misspelt) field is an error, not silently dropped.
            kubernetes_validate.validate(manifest, version, strict=True)


def test_the_scaled_object_validates_against_the_keda_crd(rendered: Rendered) -> None:
    crd = yaml.safe_load(KEDA_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    (scaled,) = rendered.of_kind("ScaledObject")
    assert scaled["apiVersion"] == f"{crd['spec']['group']}/v1alpha1"
    jsonschema.Draft4Validator(schema).validate(scaled)


def test_the_trigger_authentication_is_one_keda_reads_and_every_trigger_uses(
    rendered: Rendered,
) -> None:
    """No package on the registries reachable here ships KEDA's TriggerAuthentication
    CRD (tests/deploy/schemas/README.md), so its shape is checked here: a misspelt
    field or parameter is dropped by KEDA without a word, and the scaler then reads
    the lag without credentials."""
    (auth,) = rendered.of_kind("TriggerAuthentication")
    (scaled,) = rendered.of_kind("ScaledObject")
    assert auth["apiVersion"] == scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert set(auth) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(auth["spec"]) == {"secretTargetRef"}
    refs = auth["spec"]["secretTargetRef"]
    for ref in refs:
        assert set(ref) == {"parameter", "name", "key"}, ref
        assert all(isinstance(value, str) and value for value in ref.values()), ref
        assert ref["parameter"] in KEDA_KAFKA_AUTH_PARAMETERS, ref
    assert len({ref["parameter"] for ref in refs}) == len(refs), "one source per parameter"
    name = auth["metadata"]["name"]
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["authenticationRef"]["name"] == name, trigger["name"]
        assert trigger["authenticationRef"].get("kind", "TriggerAuthentication") == auth["kind"]
    # A TriggerAuthentication serves ScaledObjects of its own namespace only.
    assert auth["metadata"].get("namespace") == scaled["metadata"].get("namespace")


def test_keda_reaches_kafka_as_the_service_does(rendered: Rendered) -> None:
    protocol = effective(rendered.config, "LEADS_KAFKA_SECURITY_PROTOCOL")
    mechanism = effective(rendered.config, "LEADS_KAFKA_SASL_MECHANISM")
    sasl = KEDA_SASL[mechanism] if protocol.startswith("SASL_") else "none"
    (scaled,) = rendered.of_kind("ScaledObject")
    for trigger in scaled["spec"]["triggers"]:
        metadata = trigger["metadata"]
        assert metadata.get("tls", "disable") == KEDA_TLS[protocol], trigger["name"]
        assert metadata.get("sasl", "none") == sasl, trigger["name"]


def test_kafka_credentials_and_tls_files_are_the_ones_keda_reads(rendered: Rendered) -> None:
    keda = rendered.keda_secret_refs
    for deployment in (SERVE, SCHEDULER):
        refs = rendered.secret_refs(deployment)
        for setting, parameter in KAFKA_CREDENTIAL_SETTINGS.items():
            assert (refs[setting]["name"], refs[setting]["key"]) == keda[parameter], setting
            # Optional: a Secret without Kafka credentials still starts (PLAINTEXT).
            assert refs[setting].get("optional") is True, setting
        files = rendered.secret_files(deployment)
        for setting, parameter in KAFKA_FILE_SETTINGS.items():
            # The file the pods are given is the PEM KEDA reads, under one folder
            # in compose and here (deploy/README names the paths once).
            (path,) = [path for path, source in files.items() if source == keda[parameter]]
            assert PurePosixPath(path).is_relative_to(TLS_DIR), path
            if setting in rendered.config:
                assert rendered.config[setting] == path, setting
        for volume in rendered.pod(deployment)["volumes"]:
            if "secret" in volume:
                # A Secret without TLS keys still starts (PLAINTEXT, SASL over TLS
                # with the system's CAs).
                assert volume["secret"].get("optional") is True, volume["name"]


def test_static_membership_is_never_set_on_a_deployment(rendered: Rendered) -> None:
    """One id shared by replicas fences them off each other; one per pod name changes
    on every rollout, leaving the old member's partitions idle until its session
    times out. Only stable pod names (a StatefulSet) may carry it (deploy/README)."""
    assert "LEADS_KAFKA_GROUP_INSTANCE_ID" not in rendered.config
    for deployment in rendered.of_kind("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {env["name"] for env in container.get("env", [])}
            assert "LEADS_KAFKA_GROUP_INSTANCE_ID" not in names, deployment["metadata"]["name"]


def _strict(schema: Any) -> Any:
    """The CRD schema rejecting unknown fields, as `kubectl apply` (strict field
    validation) does, instead of pruning a misspelt field without a word."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {
        key: {name: _strict(sub) for name, sub in value.items()}
        if key == "properties"
        else _strict(value)
        for key, value in schema.items()
    }
    open_ended = (
        "additionalProperties" in schema or "x-kubernetes-preserve-unknown-fields" in schema
    )
    if "properties" in schema and not open_ended:
        strict["additionalProperties"] = False
    return strict


def test_every_leads_variable_is_a_setting_the_service_reads(rendered: Rendered) -> None:
    names = set(rendered.config)
    for deployment in (SERVE, SCHEDULER):
        names |= {env["name"] for env in rendered.container(deployment).get("env", [])}
    (scaled,) = rendered.of_kind("ScaledObject")
    for trigger in scaled["spec"]["triggers"]:
        names |= {v for k, v in trigger["metadata"].items() if k.endswith("FromEnv")}
    assert unknown_settings(names) == []
    for deployment in (SERVE, SCHEDULER):
        # Each value parses as the service parses it, the Secret's included.
        settings_from(rendered.environment(deployment))
    config = rendered.config
    assert duration(config["LEADS_SHUTDOWN_GRACE"]) > duration("PT0S")
    assert 0 < int(config["LEADS_SCHEDULER_HTTP_PORT"]) < 65536


def test_secrets_come_from_the_secret_never_from_the_config_map(rendered: Rendered) -> None:
    assert not SECRET_SETTINGS & set(rendered.config)
    from_secret = {
        deployment: set(rendered.secret_refs(deployment)) for deployment in (SERVE, SCHEDULER)
    }
    both = from_secret[SERVE] & from_secret[SCHEDULER]
    assert {"LEADS_MONGODB_URI", "LEADS_KAFKA_SASL_PASSWORD"} <= both
    # `leads serve` refuses to start without a token key.
    assert from_secret[SERVE] & {"LEADS_JWT_SECRET", "LEADS_JWT_PUBLIC_KEY"}
    # Replicas behind one Service sign page cursors with one shared key.
    assert "LEADS_CURSOR_SECRET" in from_secret[SERVE]
    # Both processes hash customers with one key: never optional (the default is
    # a public development key), and the same Secret key for both.
    erasure = [rendered.secret_refs(d)["LEADS_ERASURE_KEY"] for d in (SERVE, SCHEDULER)]
    assert erasure[0] == erasure[1] and not erasure[0].get("optional"), erasure


def test_probes_point_at_paths_and_ports_the_processes_serve(rendered: Rendered) -> None:
    serve = rendered.container(SERVE)
    assert serve["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert serve["readinessProbe"]["httpGet"]["path"] == "/readyz"
    paths = {SERVE: served_paths(), SCHEDULER: SCHEDULER_PATHS}
    for deployment, setting in DEPLOYMENT_PORT_SETTING.items():
        container = rendered.container(deployment)
        port = int(effective(rendered.config, setting))
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] in paths[deployment], (deployment, probe)
            assert _container_port(container, get["port"]) == port, (deployment, probe)
        scrape = rendered.one("Deployment", deployment)["spec"]["template"]["metadata"]
        assert int(scrape["annotations"]["prometheus.io/port"]) == port
        assert scrape["annotations"]["prometheus.io/path"] in paths[deployment]


def _container_port(container: Manifest, port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def test_a_stopping_replica_drains_within_the_termination_grace(rendered: Rendered) -> None:
    grace = duration(rendered.config["LEADS_SHUTDOWN_GRACE"]).total_seconds()
    for deployment in (SERVE, SCHEDULER):
        pod = rendered.pod(deployment)
        pre_stop = rendered.container(deployment).get("lifecycle", {}).get("preStop", {})
        pause = pre_stop.get("sleep", {}).get("seconds", 0)
        assert grace + pause < pod["terminationGracePeriodSeconds"], deployment


def test_pods_run_restricted_with_bounded_resources(rendered: Rendered) -> None:
    # The image's numeric user, which runAsNonRoot can verify.
    (image_user,) = re.findall(r"^USER (\d+):(\d+)$", DOCKERFILE.read_text(), re.M)
    for deployment in (SERVE, SCHEDULER):
        pod = rendered.pod(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        user = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
        assert tuple(map(str, user)) == image_user
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        container = rendered.container(deployment)
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
        assert "emptyDir" in volume
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, deployment
        _, tag = kustomize.split_image(container["image"])
        assert tag not in (None, "latest"), container["image"]


def test_selectors_select_the_pods_they_mean(rendered: Rendered) -> None:
    labels = {
        name: rendered.one("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        for name in (SERVE, SCHEDULER)
    }

    def selects(selector: dict[str, str]) -> set[str]:
        return {name for name, pod in labels.items() if selector.items() <= pod.items()}

    for name in (SERVE, SCHEDULER):
        deployment = rendered.one("Deployment", name)
        assert selects(deployment["spec"]["selector"]["matchLabels"]) == {name}
        assert selects(rendered.one("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"])
        policy = rendered.one("NetworkPolicy", name)
        assert selects(policy["spec"]["podSelector"]["matchLabels"]) == {name}
    (service,) = rendered.of_kind("Service")
    assert selects(service["spec"]["selector"]) == {SERVE}
    (port,) = service["spec"]["ports"]
    read_api = int(effective(rendered.config, "LEADS_HTTP_PORT"))
    assert _container_port(rendered.container(SERVE), port["targetPort"]) == read_api


def test_the_service_scales_on_consumer_lag_up_to_the_partition_count(
    rendered: Rendered,
) -> None:
    (scaled,) = rendered.of_kind("ScaledObject")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == SERVE
    assert spec["scaleTargetRef"]["envSourceContainerName"] == rendered.container(SERVE)["name"]
    prefix = effective(rendered.config, "LEADS_TOPIC_PREFIX")
    triggers = spec["triggers"]
    assert {t["type"] for t in triggers} == {"kafka"}
    assert sorted(t["metadata"]["topic"] for t in triggers) == sorted(
        topic.named(prefix) for topic in INBOUND_TOPICS
    )
    for trigger in triggers:
        metadata = trigger["metadata"]
        # Read from the container's own settings: one source for both.
        assert metadata["bootstrapServersFromEnv"] == "LEADS_KAFKA_BOOTSTRAP_SERVERS"
        assert metadata["consumerGroupFromEnv"] == "LEADS_CONSUMER_GROUP"
        assert {"LEADS_KAFKA_BOOTSTRAP_SERVERS", "LEADS_CONSUMER_GROUP"} <= set(rendered.config)
        assert metadata.get("allowIdleConsumers", "false") == "false"
    partitions = int(effective(rendered.config, "LEADS_TOPIC_PARTITIONS"))
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions


def test_network_policies_let_through_what_the_processes_use(rendered: Rendered) -> None:
    kafka_ports = {
        int(server.rsplit(":", 1)[1])
        for server in effective(rendered.config, "LEADS_KAFKA_BOOTSTRAP_SERVERS").split(",")
    }
    for name, setting in DEPLOYMENT_PORT_SETTING.items():
        spec = rendered.one("NetworkPolicy", name)["spec"]
        assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
        ingress = set(_ports(spec["ingress"]))
        assert ingress == {("TCP", int(effective(rendered.config, setting)))}, name
        egress = set(_ports(spec["egress"]))
        assert {("UDP", 53), ("TCP", 53)} <= egress, name
        assert {("TCP", port) for port in kafka_ports} <= egress, name


def _ports(rules: list[Manifest]) -> Iterator[tuple[str, int]]:
    for rule in rules:
        for port in rule["ports"]:
            yield port["protocol"], port["port"]
