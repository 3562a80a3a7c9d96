"""Kafka at the edge: topics created at start-up, and the outbox's producer."""

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.lifecycle.service_layer.ports import OutboxRow

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


class OutboxProducer:
    """Publishes outbox rows and waits until the broker has them all."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # acks=all: a row is marked sent only once the broker has it.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers, acks="all", linger_ms=2
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, rows: Sequence[OutboxRow]) -> None:
        if self._producer is None:
            raise RuntimeError("the outbox producer is not started")
        # Sends are queued in call order, so rows of one key keep their order on its partition.
        deliveries = [
            await self._producer.send(
                row.topic, row.value, key=row.key.encode(), headers=row.headers
            )
            for row in rows
        ]
        await asyncio.gather(*deliveries)
