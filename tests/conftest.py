"""Shared fixtures: real Kafka and MongoDB servers, started once per session.

`LEADS_TEST_SERVERS` picks them:
- `embedded` (default): Tansu and SecantusDB as child processes (no Docker needed);
- `containers`: Apache Kafka 4.1 (KRaft) and a MongoDB 8 replica set in Docker
  containers (tests/containers.py); `containers-sasl-ssl`: the same, Kafka reached
  over SASL_SSL (SCRAM-SHA-512). Without a Docker engine the tests skip, saying so;
- `external`: the servers named by `LEADS_KAFKA_BOOTSTRAP_SERVERS` and `LEADS_MONGODB_URI`.
Each test gets its own topic prefix and database on them.
"""

import contextlib
import functools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from services.dev_servers import Servers, embedded_servers, free_port
from services.lifecycle.adapters.mongo import connect
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


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    choice = servers_choice()
    if choice == "external":
        yield Servers(
            kafka_bootstrap_servers=os.environ["LEADS_KAFKA_BOOTSTRAP_SERVERS"],
            mongodb_uri=os.environ["LEADS_MONGODB_URI"],
        )
    elif choice in CONTAINERS:
        with container_servers(CONTAINERS[choice]) as found:
            yield found
    elif choice == "embedded":
        with embedded_servers() as started:
            yield started
    else:
        pytest.fail(
            f"LEADS_TEST_SERVERS={choice!r}: say embedded, external or one of {sorted(CONTAINERS)}"
        )


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
        }
    )


@pytest.fixture
def settings(servers: Servers) -> Settings:
    return isolated_settings(servers)


@pytest.fixture
async def mongo(settings: Settings) -> AsyncIterator[object]:
    client = connect(settings.mongodb_uri)
    yield client
    await client.drop_database(settings.mongodb_database)
    await client.close()
