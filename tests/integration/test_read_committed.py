"""Read-committed on Apache Kafka: a lead written in an upstream transaction that was
aborted is never handed to the service. (The embedded broker does not filter
aborted records, so this runs on Apache Kafka through testcontainers.)"""

import asyncio
import json
import time
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import ConsumerRecord
from confluent_kafka import Producer

from services.lifecycle.adapters.kafka import ensure_topics
from services.lifecycle.settings import Settings
from tests.conftest import docker_available
from tests.integration.test_kafka_consumer import consumer_of

pytestmark = [
    pytest.mark.containers,
    pytest.mark.skipif(
        not docker_available(),
        reason="needs Apache Kafka (testcontainers, a Docker engine): the embedded broker "
        "does not filter aborted transactions",
    ),
]


def transactions(bootstrap: str, topic: str) -> None:
    """Commit `committed`, abort `aborted`, then commit `after`, in that order."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": uuid.uuid4().hex})
    producer.init_transactions(30)
    for name, commit in (("committed", True), ("aborted", False), ("after", True)):
        producer.begin_transaction()
        producer.produce(topic, json.dumps({"lead": name}).encode(), key=b"one-key")
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)


def test_an_aborted_upstream_transaction_is_never_processed() -> None:
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka:
        asyncio.run(exercise(kafka.get_bootstrap_server()))


async def exercise(bootstrap: str) -> None:
    settings = Settings(kafka_bootstrap_servers=bootstrap, consumer_group=uuid.uuid4().hex)
    topic = f"rc-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], 1, 1)
    await asyncio.to_thread(transactions, bootstrap, topic)
    seen: list[str] = []

    async def handle(records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        seen.extend(json.loads(r.value or b"{}")["lead"] for r in records)

    consumer, _ = consumer_of(settings, topic, handle)
    await consumer.start()
    try:
        deadline = time.monotonic() + 60
        while "after" not in seen:  # written after the aborted one, on the same partition
            assert time.monotonic() < deadline, "the committed records never came"
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
    assert seen == ["committed", "after"]
