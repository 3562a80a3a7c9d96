"""How the service talks to Kafka: what it reads, how it commits, how it publishes."""

import ssl
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from faststream.security import SASLScram512
from pydantic import ValidationError

from contracts.topics import Topic
from services.lifecycle.adapters import kafka
from services.lifecycle.adapters.kafka import KafkaPublisher, ensure_topics, min_insync_replicas
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.kafka_consumer import (
    MAX_POLL_INTERVAL_MS,
    BatchConsumer,
    ConsumerSettings,
)
from services.lifecycle.adapters.refusals import Refused
from services.lifecycle.entrypoints.app import CONSUMED
from services.lifecycle.settings import Settings


async def handle(records: object) -> None: ...


def consumer(settings: Settings) -> BatchConsumer:
    return BatchConsumer(ConsumerSettings.of(settings, [Topic.INBOUND]), handle)


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


# --- connection security: one set of options for every client ------------------------

SASL_SSL = {
    "LEADS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "LEADS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "LEADS_KAFKA_SASL_USERNAME": "leads-service",
    "LEADS_KAFKA_SASL_PASSWORD": "s3cret-never-shown",
}


def secured(monkeypatch: pytest.MonkeyPatch, **extra: str) -> Settings:
    for name, value in {**SASL_SSL, **extra}.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_every_client_connects_with_the_same_tls_and_sasl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = secured(monkeypatch)
    producer = KafkaPublisher.of(settings, "service").options()
    reader = consumer(settings).options()
    for options in (producer, reader, KafkaConnection.of(settings).options()):
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert options["sasl_plain_username"] == "leads-service"
        assert options["sasl_plain_password"] == "s3cret-never-shown"
        assert isinstance(options["ssl_context"], ssl.SSLContext)
        assert options["ssl_context"].verify_mode is ssl.CERT_REQUIRED
        assert options["ssl_context"].check_hostname
    security = KafkaConnection.of(settings).faststream_security()
    assert isinstance(security, SASLScram512) and security.use_ssl  # the FastStream broker


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    options = KafkaConnection.of(Settings()).options()
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert KafkaConnection.of(Settings()).faststream_security() is None


def test_the_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = secured(monkeypatch)
    connection = KafkaConnection.of(settings)
    for text in (repr(settings), str(settings), repr(connection), settings.model_dump_json()):
        assert "s3cret-never-shown" not in text
    # ...but a child process started with these settings gets it.
    assert settings.environment()["LEADS_KAFKA_SASL_PASSWORD"] == "s3cret-never-shown"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LEADS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "LEADS_KAFKA_SASL_PASSWORD"),
        (
            {"LEADS_KAFKA_SECURITY_PROTOCOL": "SSL", "LEADS_KAFKA_SSL_CERTFILE": "/c.pem"},
            "LEADS_KAFKA_SSL_KEYFILE",
        ),
        ({"LEADS_KAFKA_SSL_CAFILE": "/ca.pem"}, "LEADS_KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_incomplete_security_settings_are_refused_naming_the_setting(
    env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=named):
        Settings()


def test_an_unreadable_ca_file_is_refused_naming_its_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = secured(monkeypatch, LEADS_KAFKA_SSL_CAFILE=str(tmp_path / "missing.pem"))
    with pytest.raises(Refused, match=r"LEADS_KAFKA_SSL_CAFILE: cannot read .*missing\.pem"):
        KafkaConnection.of(settings).options()


# --- group membership ------------------------------------------------------------------


def test_the_group_waits_for_the_whole_hand_over_before_moving_on() -> None:
    settings = Settings()
    options = consumer(settings).options()
    hand_over = settings.shutdown_grace.total_seconds()
    # The batches in hand (up to the grace), then their offset commit (as long again).
    assert int(options["rebalance_timeout_ms"]) > 2 * hand_over * 1000  # type: ignore[call-overload]
    assert int(options["rebalance_timeout_ms"]) <= int(options["max_poll_interval_ms"])  # type: ignore[call-overload]
    assert options["max_poll_interval_ms"] == MAX_POLL_INTERVAL_MS


class SixPartitionsEach:
    """Cluster metadata as the assignor reads it."""

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(6))


@pytest.mark.parametrize("replicas", [2, 4, 6])
def test_partition_n_of_every_input_topic_goes_to_one_replica(replicas: int) -> None:
    strategy = consumer(Settings()).options()["partition_assignment_strategy"]
    assert isinstance(strategy, tuple)
    topics = [topic.value for topic in CONSUMED]
    members = {
        f"leads-{n}": ConsumerProtocolMemberMetadata(0, topics, b"") for n in range(replicas)
    }
    assignment = strategy[0].assign(SixPartitionsEach(), members)
    for member in members:
        owned = {topic: frozenset(parts) for topic, parts in assignment[member].assignment}
        assert set(owned) == set(topics)
        assert len(set(owned.values())) == 1, owned  # the same partition numbers of each


def test_static_membership_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert consumer(Settings()).options()["group_instance_id"] is None
    monkeypatch.setenv("LEADS_KAFKA_GROUP_INSTANCE_ID", "leads-serve-0")
    monkeypatch.setenv("LEADS_KAFKA_SESSION_TIMEOUT", "PT45S")
    options = consumer(Settings()).options()
    assert options["group_instance_id"] == "leads-serve-0"
    assert options["session_timeout_ms"] == 45_000


# --- topics and publishing ---------------------------------------------------------------


@pytest.mark.parametrize(("replication", "insync"), [(1, 1), (2, 1), (3, 2), (5, 2)])
def test_min_insync_replicas_leaves_room_for_one_broker_down(replication: int, insync: int) -> None:
    assert min_insync_replicas(replication) == insync


def test_a_publish_is_bounded_by_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADS_PUBLISH_TIMEOUT", "PT7S")
    assert KafkaPublisher.of(Settings(), "service")._timeout_s == 7.0


class Admin:
    """Kafka's admin API as aiokafka gives it: per-topic answers, nothing raised."""

    existing: ClassVar[dict[str, int]] = {}
    answer: ClassVar[list[tuple[str, int, str | None]]] = []
    created: ClassVar[list[Any]] = []

    def __init__(self, **options: Any) -> None: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...

    async def list_topics(self) -> list[str]:
        return list(self.existing)

    async def create_topics(self, topics: list[Any]) -> Any:
        Admin.created = topics
        return SimpleNamespace(topic_errors=self.answer)

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return [{"topic": n, "partitions": [{}] * self.existing[n]} for n in names]


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> type[Admin]:
    monkeypatch.setattr(kafka, "AIOKafkaAdminClient", Admin)
    Admin.existing, Admin.answer, Admin.created = {}, [], []
    return Admin


@pytest.mark.parametrize(
    ("code", "named"),
    [
        (38, "LEADS_TOPIC_REPLICATION_FACTOR"),
        (37, "LEADS_TOPIC_PARTITIONS"),
        (29, "ACLs"),
        (44, "policy"),
        (17, "LEADS_TOPIC_PREFIX"),
    ],
)
async def test_a_topic_kafka_refuses_to_create_stops_the_start_naming_what_to_check(
    admin: type[Admin], code: int, named: str
) -> None:
    admin.answer = [("leads.inbound", 0, None), ("leads.events", code, "refused")]
    with pytest.raises(Refused, match=named):
        await ensure_topics("127.0.0.1:9092", ["leads.inbound", "leads.events"], 6, 3)


async def test_topics_created_meanwhile_are_no_refusal_and_get_min_insync_replicas(
    admin: type[Admin],
) -> None:
    admin.answer = [("leads.inbound", 36, "already exists")]  # another replica was first
    assert await ensure_topics("127.0.0.1:9092", ["leads.inbound"], 6, 3) == ["leads.inbound"]
    [topic] = admin.created
    assert topic.topic_configs == {"min.insync.replicas": "2"}


async def test_existing_topics_with_another_partition_count_are_reported(
    admin: type[Admin], caplog: pytest.LogCaptureFixture
) -> None:
    admin.existing = {"leads.inbound": 6, "leads.partner-actions": 12}
    await ensure_topics("127.0.0.1:9092", list(admin.existing), 6, 1)
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.topics == {"leads.partner-actions": 12}  # type: ignore[attr-defined]


async def test_the_state_topic_is_created_compacted_and_the_others_by_time(
    admin: type[Admin],
) -> None:
    names = ["leads.events", "leads.state"]
    assert await ensure_topics("127.0.0.1:9092", names, 6, 3, ["leads.state"]) == names
    configs = {topic.name: topic.topic_configs for topic in admin.created}
    assert configs == {
        "leads.events": {"min.insync.replicas": "2"},
        "leads.state": {
            "min.insync.replicas": "2",
            "cleanup.policy": "compact",
            "segment.ms": "86400000",
            "min.cleanable.dirty.ratio": "0.5",
            "max.compaction.lag.ms": "604800000",
        },
    }
