"""deploy/compose: valid against the Compose Specification's JSON Schema, and in step
with what the service reads, serves and publishes on."""

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from contracts.topics import INBOUND_TOPICS, Topic
from tests.deploy.kustomize import split_image
from tests.deploy.leads_settings import (
    DEPLOY,
    SCHEDULER_PATHS,
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


def environment(service: Service) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, please"
    return {name: str(value) for name, value in env.items()}


def bind_mounts(service: Service) -> dict[str, Path]:
    """Container path -> the file or folder of this repository mounted there."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def given_at_run_time(value: str) -> bool:
    """`${VAR:?message}`: compose takes it from the caller's environment."""
    return bool(re.fullmatch(r"\$\{\w+:\?[^}]*\}", value))


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
        env = environment(service)
        assert unknown_settings(env) == [], name
        settings_from({k: v for k, v in env.items() if not given_at_run_time(v)})
    env = environment(services(compose)["serve"])
    assert given_at_run_time(env["LEADS_JWT_SECRET"]), "no token key in the repository"
    # Both replicas (and a restarted one) accept the cursors either handed out.
    assert given_at_run_time(env["LEADS_CURSOR_SECRET"]), "no cursor key in the repository"


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
        assert int(topic["config"]["min.insync.replicas"]) <= int(replication), name


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
