"""The servers the tests run on, chosen by `LEADS_TEST_SERVERS` (see conftest.py), and
settings that keep each test apart on them. A plain module: tests, fixtures and the
benchmarks import it (not a conftest)."""

import contextlib
import functools
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from services.dev_servers import Servers, free_port
from services.lifecycle.settings import Settings

if TYPE_CHECKING:
    from tests.containers import ContainerCluster, KafkaSecurity

NO_DOCKER = "no Docker engine answers here (testcontainers needs one)"
CONTAINERS: "dict[str, KafkaSecurity]" = {
    "containers": "PLAINTEXT",
    "containers-sasl-ssl": "SASL_SSL",
}
"""The LEADS_TEST_SERVERS values that start containers, and how their Kafka is reached."""


def servers_choice() -> str:
    return os.environ.get("LEADS_TEST_SERVERS", "embedded")


@functools.cache
def docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def container_cluster(security: "KafkaSecurity" = "PLAINTEXT") -> Iterator["ContainerCluster"]:
    """Kafka and MongoDB containers, or a skip that says why there are none."""
    if not docker_available():
        pytest.skip(f"Kafka and MongoDB in containers: {NO_DOCKER}")
    from tests.containers import container_cluster as started  # testcontainers only here

    with started(security) as cluster:
        yield cluster


@contextlib.contextmanager
def container_servers(security: "KafkaSecurity" = "PLAINTEXT") -> Iterator[Servers]:
    with container_cluster(security) as cluster:
        yield cluster.servers


def isolated_settings(servers: Servers, kind: str = "test") -> Settings:
    """Settings naming a topic prefix, a database and a consumer group of their own."""
    tag = uuid.uuid4().hex[:10]
    return Settings(
        **{
            **servers.settings(),
            "mongodb_database": f"{kind}_{tag}",
            "topic_prefix": f"{kind}{tag}.",
            "consumer_group": f"lifecycle-{tag}",
            "topic_partitions": 3,
            "instance_id": f"{kind}-{tag}",
            "relay_poll_interval": "PT0.2S",
            "relay_lease": "PT3S",
            "early_action_grace": "PT3S",
            "http_port": free_port(),
            "scheduler_http_port": 0,
            "jwt_secret": uuid.uuid4().hex,
            "erasure_key": uuid.uuid4().hex,
        }
    )
