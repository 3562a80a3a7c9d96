"""Kafka at the edge: topics created at start-up, and a producer that waits for the
broker, recovers from a lost producer state and reports the rows refused for good."""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    BrokerResponseError,
    ClusterAuthorizationFailedError,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)

from contracts.commands import Command
from contracts.performance import PerformanceUpdated
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.refusals import Refused, kafka_refusals
from services.lifecycle.domain.clock import Clock
from services.lifecycle.service_layer.outgoing import Outgoing, for_command, for_performance
from services.lifecycle.service_layer.ports import Refusal
from services.lifecycle.service_layer.tracing import Headers, NoTracing, Tracer
from services.lifecycle.settings import Settings

log = logging.getLogger(__name__)


_ALREADY_EXISTS = 36
_TOPIC_REFUSALS = {
    17: "LEADS_TOPIC_PREFIX (not a valid topic name)",
    29: "the service's ACLs (it may not create topics: create them beforehand)",
    37: "LEADS_TOPIC_PARTITIONS",
    38: "LEADS_TOPIC_REPLICATION_FACTOR (more than the cluster's brokers?)",
    40: "the topic configuration (min.insync.replicas)",
    44: "the cluster's create-topic policy (create the topics beforehand)",
}


def min_insync_replicas(replication: int) -> int:
    """Replicas that must have a record before it is acknowledged (acks=all): two when
    three or more hold it, so one broker may be down and nothing acknowledged is lost."""
    return 2 if replication >= 3 else 1


COMPACTED = {
    "cleanup.policy": "compact",
    "segment.ms": str(24 * 3600 * 1000),
    "min.cleanable.dirty.ratio": "0.5",
    "max.compaction.lag.ms": str(7 * 24 * 3600 * 1000),
}
"""A topic kept by key: its segments roll daily, so that compaction keeps it close to
one record per key; a superseded record (a state with contact data since erased) is
gone within 7 days, as `leads.events` keeps its own."""


async def ensure_topics(
    connection: "KafkaConnection | str",
    names: Iterable[str],
    partitions: int,
    replication: int,
    compacted: Iterable[str] = (),
) -> list[str]:
    """Create the topics that are missing, the `compacted` ones kept by key
    (`cleanup.policy=compact`); return the ones created. Raises `Refused` when Kafka
    refuses one (its answer comes per topic, not as an exception); warns of existing
    topics with another partition count (partition N of each input topic is one
    replica's: that needs equal counts)."""
    if isinstance(connection, str):
        connection = KafkaConnection(connection)
    admin = AIOKafkaAdminClient(**connection.options())
    async with kafka_refusals(connection):
        await admin.start()
    try:
        wanted, compacted = list(names), set(compacted)
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if missing:
            config = {"min.insync.replicas": str(min_insync_replicas(replication))}
            by_key = {**config, **COMPACTED}
            answer = await admin.create_topics(
                [
                    NewTopic(
                        name,
                        partitions,
                        replication,
                        topic_configs=by_key if name in compacted else config,
                    )
                    for name in missing
                ]
            )
            _raise_refused(answer.topic_errors)
            log.info("topics created", extra={"topics": missing, "partitions": partitions})
        await _report_partition_counts(admin, [n for n in wanted if n in existing], partitions)
        return missing
    finally:
        await admin.close()


def _raise_refused(topic_errors: Sequence[tuple[Any, ...]]) -> None:
    """Per topic: (name, error code[, message]); 0 is created, 36 created meanwhile."""
    refused = [e for e in topic_errors if e[1] not in (0, _ALREADY_EXISTS)]
    if refused:
        name, code, *message = refused[0]
        look_at = _TOPIC_REFUSALS.get(code, "LEADS_TOPIC_* and the cluster's settings")
        raise Refused(
            f"Kafka refused to create {len(refused)} topic(s), {name} first (error {code}"
            + (f": {message[0]}" if message and message[0] else "")
            + f"): check {look_at}"
        )


async def _report_partition_counts(
    admin: AIOKafkaAdminClient, existing: list[str], partitions: int
) -> None:
    if not existing:
        return
    counts = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(existing)}
    other = {name: count for name, count in counts.items() if count != partitions}
    if other:
        log.warning(
            "topics have another partition count than LEADS_TOPIC_PARTITIONS; input topics "
            "need one count for partition N of each to be handled by one replica",
            extra={"partitions": partitions, "topics": other},
        )


class Record(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def headers(self) -> list[tuple[str, bytes]]: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes | None
    headers: list[tuple[str, bytes]]
    value: bytes | None

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

PRODUCER_STATE_LOST = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)
"""The idempotent producer's sequence or identity is lost: aiokafka never recovers
(every later send to the partition fails until restart), a new producer does."""
SEND_ROUNDS = 5
"""Rounds of one publish (on a new producer after a lost state, a refused batch's rows
each on their own) before what is left goes to the relay."""


@dataclass(frozen=True)
class _Failed:
    error: BaseException
    reached_broker: bool = True
    """Refused by the broker (its partition's sequence is then spent), not the client."""


class KafkaPublisher:
    """Publishes records (outbox rows, commands) and waits until the broker has them all.

    The idempotent producer with acks=all: a record is acknowledged only once every
    in-sync replica has it, and a retried send is never written twice. A publish is
    bounded (`LEADS_PUBLISH_TIMEOUT`): the idempotent producer itself never gives up.
    A producer whose state is lost is replaced; a row refused for good is reported,
    and the rest go on."""

    def __init__(
        self,
        connection: KafkaConnection,
        compression: Compression = "lz4",
        client_id: str = "leads",
        idempotent: bool = True,
        timeout_s: float = 30.0,
        producer: Callable[..., AIOKafkaProducer] = AIOKafkaProducer,
        on_renewed: Callable[[], None] = lambda: None,
    ) -> None:
        self._connection = connection
        self._compression = compression
        self._client_id = client_id
        self._idempotent = idempotent
        self._timeout_s = timeout_s
        self._make = producer
        self._producer: AIOKafkaProducer | None = None
        self._renewing = asyncio.Lock()
        self._on_renewed = on_renewed
        self.publishing = True
        """False from a publish that could not deliver until one that could."""

    @classmethod
    def of(
        cls, settings: Settings, role: str, on_renewed: Callable[[], None] = lambda: None
    ) -> "KafkaPublisher":
        return cls(
            KafkaConnection.of(settings),
            settings.kafka_compression,
            client_id=f"leads-{role}-{settings.instance_id}",
            idempotent=settings.kafka_idempotence,
            timeout_s=settings.publish_timeout.total_seconds(),
            on_renewed=on_renewed,
        )

    def options(self) -> dict[str, Any]:
        return {
            **self._connection.options(),
            "client_id": self._client_id,
            "acks": "all",
            "enable_idempotence": self._idempotent,
            "compression_type": None if self._compression == "none" else self._compression,
            "linger_ms": 2,
        }

    async def start(self) -> None:
        self._producer = await self._started()

    async def _started(self) -> AIOKafkaProducer:
        producer = self._make(**self.options())
        try:
            async with kafka_refusals(self._connection, self._idempotent):
                await producer.start()
        except BaseException:
            await _closed(producer, 1.0)
            raise
        return producer

    async def stop(self, grace_s: float = 10.0) -> None:
        """Sends already handed over are delivered first (the producer flushes on
        stop), within `grace_s`: what is not by then is the relay's."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            if not await _closed(producer, grace_s):
                log.warning("the producer did not flush in time; the relay sends the rest")

    async def publish(self, rows: Sequence[Record]) -> list[Refusal]:
        """Returns once the broker has every row but those it refused for good, which
        are returned. Raises when rows may still go later (the broker away or slow,
        past the publish timeout): they are left to the relay, under the same ids."""
        try:
            async with asyncio.timeout(self._timeout_s):
                refusals = await self._publish(rows)
        except Exception:
            self.publishing = False
            raise
        self.publishing = True
        return refusals

    async def publish_all(self, rows: Sequence[Record]) -> None:
        """For senders with no place to set a row aside: a refusal is an error."""
        refusals = await self.publish(rows)
        if refusals:
            raise RowsRefused(f"Kafka refused {len(refusals)} row(s): {refusals[0].error}")

    async def _publish(self, rows: Sequence[Record]) -> list[Refusal]:
        """Rows a producer with a lost state could not send go again on a new one. The
        broker refuses a batch of records whole (one too large refuses its batch): when
        it refused several, each goes again on its own, so only the row at fault is."""
        pending, alone = list(range(len(rows))), False
        refused: list[Refusal] = []
        for _ in range(SEND_ROUNDS):
            producer = self._current()
            failed = await _sent(producer, rows, pending, alone)
            again = [i for i, f in failed.items() if _lost(f.error)]
            at_broker = [i for i, f in failed.items() if _spent(f)]
            if len(at_broker) > 1 and not alone:
                again, alone = sorted(again + at_broker), True
            refused += [
                Refusal(i, type(f.error).__name__)
                for i, f in failed.items()
                if _refused_for_good(f.error) and i not in again
            ]
            # A batch the broker refused spends its partition's sequence number too.
            if again or (self._idempotent and at_broker):
                await self._renew(producer)
            if unsettled := [f.error for f in failed.values() if _unsettled(f.error)]:
                raise unsettled[0]
            if not again:
                return sorted(refused, key=lambda r: r.row)
            pending = again
        raise failed[pending[0]].error

    def _current(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise ProducerClosed("the Kafka publisher is stopped")
        return self._producer

    async def _renew(self, broken: AIOKafkaProducer) -> None:
        """Replace `broken` by a new producer (new id, sequences from 0), once, however
        many publishes found it broken."""
        async with self._renewing:
            if self._producer is not broken:
                return
            log.warning("the producer's state is lost; replacing it")
            self._producer = await self._started()
            self._on_renewed()
        await _closed(broken, 1.0)


class RowsRefused(KafkaError):  # type: ignore[misc]
    """Kafka refused rows for good, where a caller has no place to set them aside."""


async def _sent(
    producer: AIOKafkaProducer, rows: Sequence[Record], indexes: list[int], alone: bool
) -> dict[int, _Failed]:
    """Send the rows at `indexes` together, or each in a batch of its own; return the
    failures by index."""
    if not alone:
        failed = await _send_all(producer, [rows[i] for i in indexes])
        return {indexes[n]: failure for n, failure in failed.items()}
    return {
        i: failure for i in indexes for failure in (await _send_all(producer, [rows[i]])).values()
    }


async def _send_all(producer: AIOKafkaProducer, rows: Sequence[Record]) -> dict[int, _Failed]:
    """Hand every row over (in order, so one key's rows keep theirs on its partition),
    then wait for all; return the failures by position (none, nearly always): one
    row's failure does not stop the others."""
    failed: dict[int, _Failed] = {}
    deliveries: dict[int, asyncio.Future[Any]] = {}
    for n, row in enumerate(rows):
        try:
            deliveries[n] = await producer.send(
                row.topic, row.value, key=row.key, headers=row.headers
            )
        except KafkaError as error:  # refused before it left: too large, say
            failed[n] = _Failed(error, reached_broker=False)
    outcomes = await asyncio.gather(*deliveries.values(), return_exceptions=True)
    for n, outcome in zip(deliveries, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failed[n] = _Failed(outcome)
    return failed


def _lost(error: BaseException) -> bool:
    return isinstance(error, PRODUCER_STATE_LOST)


def _refused_for_good(error: BaseException) -> bool:
    return (
        isinstance(error, BrokerResponseError)
        and not error.retriable
        and not isinstance(error, (*PRODUCER_STATE_LOST, ClusterAuthorizationFailedError))
    )


def _spent(failed: _Failed) -> bool:
    return failed.reached_broker and _refused_for_good(failed.error)


def _unsettled(error: BaseException) -> bool:
    return not _lost(error) and not _refused_for_good(error)


async def _closed(producer: AIOKafkaProducer, within_s: float) -> bool:
    """Stop a producer within a bound (its flush waits on the broker otherwise)."""
    try:
        await asyncio.wait_for(producer.stop(), within_s)
    except TimeoutError:
        with contextlib.suppress(Exception):
            await producer.client.close()
        return False
    except Exception:
        return False
    return True


class KafkaPerformanceUpdates:
    """`partner.performance_updated` on `partners.performance`, keyed by partner."""

    def __init__(self, kafka: KafkaPublisher, topic_prefix: str, source: str) -> None:
        self._kafka = kafka
        self._prefix = topic_prefix
        self._source = source

    async def publish(self, updates: Sequence[PerformanceUpdated]) -> None:
        await self._kafka.publish_all(
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
        await self._kafka.publish_all(
            [
                KafkaRecord.of(for_command(c, now), self._prefix, self._source, trace)
                for c in commands
            ]
        )
