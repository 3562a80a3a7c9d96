"""Kafka at the edge: topics created at start-up, and a producer that waits for the broker."""

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ProducerClosed, TopicAlreadyExistsError

from contracts.commands import Command
from contracts.performance import PerformanceUpdated
from services.lifecycle.domain.clock import Clock
from services.lifecycle.service_layer.outgoing import Outgoing, for_command, for_performance
from services.lifecycle.service_layer.tracing import Headers, NoTracing, Tracer
from services.lifecycle.settings import Settings

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap_servers: str, names: Iterable[str], partitions: int, replication: int
) -> list[str]:
    """Create the topics that are missing; return the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            # Another replica may have created them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(name, partitions, replication) for name in missing]
                )
            log.info("topics created", extra={"topics": missing, "partitions": partitions})
        return missing
    finally:
        await admin.close()


class Record(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def headers(self) -> list[tuple[str, bytes]]: ...
    @property
    def value(self) -> bytes: ...


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes | None
    headers: list[tuple[str, bytes]]
    value: bytes

    @classmethod
    def of(
        cls, message: Outgoing, topic_prefix: str, source: str, trace: Headers = ()
    ) -> "KafkaRecord":
        return cls(
            message.topic.named(topic_prefix),
            message.key.encode() or None,
            [*message.headers(source), *trace],
            message.value,
        )


Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]


class KafkaPublisher:
    """Publishes records (outbox rows, commands) and waits until the broker has them all.

    The idempotent producer with acks=all: a record is acknowledged only once every
    in-sync replica has it, and a retried send is never written twice."""

    def __init__(
        self,
        bootstrap_servers: str,
        compression: Compression = "lz4",
        client_id: str = "leads",
        idempotent: bool = True,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._compression = compression
        self._client_id = client_id
        self._idempotent = idempotent
        self._producer: AIOKafkaProducer | None = None

    @classmethod
    def of(cls, settings: Settings, role: str) -> "KafkaPublisher":
        return cls(
            settings.kafka_bootstrap_servers,
            settings.kafka_compression,
            client_id=f"leads-{role}-{settings.instance_id}",
            idempotent=settings.kafka_idempotence,
        )

    def options(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self._bootstrap_servers,
            "client_id": self._client_id,
            "acks": "all",
            "enable_idempotence": self._idempotent,
            "compression_type": None if self._compression == "none" else self._compression,
            "linger_ms": 2,
        }

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self.options())
        await self._producer.start()

    async def stop(self) -> None:
        """Sends already handed over are delivered first (the producer flushes on stop)."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def publish(self, rows: Sequence[Record]) -> None:
        if self._producer is None:
            raise ProducerClosed("the Kafka publisher is stopped")
        # Sends are queued in call order, so rows of one key keep their order on its partition.
        deliveries = [
            await self._producer.send(row.topic, row.value, key=row.key, headers=row.headers)
            for row in rows
        ]
        await asyncio.gather(*deliveries)


class KafkaPerformanceUpdates:
    """`partner.performance_updated` on `partners.performance`, keyed by partner."""

    def __init__(self, kafka: KafkaPublisher, topic_prefix: str, source: str) -> None:
        self._kafka = kafka
        self._prefix = topic_prefix
        self._source = source

    async def publish(self, updates: Sequence[PerformanceUpdated]) -> None:
        await self._kafka.publish(
            [KafkaRecord.of(for_performance(u), self._prefix, self._source) for u in updates]
        )


class KafkaCommands:
    """The scheduler's commands, published on `leads.commands` keyed by lead, carrying
    the sweep's trace."""

    def __init__(
        self,
        kafka: KafkaPublisher,
        topic_prefix: str,
        source: str,
        clock: Clock,
        tracer: Tracer | None = None,
    ) -> None:
        self._kafka = kafka
        self._prefix = topic_prefix
        self._source = source
        self._clock = clock
        self._tracer: Tracer = tracer or NoTracing()

    async def publish(self, commands: Sequence[Command]) -> None:
        now, trace = self._clock.now(), self._tracer.carrier()
        await self._kafka.publish(
            [
                KafkaRecord.of(for_command(c, now), self._prefix, self._source, trace)
                for c in commands
            ]
        )
