"""Shared fixtures: real Kafka and MongoDB servers, started once per session.

`LEADS_TEST_SERVERS` picks them:
- `embedded` (default): Tansu and SecantusDB as child processes (no Docker needed);
- `containers`: testcontainers (Kafka in KRaft mode, a MongoDB replica set), needs Docker;
- `external`: the servers named by `LEADS_KAFKA_BOOTSTRAP_SERVERS` and `LEADS_MONGODB_URI`.
Each test gets its own topic prefix and database on them.
"""

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from services.dev_servers import Servers, embedded_servers, free_port
from services.lifecycle.adapters.mongo import connect
from services.lifecycle.settings import Settings


def docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def container_servers() -> Iterator[Servers]:
    if not docker_available():
        pytest.skip("LEADS_TEST_SERVERS=containers needs a Docker engine, and none answers here")
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    kafka = KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
    # Atlas Local is a one-node replica set, so transactions work.
    mongo = MongoDbContainer("mongodb/mongodb-atlas-local:8.0")
    with kafka, mongo:
        yield Servers(
            kafka_bootstrap_servers=kafka.get_bootstrap_server(),
            mongodb_uri=mongo.get_connection_url() + "/?directConnection=true",
        )


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    choice = os.environ.get("LEADS_TEST_SERVERS", "embedded")
    if choice == "external":
        yield Servers(
            kafka_bootstrap_servers=os.environ["LEADS_KAFKA_BOOTSTRAP_SERVERS"],
            mongodb_uri=os.environ["LEADS_MONGODB_URI"],
        )
    elif choice == "containers":
        with container_servers() as found:
            yield found
    else:
        with embedded_servers() as started:
            yield started


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
