"""deploy/compose: valid against the Compose Specification's JSON Schema, and in step
with what the service reads, serves and publishes on."""

import json
import re
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from contracts.topics import INBOUND_TOPICS, Topic
from services.lifecycle.adapters.kafka import min_insync_replicas
from tests.deploy.kustomize import split_image
from tests.deploy.leads_settings import (
    DEPLOY,
    KAFKA_CONNECTION_SETTINGS,
    ROOT,
    SCHEDULER_PATHS,
    SECRET_SETTINGS,
    TLS_DIR,
    duration,
    effective,
    served_paths,
    settings_from,
    unknown_settings,
)

COMPOSE = DEPLOY / "compose" / "compose.yaml"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
OBSERVABILITY = DEPLOY / "observability"
LEADS_SERVICES = ("serve", "scheduler")

Service = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services(compose: dict[str, Any]) -> dict[str, Service]:
    found: dict[str, Service] = compose["services"]
    return found


# `${NAME}`, `${NAME:-default}` (unset or empty: the default), `${NAME:?message}`
# (unset or empty: compose refuses to start, saying the message).
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::(?P<op>[-?])(?P<arg>[^}]*))?\}")

GIVEN_AT_START = {
    "LEADS_JWT_SECRET": "token-key-given-by-the-caller",
    "LEADS_CURSOR_SECRET": "cursor-key-given-by-the-caller",
    "LEADS_ERASURE_KEY": "erasure-key-kept-in-dot-env",
}
"""What deploy/README's start command (and the erasure key it has put in
deploy/compose/.env) gives compose; nothing else needs giving."""


def declared(service: Service) -> dict[str, str | None]:
    """The service's environment as written: None where a variable is passed on."""
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, please"
    return {name: None if value is None else str(value) for name, value in env.items()}


def environment(service: Service, given: Mapping[str, str] = GIVEN_AT_START) -> dict[str, str]:
    """The environment the container starts with when the caller's shell (or
    deploy/compose/.env) holds `given`: interpolated as compose does, and a variable
    declared without a value passed on only when given."""

    def interpolate(match: re.Match[str]) -> str:
        value = given.get(match["name"], "")
        if not value and match["op"] == "?":
            raise AssertionError(f"compose will not start: {match['arg']}")
        return match["arg"] if not value and match["op"] == "-" else value

    return {
        name: INTERPOLATION.sub(interpolate, value) if value is not None else given[name]
        for name, value in declared(service).items()
        if value is not None or name in given
    }


def bind_mounts(service: Service) -> dict[str, Path]:
    """Container path -> the file or folder of this repository mounted there."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def test_the_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(compose)
    ]
    assert errors == []


def test_every_leads_variable_is_a_setting_the_service_reads(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        assert unknown_settings(declared(service)) == [], name
        settings_from(environment(service))  # each value parses as the service parses it


def test_secrets_are_given_at_run_time_never_written_here(compose: dict[str, Any]) -> None:
    for name in LEADS_SERVICES:
        for setting, value in declared(services(compose)[name]).items():
            if setting not in SECRET_SETTINGS or value is None:  # None: passed on
                continue
            given = INTERPOLATION.fullmatch(value)
            assert given and given["name"] == setting, f"{name}: {setting} written in the file"
            if given["op"] == "-":
                # Only an address may have a default: the local replica set, no user.
                default = urlsplit(given["arg"])
                assert setting.endswith("_URI") and default.password is None, (name, setting)
    env = declared(services(compose)["serve"])
    # Compose refuses to start without the token key, without the cursor key (both
    # replicas, and a restarted one, accept the cursors either handed out), and
    # without the erasure key (the development default is public).
    for key in GIVEN_AT_START:
        given = INTERPOLATION.fullmatch(env[key] or "")
        assert given and given["op"] == "?", key


def test_the_stack_runs_as_is_on_its_own_kafka(compose: dict[str, Any]) -> None:
    kafka = services(compose)["kafka"]["environment"]
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    advertised = {
        address.removeprefix("//"): protocols[listener]
        for listener, address in (
            a.split(":", 1) for a in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
        )
    }
    for name in LEADS_SERVICES:
        # Started as deploy/README says, nothing else given: the broker's own
        # listener, with the protocol it speaks there.
        settings = settings_from(environment(services(compose)[name]))
        listener = advertised[settings.kafka_bootstrap_servers]
        assert settings.kafka_security_protocol == listener, name


def test_secured_clusters_are_set_from_the_callers_environment(compose: dict[str, Any]) -> None:
    """What deploy/README says to put in deploy/compose/.env for a secured Kafka or
    MongoDB reaches both processes (compose drops any variable it is not told to pass)."""
    for name in LEADS_SERVICES:
        service = services(compose)[name]
        for setting in sorted(KAFKA_CONNECTION_SETTINGS | {"LEADS_MONGODB_URI"}):
            env = environment(service, {**GIVEN_AT_START, setting: "given-by-the-caller"})
            assert env.get(setting) == "given-by-the-caller", (name, setting)
        # The TLS files those settings name, from deploy/compose/tls/, read-only.
        assert bind_mounts(service)[str(TLS_DIR)] == COMPOSE.parent / "tls", name
        assert f"./tls:{TLS_DIR}:ro" in service["volumes"], name


def test_secrets_and_tls_files_put_beside_the_stack_stay_out_of_git() -> None:
    for path in (".env", "tls/kafka/client.key", "tls/kafka/ca.pem", "tls/mongodb/ca.pem"):
        checked = subprocess.run(
            ["git", "check-ignore", "--quiet", str(COMPOSE.parent / path)], cwd=ROOT, check=False
        )
        assert checked.returncode == 0, f"git would commit deploy/compose/{path}"


def test_every_topic_is_created_as_the_service_expects(compose: dict[str, Any]) -> None:
    env = environment(services(compose)["serve"])
    topics = created_topics(services(compose)["kafka-topics"])
    prefix = effective(env, "LEADS_TOPIC_PREFIX")
    assert sorted(topics) == sorted(topic.named(prefix) for topic in Topic)
    partitions = int(effective(env, "LEADS_TOPIC_PARTITIONS"))
    # Co-keyed by lead id: the same partition count on every inbound topic.
    assert {topics[t.named(prefix)]["partitions"] for t in INBOUND_TOPICS} == {str(partitions)}
    replication = effective(env, "LEADS_TOPIC_REPLICATION_FACTOR")
    for name, topic in topics.items():
        assert topic["replication-factor"] == replication, name
        # As the service creates a missing topic: acks=all waits for this many.
        insync = min_insync_replicas(int(replication))
        assert int(topic["config"]["min.insync.replicas"]) == insync, name


def test_every_process_hashes_customers_with_the_one_erasure_key(
    compose: dict[str, Any],
) -> None:
    """Both processes build their MongoDB store with the key: a replica on another
    key would store hashes that no erasure finds."""
    for name in LEADS_SERVICES:
        settings = settings_from(environment(services(compose)[name]))
        key = GIVEN_AT_START["LEADS_ERASURE_KEY"]
        assert settings.erasure_key is not None, name
        assert settings.erasure_key.get_secret_value() == key, name


def test_privacy_requests_are_kept_as_long_as_the_other_inbound_topics(
    compose: dict[str, Any],
) -> None:
    """A MongoDB restore replays every inbound topic from before the backup: erasures
    done since must be replayed too, or the restore brings their data back."""
    topics = created_topics(services(compose)["kafka-topics"])
    retention = {topics[t.value]["config"]["retention.ms"] for t in INBOUND_TOPICS}
    assert len(retention) == 1, retention
    events = int(topics[Topic.EVENTS.value]["config"]["retention.ms"])
    assert int(topics[Topic.PRIVACY_REQUESTS.value]["config"]["retention.ms"]) >= events


def created_topics(service: Service) -> dict[str, dict[str, Any]]:
    """Each `create --topic ...` line of the script, with the arguments its
    `create` function adds."""
    (script,) = service["command"]
    (common,) = re.findall(r"--create --if-not-exists(.*?)\"\$\$@\"", script, re.S)
    topics: dict[str, dict[str, Any]] = {}
    for line in script.splitlines():
        if line.strip().startswith("create --"):
            args = shlex.split(common.replace("\\\n", " ")) + shlex.split(line)[1:]
            topic: dict[str, Any] = {"config": {}}
            for option, value in zip(args[::2], args[1::2], strict=True):
                if option == "--config":
                    key, _, setting = value.partition("=")
                    topic["config"][key] = setting
                else:
                    topic[option.removeprefix("--")] = value
            topics[topic["topic"]] = topic
    return topics


def test_images_carry_pinned_tags(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        _, tag = split_image(service["image"])
        assert tag not in (None, "latest"), f"{name}: {service['image']}"


def test_healthchecks_probe_what_the_processes_serve(compose: dict[str, Any]) -> None:
    paths = {"serve": served_paths(), "scheduler": SCHEDULER_PATHS}
    ports = {"serve": "LEADS_HTTP_PORT", "scheduler": "LEADS_SCHEDULER_HTTP_PORT"}
    for name in LEADS_SERVICES:
        service = services(compose)[name]
        (url,) = re.findall(r"http://[^'\"]+", " ".join(service["healthcheck"]["test"]))
        checked = urlsplit(url)
        assert checked.path in paths[name], name
        assert checked.port == int(effective(environment(service), ports[name])), name
        assert service["deploy"]["replicas"] == 2, name
    serve_check = " ".join(services(compose)["serve"]["healthcheck"]["test"])
    assert "/readyz" in serve_check, "serve is healthy once Kafka and MongoDB answer"


def test_services_start_once_what_they_need_is_ready(compose: dict[str, Any]) -> None:
    every = services(compose)
    for name, service in every.items():
        for needed, condition in service.get("depends_on", {}).items():
            state = condition["condition"]
            if state == "service_healthy":
                assert "healthcheck" in every[needed], f"{name} waits on {needed}'s health"
            if state == "service_completed_successfully":
                assert every[needed].get("restart") == "no", f"{name} waits for {needed} to end"
    for name in LEADS_SERVICES:
        assert every[name]["depends_on"] == {
            "kafka-topics": {"condition": "service_completed_successfully"},
            "mongodb": {"condition": "service_healthy"},
        }
    assert every["kafka-topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}


def test_mongodb_is_a_replica_set_the_service_can_use(compose: dict[str, Any]) -> None:
    mongodb = services(compose)["mongodb"]
    command = mongodb["command"]
    replica_set = command[command.index("--replSet") + 1]
    check = " ".join(mongodb["healthcheck"]["test"])
    assert f"rs.initiate({{_id: '{replica_set}'" in check
    for name in LEADS_SERVICES:
        uri = urlsplit(effective(environment(services(compose)[name]), "LEADS_MONGODB_URI"))
        assert uri.hostname == "mongodb" and f"replicaSet={replica_set}" in uri.query


def test_a_stopping_replica_drains_within_the_stop_grace_period(compose: dict[str, Any]) -> None:
    for name in LEADS_SERVICES:
        service = services(compose)[name]
        grace = duration(environment(service)["LEADS_SHUTDOWN_GRACE"])
        stop = re.fullmatch(r"(\d+)s", service["stop_grace_period"])
        assert stop and grace.total_seconds() < int(stop[1]), name


def test_mounted_files_and_the_build_context_exist(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {target}"
        if build := service.get("build"):
            context = COMPOSE.parent / build["context"]
            assert (context / "pyproject.toml").exists() and (
                context / build["dockerfile"]
            ).exists()


def test_prometheus_scrapes_every_replica_and_loads_the_alerts(compose: dict[str, Any]) -> None:
    every = services(compose)
    mounts = bind_mounts(every["prometheus"])
    (config_file,) = [a for a in every["prometheus"]["command"] if a.startswith("--config.file=")]
    config_path = mounts[config_file.removeprefix("--config.file=")]
    assert config_path == OBSERVABILITY / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    (rules,) = config["rule_files"]
    assert mounts[rules] == OBSERVABILITY / "alerts.yaml"
    ports = {"serve": "LEADS_HTTP_PORT", "scheduler": "LEADS_SCHEDULER_HTTP_PORT"}
    paths = {"serve": served_paths(), "scheduler": SCHEDULER_PATHS}
    scraped = set()
    for job in config["scrape_configs"]:
        (discovery,) = job["dns_sd_configs"]
        (name,) = discovery["names"]
        assert discovery["port"] == int(effective(environment(every[name]), ports[name]))
        assert job["metrics_path"] in paths[name]
        scraped.add(name)
    assert scraped == set(LEADS_SERVICES)
    assert "observability" in every["prometheus"]["profiles"]


def test_grafana_gets_the_datasource_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    mounts = bind_mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ]
    prometheus = urlsplit(datasource["url"])
    assert prometheus.hostname in services(compose) and prometheus.port == 9090
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "leads.yaml").read_text())[
        "providers"
    ]
    folder = provider["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    dashboards = mounts[folder]
    assert home.startswith(folder + "/")
    assert (dashboards / home.removeprefix(folder + "/")).exists()
    dashboard = json.loads((dashboards / "leads.json").read_text())
    used = {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel}
    assert used == {datasource["uid"]}


def test_the_state_topic_is_kept_by_key_and_the_others_by_time(compose: dict[str, Any]) -> None:
    topics = created_topics(services(compose)["kafka-topics"])
    for name, topic in topics.items():
        policy = topic["config"].get("cleanup.policy", "delete")
        assert (policy == "compact") == (name == Topic.STATE.value), name
        assert ("retention.ms" in topic["config"]) == (policy == "delete"), name
