"""Publishing that recovers: a producer whose state is lost is replaced, a row Kafka
refuses for good is reported while the others go out once, and no publish waits
without bound. The producer is a stand-in: a lost idempotent state (the broker's
OutOfOrderSequenceNumber) cannot be made on demand on any broker here."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)

from services.lifecycle.adapters.kafka import SEND_ROUNDS, KafkaPublisher, KafkaRecord
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.service_layer.ports import Refusal

Outcome = Callable[[int, bytes], BaseException | None]
"""What the broker answers a record: (which producer, the value) -> an error or None."""


@dataclass
class Broker:
    """What reached the stand-in broker, by the producer that sent it."""

    answer: Outcome
    delivered: list[bytes] = field(default_factory=list)
    producers: list["FakeProducer"] = field(default_factory=list)
    hang: bool = False
    max_batch_bytes: int | None = None
    """A topic's max.message.bytes: a batch over it is refused whole, as Kafka does."""

    def producer(self, **options: Any) -> "FakeProducer":
        made = FakeProducer(self, len(self.producers))
        self.producers.append(made)
        return made


class FakeProducer:
    """Records sent together, without a pause between them, go in one batch (as
    aiokafka's accumulator puts them, lingering a moment)."""

    def __init__(self, broker: Broker, number: int) -> None:
        self.broker = broker
        self.number = number
        self.stopped = False
        self.batch: list[tuple[bytes, asyncio.Future[None]]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None
    ) -> "asyncio.Future[None]":
        if len(value) > 1024:  # aiokafka checks max_request_size before sending
            raise MessageSizeTooLargeError()
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self.batch:
            asyncio.get_running_loop().call_soon(self.flush)
        self.batch.append((value, delivery))
        return delivery

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if self.broker.hang:
            return  # never acknowledged (too few in-sync replicas, say)
        limit = self.broker.max_batch_bytes
        too_large = limit is not None and sum(len(value) for value, _ in batch) > limit
        for value, delivery in batch:
            error = (
                MessageSizeTooLargeError() if too_large else self.broker.answer(self.number, value)
            )
            if error is None:
                self.broker.delivered.append(value)
                delivery.set_result(None)
            else:
                delivery.set_exception(error)


def rows(*values: bytes) -> list[KafkaRecord]:
    return [KafkaRecord("leads.events", b"lead-1", [], value) for value in values]


async def publisher(broker: Broker, timeout_s: float = 5.0) -> KafkaPublisher:
    started = KafkaPublisher(
        KafkaConnection("127.0.0.1:9092"), timeout_s=timeout_s, producer=broker.producer
    )
    await started.start()
    return started


async def test_a_lost_producer_state_replaces_the_producer_and_loses_or_doubles_nothing() -> None:
    broker = Broker(lambda producer, value: OutOfOrderSequenceNumber() if producer == 0 else None)
    kafka = await publisher(broker)
    assert await kafka.publish(rows(b"a", b"b", b"c")) == []
    assert broker.delivered == [b"a", b"b", b"c"]  # each once, in order, by the new one
    assert len(broker.producers) == 2 and broker.producers[0].stopped
    assert kafka.publishing


async def test_a_row_refused_by_the_broker_is_reported_and_the_others_go_out_once() -> None:
    # The broker refuses "big" for good; the idempotent producer's sequence is then
    # spent, so the record after it on the partition fails as out of order.
    def answer(producer: int, value: bytes) -> BaseException | None:
        refused: dict[bytes, BaseException] = {b"big": MessageSizeTooLargeError()}
        if producer == 0:
            refused[b"after"] = OutOfOrderSequenceNumber()
        return refused.get(value)

    broker = Broker(answer)
    kafka = await publisher(broker)
    refused = await kafka.publish(rows(b"before", b"big", b"after"))
    assert refused == [Refusal(1, "MessageSizeTooLargeError")]
    assert broker.delivered == [b"before", b"after"]
    # A fresh producer for what comes next: the spent sequence would refuse it all.
    assert len(broker.producers) == 2
    assert await kafka.publish(rows(b"later")) == []
    assert broker.delivered[-1] == b"later"


async def test_rows_refused_with_a_batch_too_large_go_again_each_on_its_own() -> None:
    # The broker refuses a batch over the topic's limit whole: the small rows sent
    # with the large one are no fault of theirs.
    broker = Broker(lambda producer, value: None, max_batch_bytes=1000)
    kafka = await publisher(broker)
    refused = await kafka.publish(rows(b"a", b"x" * 1010, b"c", b"d" * 200))
    assert refused == [Refusal(1, "MessageSizeTooLargeError")]
    assert sorted(broker.delivered) == [b"a", b"c", b"d" * 200]  # each once
    # The refused batch spent the partition's sequence, and so did the row alone.
    assert len(broker.producers) == 3


async def test_a_row_too_large_to_leave_the_client_needs_no_new_producer() -> None:
    broker = Broker(lambda producer, value: None)
    kafka = await publisher(broker)
    refused = await kafka.publish(rows(b"a", b"x" * 2048, b"c"))
    assert refused == [Refusal(1, "MessageSizeTooLargeError")]
    assert broker.delivered == [b"a", b"c"]
    assert len(broker.producers) == 1


async def test_a_producer_that_cannot_be_mended_leaves_the_rows_to_the_relay() -> None:
    broker = Broker(lambda producer, value: UnknownProducerId())
    kafka = await publisher(broker)
    with pytest.raises(UnknownProducerId):
        await kafka.publish(rows(b"a"))
    assert len(broker.producers) == 1 + SEND_ROUNDS  # bounded, not forever
    assert broker.delivered == []
    assert not kafka.publishing


async def test_a_publish_the_broker_never_acknowledges_gives_up_in_time() -> None:
    broker = Broker(lambda producer, value: None, hang=True)
    kafka = await publisher(broker, timeout_s=0.2)
    with pytest.raises(TimeoutError):
        await kafka.publish(rows(b"a"))
    assert not kafka.publishing  # readiness says so
    broker.hang = False
    assert await kafka.publish(rows(b"a")) == []
    assert kafka.publishing


async def test_a_failure_that_may_pass_is_raised_for_the_relay() -> None:
    broker = Broker(lambda producer, value: KafkaTimeoutError() if value == b"b" else None)
    kafka = await publisher(broker)
    with pytest.raises(KafkaTimeoutError):
        await kafka.publish(rows(b"a", b"b"))
    assert len(broker.producers) == 1  # nothing wrong with the producer itself


async def test_stopping_is_bounded_when_the_flush_hangs() -> None:
    class Hanging(FakeProducer):
        async def stop(self) -> None:
            await asyncio.Event().wait()

    broker = Broker(lambda producer, value: None)
    kafka = KafkaPublisher(
        KafkaConnection("127.0.0.1:9092"), producer=lambda **_: Hanging(broker, 0)
    )
    await kafka.start()
    await asyncio.wait_for(kafka.stop(grace_s=0.1), 5.0)
