"""Shared fixtures: real Kafka and MongoDB servers, started once per session.

`LEADS_TEST_SERVERS` picks them:
- `embedded` (default): Tansu and SecantusDB as child processes (no Docker needed);
- `containers`: Apache Kafka 4.1 (KRaft) and a MongoDB 8 replica set in Docker
  containers (tests/containers.py); `containers-sasl-ssl`: the same, Kafka reached
  over SASL_SSL (SCRAM-SHA-512). Without a Docker engine the tests skip, saying so;
- `external`: the servers named by `LEADS_KAFKA_BOOTSTRAP_SERVERS` and `LEADS_MONGODB_URI`.
Each test gets its own topic prefix and database on them.
"""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.dev_servers import Servers, embedded_servers
from services.lifecycle.adapters.mongo import connect
from services.lifecycle.settings import Settings
from tests.secured_servers import Certificates, SecuredMongo, make_certificates, secured_mongodb
from tests.servers import CONTAINERS, container_servers, isolated_settings, servers_choice


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


@pytest.fixture
def settings(servers: Servers) -> Settings:
    return isolated_settings(servers)


@pytest.fixture
async def mongo(settings: Settings) -> AsyncIterator[object]:
    client = connect(settings.mongodb_uri)
    yield client
    await client.drop_database(settings.mongodb_database)
    await client.close()


# --- secured servers (TLS, SCRAM), for the tests of secured connections -------------


@pytest.fixture(scope="module")
def secured_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("secured")


@pytest.fixture(scope="module")
def certs(secured_folder: Path) -> Certificates:
    return make_certificates(secured_folder / "certs")


@pytest.fixture(scope="module")
def scram_mongodb(certs: Certificates, secured_folder: Path) -> Iterator[SecuredMongo]:
    """SecantusDB with a SCRAM user, behind a TLS proxy."""
    with secured_mongodb(certs, secured_folder / "mongodb", secured_folder) as server:
        yield server
