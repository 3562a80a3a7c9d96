"""The container path (tests/containers.py): Apache Kafka 4.1 in KRaft mode, over
plaintext and over SASL_SSL with SCRAM-SHA-512, and a MongoDB 8 replica set.

The whole suite runs on them with LEADS_TEST_SERVERS=containers (or
containers-sasl-ssl); these tests check the path itself, and are skipped where no
Docker engine answers."""

import asyncio
import dataclasses
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic import SecretStr

from services.dev_servers import Servers
from services.lifecycle.adapters.kafka import KafkaPublisher, KafkaRecord, ensure_topics
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.mongo import connect
from services.lifecycle.adapters.refusals import Refused
from services.lifecycle.service_layer.ports import Refusal
from services.lifecycle.settings import Settings
from tests.servers import NO_DOCKER, container_servers, docker_available

pytestmark = [
    pytest.mark.containers,
    pytest.mark.skipif(not docker_available(), reason=f"Kafka and MongoDB containers: {NO_DOCKER}"),
]


def kafka_connection(bootstrap_servers: str, connection: dict[str, Any]) -> KafkaConnection:
    """How the service reaches Kafka with these settings."""
    return KafkaConnection.of(Settings(kafka_bootstrap_servers=bootstrap_servers, **connection))


async def topic_and_idempotent_send(connection: KafkaConnection) -> None:
    """A topic is created, and the idempotent producer (InitProducerId, which the
    embedded broker refuses) writes to it."""
    topic = f"probe-{uuid.uuid4().hex[:8]}"
    assert await ensure_topics(connection, [topic], 2, 1) == [topic]
    producer = AIOKafkaProducer(**connection.options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"probe", key=b"one-key")
    finally:
        await producer.stop()


async def replica_set_transaction(uri: str) -> None:
    client = connect(uri)
    try:
        hello = await client.admin.command("hello")
        assert hello.get("setName") and hello.get("isWritablePrimary"), hello
        version = (await client.admin.command("buildInfo"))["version"]
        assert version.startswith("8."), version
        probe = client[f"probe_{uuid.uuid4().hex[:8]}"]["t"]
        async with client.start_session() as session, await session.start_transaction():
            await probe.insert_one({"x": 1}, session=session)
        assert await probe.count_documents({}) == 1
    finally:
        await client.close()


def test_containers_give_kafka_topics_and_mongodb_transactions() -> None:
    async def exercise(servers: Servers) -> None:
        kafka = kafka_connection(servers.kafka_bootstrap_servers, servers.connection)
        await topic_and_idempotent_send(kafka)
        await replica_set_transaction(servers.mongodb_uri)

    with container_servers() as servers:
        asyncio.run(exercise(servers))


def test_sasl_ssl_takes_the_scram_login_and_refuses_a_wrong_password() -> None:
    from tests.containers import kafka_container  # testcontainers only where it runs

    async def exercise(connection: KafkaConnection) -> None:
        await topic_and_idempotent_send(connection)
        wrong = dataclasses.replace(connection, sasl_password=SecretStr("not-the-password"))
        with pytest.raises(Refused, match="SASL SCRAM-SHA-512 login"):
            await ensure_topics(wrong, [f"refused-{uuid.uuid4().hex[:8]}"], 1, 1)

    with kafka_container("SASL_SSL") as kafka:
        asyncio.run(exercise(kafka_connection(kafka.bootstrap_servers, kafka.connection)))


async def topic_with(connection: KafkaConnection, **config: str) -> str:
    """A one-partition topic with these configs (Kafka checks them; Tansu ignores them)."""
    topic = f"probe-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**connection.options())
    await admin.start()
    try:
        answer = await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=config)])
        assert [e[1] for e in answer.topic_errors] == [0], answer.topic_errors
    finally:
        await admin.close()
    return topic


def test_a_row_the_broker_refuses_spends_no_later_send() -> None:
    """Review row 2: after a record the broker refuses for good (over the topic's
    max.message.bytes), aiokafka's idempotent producer refuses every later record of
    the partition (OutOfOrderSequenceNumber) until restart; the publisher sets the
    refused one aside and a new producer sends the rest, each once."""

    async def exercise(connection: KafkaConnection) -> None:
        topic = await topic_with(connection, **{"max.message.bytes": "1024"})
        kafka = KafkaPublisher(connection, compression="none", timeout_s=30)
        await kafka.start()
        try:
            rows = [KafkaRecord(topic, b"k", [], value) for value in (b"a", b"x" * 2048, b"c")]
            assert await kafka.publish(rows) == [Refusal(1, "MessageSizeTooLargeError")]
            assert await kafka.publish([KafkaRecord(topic, b"k", [], b"d")]) == []
        finally:
            await kafka.stop()
        assert await values_of(connection, topic) == [b"a", b"c", b"d"]

    with container_servers() as servers:
        asyncio.run(exercise(kafka_connection(servers.kafka_bootstrap_servers, servers.connection)))


def test_a_publish_too_few_replicas_acknowledge_gives_up_in_time() -> None:
    """Review row 5: with fewer in-sync replicas than min.insync.replicas, the
    idempotent producer retries for ever; the publish gives up at its timeout (the
    rows are then the relay's) and says it cannot publish."""

    async def exercise(connection: KafkaConnection) -> None:
        topic = await topic_with(connection, **{"min.insync.replicas": "2"})  # one broker
        kafka = KafkaPublisher(connection, timeout_s=3)
        await kafka.start()
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(TimeoutError):
                await kafka.publish([KafkaRecord(topic, b"k", [], b"a")])
            assert asyncio.get_running_loop().time() - started < 10
            assert not kafka.publishing
        finally:
            await asyncio.wait_for(kafka.stop(grace_s=2), 10)  # the stop is bounded too

    with container_servers() as servers:
        asyncio.run(exercise(kafka_connection(servers.kafka_bootstrap_servers, servers.connection)))


async def values_of(connection: KafkaConnection, topic: str) -> list[bytes]:
    reader = AIOKafkaConsumer(topic, **connection.options(), auto_offset_reset="earliest")
    await reader.start()
    try:
        batch = await reader.getmany(timeout_ms=5000)
        return [record.value for records in batch.values() for record in records]
    finally:
        await reader.stop()


def test_the_state_topic_keeps_each_leads_latest_state_once_compacted() -> None:
    """`leads.state` as the service creates it (COMPACTED), its segments rolled fast for
    the test: Kafka's cleaner drops every state of a lead but its latest."""

    async def exercise(connection: KafkaConnection) -> None:
        topic = f"state-{uuid.uuid4().hex[:8]}"
        assert await ensure_topics(connection, [topic], 1, 1, compacted=[topic]) == [topic]
        admin = AIOKafkaAdminClient(**connection.options())
        await admin.start()
        try:
            fast = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01"}
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, fast)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(**connection.options(), acks="all")
        await producer.start()
        try:
            for version in range(1, 6):
                for lead in (b"lead-1", b"lead-2"):
                    await producer.send_and_wait(topic, b"v%d" % version, key=lead)
            deadline = asyncio.get_running_loop().time() + 90
            while len(kept := await leads_states(connection, topic)) > 2:
                assert asyncio.get_running_loop().time() < deadline, kept
                # Past segment.ms, a record rolls the segment: the cleaner may take it.
                await producer.send_and_wait(topic, b"v6", key=b"lead-3")
        finally:
            await producer.stop()
        assert kept == [(b"lead-1", b"v5"), (b"lead-2", b"v5")]  # each lead's latest

    with container_servers() as servers:
        asyncio.run(exercise(kafka_connection(servers.kafka_bootstrap_servers, servers.connection)))


async def leads_states(connection: KafkaConnection, topic: str) -> list[tuple[bytes, bytes]]:
    """The records of lead-1 and lead-2 the topic still holds, in order."""
    reader = AIOKafkaConsumer(topic, **connection.options(), auto_offset_reset="earliest")
    await reader.start()
    try:
        batch = await reader.getmany(timeout_ms=5000)
        records = [record for records in batch.values() for record in records]
        return [(r.key, r.value) for r in records if r.key in (b"lead-1", b"lead-2")]
    finally:
        await reader.stop()
