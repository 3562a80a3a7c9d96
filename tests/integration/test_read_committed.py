"""Read-committed on Apache Kafka: a lead written in an upstream transaction that was
aborted is never handed to the service. (The embedded broker does not filter
aborted records, so this runs on its own Apache Kafka 4.1 container, tests/containers.py.)"""

import asyncio
import json
import time
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from confluent_kafka import Producer

from services.lifecycle.adapters.kafka import ensure_topics
from services.lifecycle.settings import Settings
from tests.integration.test_kafka_consumer import consumer_of
from tests.servers import NO_DOCKER, docker_available

pytestmark = [
    pytest.mark.containers,
    pytest.mark.skipif(
        not docker_available(),
        reason="needs Apache Kafka (the embedded broker does not filter aborted "
        f"transactions) in a container: {NO_DOCKER}",
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
    from tests.containers import kafka_container  # testcontainers only where it runs

    with kafka_container() as kafka:
        asyncio.run(exercise(kafka.bootstrap_servers))


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
        # Commit markers and aborted records are no backlog: lag reaches 0 (it counted
        # them from the high watermark), and the offset committed passes the last marker.
        while consumer.lag().get(topic, 0) != 0:
            assert time.monotonic() < deadline, f"lag stays at {consumer.lag()}"
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
    assert seen == ["committed", "after"]
    committed, end = await committed_and_end(bootstrap, settings.consumer_group, topic)
    assert committed == end


async def committed_and_end(bootstrap: str, group: str, topic: str) -> tuple[int | None, int]:
    """The group's committed offset of the topic's partition, and the partition's end."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        return await reader.committed(tp), (await reader.end_offsets([tp]))[tp]
    finally:
        await reader.stop()
