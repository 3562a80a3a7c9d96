"""The service's Kafka consumer on a real broker: a partition whose records cannot
be read is set aside and reported while the others go on, and picked up again."""

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiokafka.codec
import pytest
from aiokafka import ConsumerRecord
from confluent_kafka import Producer

import services.lifecycle.adapters.kafka_consumer as kafka_consumer
from contracts.topics import Topic
from services.lifecycle.adapters.kafka import ensure_topics
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.kafka_consumer import BatchConsumer, ConsumerSettings
from services.lifecycle.settings import Settings


def produce(settings: Settings, topic: str, partition: int, codec: str, count: int) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "compression.type": codec}
    )
    for n in range(count):
        producer.produce(topic, json.dumps({"n": n}).encode(), partition=partition)
    assert producer.flush(30) == 0


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def consumer_of(
    settings: Settings, topic: str, handle: Callable[[Sequence[Any]], Awaitable[None]]
) -> tuple[BatchConsumer, list[tuple[str, int]]]:
    reported: list[tuple[str, int]] = []
    consumer = BatchConsumer(
        ConsumerSettings(
            connection=KafkaConnection.of(settings),
            topics={topic: Topic.INBOUND},
            group_id=settings.consumer_group,
            client_id="test",
            batch_max=100,
            batch_wait_s=0.0,
            fetch_max_wait_ms=50,
            max_poll_records=500,
            hand_over_s=5.0,
        ),
        handle,
        on_unreadable=lambda t, p: reported.append((t, p)),
    )
    return consumer, reported


async def test_a_partition_that_cannot_be_read_is_set_aside_and_the_others_go_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"{settings.topic_prefix}codecs"
    await ensure_topics(settings.kafka_bootstrap_servers, [topic], 3, 1)
    # As if this replica had no zstd library: partition 0's batches cannot be read.
    monkeypatch.setattr(aiokafka.codec, "has_zstd", lambda: False)
    monkeypatch.setattr(kafka_consumer, "UNREADABLE_RETRY_S", 1.0)
    await asyncio.to_thread(produce, settings, topic, 0, "zstd", 10)
    for partition in (1, 2):
        await asyncio.to_thread(produce, settings, topic, partition, "none", 10)

    handed: dict[int, list[int]] = defaultdict(list)

    async def handle(records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            handed[record.partition].append(record.offset)

    consumer, reported = consumer_of(settings, topic, handle)
    await consumer.start()
    try:
        await until(lambda: len(handed[1]) == len(handed[2]) == 10, "the readable partitions")
        await until(lambda: (topic, 0) in reported, "the unreadable partition reported")
        assert handed[0] == []
        monkeypatch.setattr(aiokafka.codec, "has_zstd", lambda: True)  # the library is back
        await until(lambda: len(handed[0]) == 10, "partition 0 picked up again")
    finally:
        await consumer.stop()
    assert sorted(handed[0]) == list(range(10))  # nothing skipped
    assert reported.count((topic, 0)) <= 2  # reported once per retry, not per fetch
