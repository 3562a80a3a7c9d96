"""Real peer clients, as our users run them: librdkafka (confluent-kafka) producers
publish leads with every codec, idempotently and with headers, and a librdkafka
read-committed consumer in its own group reads what the service publishes."""

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from contracts.topics import Topic
from tests import messages
from tests.e2e.drivers import ServiceProcess, Upstream

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def produce(settings: Any, codec: str, leads: list[dict[str, Any]]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "compression.type": codec,
            "enable.idempotence": True,
            "linger.ms": 20,  # several leads in one compressed batch
        }
    )
    errors: list[Any] = []
    for lead in leads:
        producer.produce(
            Topic.INBOUND.named(settings.topic_prefix),
            json.dumps(lead).encode(),
            key=lead["lead_id"].encode(),
            headers=[("source", b"librdkafka"), ("codec", codec.encode())],
            on_delivery=lambda error, _: errors.append(error) if error else None,
        )
    assert producer.flush(30) == 0 and errors == []


@pytest.mark.parametrize("codec", CODECS)
async def test_leads_from_librdkafka_with_each_codec_are_processed(
    upstream: Upstream, codec: str
) -> None:
    leads = [messages.inbound() for _ in range(5)]
    await asyncio.to_thread(produce, upstream.settings, codec, leads)
    await upstream.until(
        lambda o: all("lead.received" in o.event_types(lead["lead_id"]) for lead in leads),
        what=f"{codec} leads received",
    )


def consume_events(settings: Any, lead_id: str, timeout: float = 30.0) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"crm-connector-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([Topic.EVENTS.named(settings.topic_prefix)])
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while not found and time.monotonic() < deadline:
            record = consumer.poll(0.5)
            if record is not None and record.error() is None and record.key() == lead_id.encode():
                found.append(record)
    finally:
        consumer.close()
    return found


async def test_a_librdkafka_consumer_reads_events_with_their_key_and_cloudevents_headers(
    running_service: ServiceProcess, upstream: Upstream
) -> None:
    lead = messages.inbound()
    await upstream.send(Topic.INBOUND, lead)
    [record] = await asyncio.to_thread(consume_events, upstream.settings, lead["lead_id"])
    event = json.loads(record.value())
    assert (event["type"], event["lead_id"]) == ("lead.received", lead["lead_id"])
    headers = {name: value for name, value in record.headers()}
    assert headers["ce_specversion"] == b"1.0" and headers["ce_type"] == b"lead.received"
    assert headers["ce_id"].decode() == event["event_id"]
    assert headers["ce_subject"] == lead["lead_id"].encode()
    assert headers["content-type"] == b"application/json"
