"""The pipeline's failure policy: what may pass is waited out, what keeps failing is
parked, a stopping process abandons; and which driver errors are which."""

from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, ProducerClosed, RecordTooLargeError
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    InvalidOperation,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from contracts.topics import Reason, Topic
from services.lifecycle.adapters.failures import classify
from services.lifecycle.service_layer.failures import Failure, Stopping
from services.lifecycle.service_layer.messages import Committed, Delivery, Handled, Outcome
from services.lifecycle.service_layer.pipeline import Pipeline, RetryPolicy
from services.lifecycle.service_layer.ports import OutboxRow, Refusal, VersionConflict


def delivery(offset: int) -> Delivery:
    return Delivery(Topic.INBOUND, "leads.inbound", 0, offset, b"{}")


class Script:
    """A lead service whose batches fail as scripted, per offset."""

    def __init__(self, failures: dict[int, list[BaseException]]) -> None:
        self.failures = failures
        self.calls: list[list[int]] = []
        self.parked: list[tuple[int, str]] = []

    async def decide_and_commit(
        self, deliveries: Sequence[Delivery], traces: Sequence[object] = ()
    ) -> Committed:
        self.calls.append([d.offset for d in deliveries])
        for d in deliveries:
            if self.failures.get(d.offset):
                raise self.failures[d.offset].pop(0)
        return Committed([Handled(Outcome.APPLIED) for _ in deliveries])

    async def park(self, delivery: Delivery, error: BaseException) -> Committed:
        self.parked.append((delivery.offset, type(error).__name__))
        return Committed([Handled(Outcome.REJECTED, Reason.INTERNAL_ERROR)])


class Observed:
    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.retries: list[Failure] = []
        self.parked_classes: list[str] = []

    def handled_batch(self, topic: str, outcomes: Sequence[Handled], seconds: float) -> None:
        self.outcomes += [h.outcome for h in outcomes]

    def retried(self, kind: Failure) -> None:
        self.retries.append(kind)

    def parked(self, error_class: str) -> None:
        self.parked_classes.append(error_class)


class NoOutbox:
    async def mark_sent(self, ids: Sequence[Any]) -> None: ...
    async def set_aside(self, refused: Sequence[tuple[OutboxRow, str]]) -> None: ...
    async def pending(
        self, limit: int, older_than: Any = None, skip: Any = None
    ) -> list[OutboxRow]:
        return []


class NoPublisher:
    async def publish(self, rows: Sequence[OutboxRow]) -> list[Refusal]:
        return []


def pipeline(service: Script, observed: Observed) -> Pipeline:
    return Pipeline(
        service,
        NoOutbox(),
        NoPublisher(),
        classify,
        observed,
        RetryPolicy(max_backoff=0.0, unforeseen_attempts=3, first_backoff=0.0),
    )


async def test_a_database_away_is_waited_out_and_nothing_is_parked() -> None:
    outage = [AutoReconnect("connection refused")] * 12
    service, observed = Script({7: list(outage)}), Observed()
    await pipeline(service, observed).process([delivery(6), delivery(7)])
    assert observed.outcomes == ["applied", "applied"]
    assert observed.retries == [Failure.TRANSIENT] * 12
    assert service.parked == []


async def test_a_message_that_keeps_failing_is_found_and_parked_and_the_rest_commit() -> None:
    service = Script({5: [ValueError("no rule foresaw this")] * 10})
    observed = Observed()
    await pipeline(service, observed).process([delivery(4), delivery(5), delivery(6)])
    # The batch fails, then each message on its own: only the one at fault is parked,
    # after the bounded tries, and the others commit.
    assert service.parked == [(5, "ValueError")]
    assert service.calls[0] == [4, 5, 6]
    assert service.calls.count([5]) == 3
    assert [4] in service.calls and [6] in service.calls
    assert observed.outcomes == ["applied", "rejected", "applied"]
    assert observed.parked_classes == ["ValueError"]


TOO_LARGE = OperationFailure("TransactionTooLargeForCache", code=334)


async def test_a_transaction_too_large_for_the_cache_is_committed_in_halves() -> None:
    # The whole batch is too large once, and so is its first half: halves of halves.
    service = Script({0: [TOO_LARGE, TOO_LARGE]})
    observed = Observed()
    await pipeline(service, observed).process([delivery(n) for n in range(8)])
    assert service.calls == [
        [0, 1, 2, 3, 4, 5, 6, 7],
        [0, 1, 2, 3],
        [0, 1],
        [2, 3],
        [4, 5, 6, 7],
    ]
    assert observed.outcomes == ["applied"] * 8
    assert service.parked == []  # too large is no reason to park anything


async def test_one_message_too_large_on_its_own_is_parked_after_its_tries() -> None:
    service = Script({1: [TOO_LARGE] * 10})
    observed = Observed()
    await pipeline(service, observed).process([delivery(0), delivery(1)])
    assert service.parked == [(1, "OperationFailure")]
    assert observed.outcomes == ["applied", "rejected"]


def test_a_transaction_too_large_for_the_cache_is_neither_transient_nor_unforeseen() -> None:
    assert classify(TOO_LARGE) is Failure.TOO_LARGE


async def test_a_stopping_process_abandons_the_batch_without_retrying() -> None:
    service = Script({3: [InvalidOperation("Cannot use AsyncMongoClient after close")]})
    with pytest.raises(Stopping):
        await pipeline(service, Observed()).process([delivery(3)])
    assert service.calls == [[3]] and service.parked == []


@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("x"),
        ServerSelectionTimeoutError("x"),
        OperationFailure("write conflict", code=112),
        OperationFailure("x", code=1, details={"errorLabels": ["TransientTransactionError"]}),
        BulkWriteError({"writeErrors": [{"code": 11602, "errmsg": "x"}]}),
        KafkaConnectionError(),
        VersionConflict("lead changed"),
        TimeoutError(),
        ConnectionResetError(),
    ],
)
def test_failures_that_may_pass(error: BaseException) -> None:
    assert classify(error) is Failure.TRANSIENT


@pytest.mark.parametrize(
    "error",
    [
        InvalidOperation("Cannot use AsyncMongoClient after close"),
        ProducerClosed(),
        Stopping(),
    ],
)
def test_failures_that_say_the_process_is_stopping(error: BaseException) -> None:
    assert classify(error) is Failure.STOPPING


@pytest.mark.parametrize(
    "error",
    [
        ValueError("x"),
        KeyError("x"),
        OperationFailure("document too large", code=10334),
        BulkWriteError({"writeErrors": [{"code": 2, "errmsg": "bad value"}]}),
        RecordTooLargeError(),
    ],
)
def test_failures_nobody_foresaw(error: BaseException) -> None:
    assert classify(error) is Failure.UNFORESEEN
