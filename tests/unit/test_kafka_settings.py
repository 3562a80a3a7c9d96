"""How the service talks to Kafka: what it reads, how it commits, how it publishes."""

import pytest

from services.lifecycle.adapters.kafka import KafkaPublisher
from services.lifecycle.adapters.kafka_consumer import BatchConsumer, ConsumerSettings
from services.lifecycle.settings import Settings


async def handle(records: object) -> None: ...


def consumer(settings: Settings) -> BatchConsumer:
    return BatchConsumer(
        ConsumerSettings(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=["leads.inbound"],
            group_id=settings.consumer_group,
            client_id="leads-test",
            batch_max=settings.batch_max,
            batch_wait_s=settings.batch_wait.total_seconds(),
            fetch_max_wait_ms=100,
            max_poll_records=settings.kafka_max_poll_records,
            hand_over_s=settings.shutdown_grace.total_seconds(),
        ),
        handle,
    )


def test_the_consumer_reads_only_committed_records_and_commits_its_own_offsets() -> None:
    options = consumer(Settings()).options()
    assert options["isolation_level"] == "read_committed"
    assert options["enable_auto_commit"] is False
    assert options["auto_offset_reset"] == "earliest"


def test_publishing_waits_for_every_replica_never_writes_twice_and_compresses() -> None:
    options = KafkaPublisher.of(Settings(), "service").options()
    assert options["acks"] == "all"
    assert options["enable_idempotence"] is True
    assert options["compression_type"] == "lz4"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_the_compression_is_a_setting(codec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADS_KAFKA_COMPRESSION", codec)
    assert KafkaPublisher.of(Settings(), "service").options()["compression_type"] == codec


def test_no_compression_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADS_KAFKA_COMPRESSION", "none")
    assert KafkaPublisher.of(Settings(), "service").options()["compression_type"] is None
