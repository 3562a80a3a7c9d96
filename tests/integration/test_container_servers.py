"""The testcontainers path: real Apache Kafka (KRaft) and a MongoDB replica set.

The whole suite runs on them with LEADS_TEST_SERVERS=containers; this test
checks the path itself, and is skipped where no Docker engine answers."""

import asyncio
import uuid

import pytest

from services.lifecycle.adapters.kafka import ensure_topics
from services.lifecycle.adapters.mongo import connect
from tests.conftest import container_servers, docker_available

pytestmark = [
    pytest.mark.containers,
    pytest.mark.skipif(not docker_available(), reason="no Docker engine answers on this machine"),
]


def test_containers_give_kafka_topics_and_mongodb_transactions() -> None:
    async def exercise(bootstrap: str, uri: str) -> None:
        topic = f"probe-{uuid.uuid4().hex[:8]}"
        assert await ensure_topics(bootstrap, [topic], 2, 1) == [topic]
        client = connect(uri)
        async with client.start_session() as session, await session.start_transaction():
            await client["probe"]["t"].insert_one({"x": 1}, session=session)
        assert await client["probe"]["t"].count_documents({}) == 1
        await client.close()

    with container_servers() as servers:
        asyncio.run(exercise(servers.kafka_bootstrap_servers, servers.mongodb_uri))
