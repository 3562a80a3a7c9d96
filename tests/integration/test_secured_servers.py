"""The secured test servers do what they claim, seen by plain clients: Kafka over TLS
(with and without client certificates) through the proxy, Tansu refusing SCRAM
credentials, and SecantusDB with TLS and SCRAM-SHA-256."""

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from confluent_kafka import Producer
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from tests.secured_servers import (
    Certificates,
    SecuredKafka,
    SecuredMongo,
    TlsProxy,
    as_servers,
    sasl_kafka,
    tls_kafka,
)

DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def kafka(certs: Certificates, secured_folder: Path) -> Iterator[SecuredKafka]:
    with tls_kafka(certs, secured_folder) as started:
        yield started


@pytest.fixture(scope="module")
def mutual_kafka(certs: Certificates, secured_folder: Path) -> Iterator[SecuredKafka]:
    with tls_kafka(certs, secured_folder, mutual=True) as started:
        yield started


@pytest.fixture(scope="module")
def scram_kafka(secured_folder: Path) -> Iterator[SecuredKafka]:
    with sasl_kafka(secured_folder) as started:
        yield started


def context_of(connection: dict[str, Any]) -> ssl.SSLContext:
    """The client TLS context a `connection` description asks for."""
    context = ssl.create_default_context(cafile=connection["kafka_ssl_cafile"])
    if "kafka_ssl_certfile" in connection:
        context.load_cert_chain(connection["kafka_ssl_certfile"], connection["kafka_ssl_keyfile"])
    return context


async def round_trip(bootstrap: str, context: ssl.SSLContext) -> bytes:
    """Publish one record to a new topic over TLS and read it back."""
    topic = f"secured-{uuid.uuid4().hex[:8]}"
    tls: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "security_protocol": "SSL",
        "ssl_context": context,
    }
    producer = AIOKafkaProducer(**tls)
    async with contextlib.AsyncExitStack() as stack:
        await producer.start()
        stack.push_async_callback(producer.stop)
        await producer.send_and_wait(topic, b"over tls")
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", fetch_max_wait_ms=50, **tls)
    async with contextlib.AsyncExitStack() as stack:
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        record = await asyncio.wait_for(consumer.getone(), DEADLINE_S)
    return bytes(record.value)


async def refused_at_start(producer: AIOKafkaProducer) -> None:
    try:
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await producer.start()
    finally:
        await producer.stop()


async def test_kafka_over_tls_round_trips_when_the_ca_is_trusted(kafka: SecuredKafka) -> None:
    assert await round_trip(kafka.bootstrap_servers, context_of(kafka.connection)) == b"over tls"


async def test_kafka_over_tls_refuses_a_client_trusting_another_ca(
    kafka: SecuredKafka, certs: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    untrusting = ssl.create_default_context(cafile=certs.other_ca)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, security_protocol="SSL", ssl_context=untrusting
    )
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        await refused_at_start(producer)
    # aiokafka's exception names no cause: the TLS error is only in its log.
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


async def test_mutual_tls_refuses_a_client_without_a_certificate(
    mutual_kafka: SecuredKafka, certs: Certificates
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=mutual_kafka.bootstrap_servers,
        security_protocol="SSL",
        ssl_context=ssl.create_default_context(cafile=certs.ca),
    )
    await refused_at_start(producer)


async def test_mutual_tls_serves_a_client_with_a_certificate(mutual_kafka: SecuredKafka) -> None:
    context = context_of(mutual_kafka.connection)
    assert await round_trip(mutual_kafka.bootstrap_servers, context) == b"over tls"


async def test_the_proxy_serves_while_the_test_loop_is_blocked(kafka: SecuredKafka) -> None:
    """librdkafka's own threads, and its host name check, with this loop held by `flush`."""
    producer = Producer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "security.protocol": "SSL",
            "ssl.ca.location": str(kafka.connection["kafka_ssl_cafile"]),
        }
    )
    errors: list[Any] = []
    producer.produce(
        f"blocked-{uuid.uuid4().hex[:8]}",
        b"x",
        on_delivery=lambda error, _: errors.append(error) if error else None,
    )
    assert producer.flush(DEADLINE_S) == 0 and errors == []


async def ended(reader: asyncio.StreamReader) -> bool:
    """Whether the connection ends (closed or reset) before the deadline."""
    with contextlib.suppress(ConnectionError):
        return await asyncio.wait_for(reader.read(), DEADLINE_S) == b""
    return True


async def test_the_proxy_relays_both_ways_and_closes_both_sides_when_stopped(
    certs: Certificates,
) -> None:
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    target = await asyncio.start_server(lambda *both: accepted.put_nowait(both), "127.0.0.1", 0)
    async with target:
        with TlsProxy(certs, target.sockets[0].getsockname()[1]) as proxy:
            client, to_proxy = await asyncio.open_connection(
                "127.0.0.1", proxy.port, ssl=ssl.create_default_context(cafile=certs.ca)
            )
            to_proxy.write(b"hello")
            relayed, to_client = await asyncio.wait_for(accepted.get(), DEADLINE_S)
            assert await asyncio.wait_for(relayed.readexactly(5), DEADLINE_S) == b"hello"
            to_client.write(b"world")
            assert await asyncio.wait_for(client.readexactly(5), DEADLINE_S) == b"world"
        # Stopped with both sides still open: neither is left hanging.
        assert await ended(client) and await ended(relayed)
        to_proxy.close()
        to_client.close()


async def test_tansu_authentication_refuses_any_scram_credentials(
    scram_kafka: SecuredKafka,
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=scram_kafka.bootstrap_servers,
        security_protocol=scram_kafka.connection["kafka_security_protocol"],
        sasl_mechanism=scram_kafka.connection["kafka_sasl_mechanism"],
        sasl_plain_username="someone",
        sasl_plain_password=uuid.uuid4().hex,
    )
    try:
        # aiokafka 0.14 looks for the server's proof (`v=`) that Tansu never sends.
        with pytest.raises((KeyError, KafkaError)):
            await producer.start()
    finally:
        await producer.stop()


async def test_mongodb_with_tls_and_scram_runs_a_transaction(scram_mongodb: SecuredMongo) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(scram_mongodb.uri())
    collection = client["secured"][uuid.uuid4().hex[:8]]
    try:
        async with client.start_session() as session, await session.start_transaction():
            await collection.insert_one({"lead": 1}, session=session)
        assert await collection.count_documents({}) == 1
    finally:
        await client.close()


async def test_mongodb_refuses_a_wrong_password(scram_mongodb: SecuredMongo) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(scram_mongodb.uri(password="wrong"))
    try:
        with pytest.raises(OperationFailure) as refused:
            await client.admin.command("ping")
        assert refused.value.code == 18  # AuthenticationFailed
    finally:
        await client.close()


async def test_mongodb_refuses_a_client_trusting_another_ca(
    scram_mongodb: SecuredMongo, certs: Certificates
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        scram_mongodb.uri(ca=certs.other_ca), serverSelectionTimeoutMS=500
    )
    try:
        with pytest.raises(ServerSelectionTimeoutError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.admin.command("ping")
    finally:
        await client.close()


async def test_the_servers_description_reaches_both(
    kafka: SecuredKafka, scram_mongodb: SecuredMongo
) -> None:
    servers = as_servers(kafka, scram_mongodb)
    settings = servers.settings()
    assert settings["kafka_security_protocol"] == "SSL" and not settings["kafka_idempotence"]
    context = context_of(servers.connection)
    assert await round_trip(servers.kafka_bootstrap_servers, context) == b"over tls"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(servers.mongodb_uri)
    try:
        assert (await client.admin.command("ping"))["ok"] == 1
    finally:
        await client.close()
