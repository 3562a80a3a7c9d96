"""One partition's batch through the service: commit it, then publish what it committed.

The policy for failures lives here. What may pass (the broker or the database
away, a write conflict) is retried with a capped backoff for as long as it lasts,
never parked. Anything else that fails a batch is retried message by message, so
the message at fault is found; it is tried a few times and then parked on the
dead-letter topic and answered `internal_error`, and the partition moves on.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.lifecycle.service_layer import publishing
from services.lifecycle.service_layer.failures import (
    Backoff,
    Classify,
    Failure,
    Stopping,
    where_it_failed,
)
from services.lifecycle.service_layer.in_flight import InFlightOutbox, by_document
from services.lifecycle.service_layer.messages import Committed, Delivery, Handled
from services.lifecycle.service_layer.ports import Outbox, OutboxRow, Publisher
from services.lifecycle.service_layer.tracing import MessageTrace, NoTracing, Tracer

log = logging.getLogger(__name__)


class BatchDecisions(Protocol):
    """What the pipeline drives: the lead service."""

    async def decide_and_commit(
        self, deliveries: Sequence[Delivery], traces: Sequence[MessageTrace] = ()
    ) -> Committed: ...
    async def park(self, delivery: Delivery, error: BaseException) -> Committed: ...


class Observer(Protocol):
    """Where the pipeline reports what happened (metrics)."""

    def handled_batch(self, topic: str, outcomes: Sequence[Handled], seconds: float) -> None: ...
    def retried(self, kind: Failure) -> None: ...
    def parked(self, error_class: str) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_backoff: float = 5.0
    unforeseen_attempts: int = 3
    first_backoff: float = 0.1


class Pipeline:
    """One partition's batch through the service, with the failure policy.

    Arguments:
        service: decides a batch and commits it (the lead service).
        outbox: where published rows are marked sent and refused ones set aside.
        publisher: Kafka.
        classify: which kind of failure an error is (the adapters know).
        observer: told what happened (metrics).
        policy: backoff ceiling and tries before a message is parked.
        on_unpublished: called when rows are left to the relay (wakes it).
        tracer: a trace per message (no tracing by default).
        in_flight: the outbox documents this process has in hand (shared with its
            store and relay).
    """

    def __init__(
        self,
        service: BatchDecisions,
        outbox: Outbox,
        publisher: Publisher,
        classify: Classify,
        observer: Observer,
        policy: RetryPolicy,
        on_unpublished: Callable[[], None] = lambda: None,
        tracer: Tracer | None = None,
        in_flight: InFlightOutbox | None = None,
    ) -> None:
        self._service = service
        self._outbox = outbox
        self._publisher = publisher
        self._classify = classify
        self._observer = observer
        self._policy = policy
        self._on_unpublished = on_unpublished
        self._tracer: Tracer = tracer or NoTracing()
        self.in_flight = in_flight or InFlightOutbox()
        """The documents in hand here, which the relay of this process leaves alone."""

    async def process(self, deliveries: Sequence[Delivery]) -> None:
        """Returns once the batch is committed (or parked): its offsets may be committed.
        Raises `Stopping` when the process stops first: nothing was committed."""
        started = time.perf_counter()
        traces = [self._tracer.message(delivery) for delivery in deliveries]
        try:
            committed = await self._commit(deliveries, traces)
            await self._publish(committed.rows)
        finally:
            for trace in traces:
                trace.end()
        seconds = time.perf_counter() - started
        self._observer.handled_batch(deliveries[0].topic.value, committed.outcomes, seconds)
        log.debug(
            "batch handled",
            extra={
                "topic": deliveries[0].topic_name,
                "partition": deliveries[0].partition,
                "offsets": [deliveries[0].offset, deliveries[-1].offset],
                "outcomes": [h.outcome for h in committed.outcomes],
            },
        )

    async def _commit(
        self, deliveries: Sequence[Delivery], traces: Sequence[MessageTrace]
    ) -> Committed:
        backoff = self._backoff()
        while True:
            try:
                return await self._service.decide_and_commit(deliveries, traces)
            except Exception as error:
                kind = self._failure(error)
                if kind is Failure.TRANSIENT:
                    await self._retry_later(deliveries, error, kind, backoff, traces)
                elif len(deliveries) == 1:
                    return await self._retry_or_park(deliveries[0], error, traces[0])
                elif kind is Failure.TOO_LARGE:
                    self._observer.retried(kind)
                    return await self._in_parts(deliveries, traces, (len(deliveries) + 1) // 2)
                else:
                    # Find the message at fault: each on its own.
                    return await self._in_parts(deliveries, traces, 1)

    async def _in_parts(
        self, deliveries: Sequence[Delivery], traces: Sequence[MessageTrace], size: int
    ) -> Committed:
        """Commit the batch in parts of `size`, in order, each published once committed
        (so the next one finds nothing of it left unsent)."""
        outcomes: list[Handled] = []
        for start in range(0, len(deliveries), size):
            part = slice(start, start + size)
            committed = await self._commit(deliveries[part], traces[part])
            await self._publish(committed.rows)
            outcomes += committed.outcomes
        return Committed(outcomes)

    async def _retry_or_park(
        self, delivery: Delivery, first: Exception, trace: MessageTrace
    ) -> Committed:
        backoff = self._backoff()
        error: Exception = first
        for _ in range(self._policy.unforeseen_attempts - 1):
            await self._retry_later([delivery], error, Failure.UNFORESEEN, backoff, [trace])
            try:
                return await self._service.decide_and_commit([delivery], [trace])
            except Exception as again:
                kind = self._failure(again)
                if kind is Failure.TRANSIENT:
                    return await self._commit([delivery], [trace])  # it may pass after all
                error = again
        return await self._park(delivery, error, trace)

    async def _park(self, delivery: Delivery, error: Exception, trace: MessageTrace) -> Committed:
        backoff = self._backoff()
        while True:
            try:
                committed = await self._service.park(delivery, error)
            except Exception as failure:
                # Parking must not lose the message either: keep trying.
                await self._retry_later(
                    [delivery], failure, self._failure(failure), backoff, [trace]
                )
                continue
            self._observer.parked(type(error).__name__)
            log.error(
                "message parked on the dead-letter topic",
                extra={
                    "topic": delivery.topic_name,
                    "partition": delivery.partition,
                    "offset": delivery.offset,
                    "error": where_it_failed(error),
                    "attempts": self._policy.unforeseen_attempts,
                    "trace_id": trace.trace_id,
                },
            )
            return committed

    def _failure(self, error: Exception) -> Failure:
        kind = self._classify(error)
        if kind is Failure.STOPPING:
            raise Stopping("the process is stopping; the batch is left uncommitted") from error
        return kind

    async def _retry_later(
        self,
        deliveries: Sequence[Delivery],
        error: Exception,
        kind: Failure,
        backoff: Backoff,
        traces: Sequence[MessageTrace] = (),
    ) -> None:
        self._observer.retried(kind)
        log.warning(
            "handling failed, retrying",
            extra={
                "failure": kind.value,
                "error": where_it_failed(error),
                "topic": deliveries[0].topic_name,
                "partition": deliveries[0].partition,
                "offsets": [deliveries[0].offset, deliveries[-1].offset],
                "retry_in_s": backoff.next_delay,
                "trace_ids": [t.trace_id for t in traces if t.trace_id] or None,
            },
        )
        await backoff.wait()

    async def _publish(self, rows: Sequence[OutboxRow]) -> None:
        """Out at once, now that they are committed, and marked sent; what cannot go
        now goes with the relay. Rows this process published already are not
        published again: the batch may have read, as unsent, rows another batch
        here had just published, or was publishing (then it waits for that one)."""
        others = self.in_flight.in_hand(rows)
        # Held from here, synchronously after the commit's own hold (`MongoStore.commit`)
        # ended: the relay finds no moment when they are neither.
        with self.in_flight.holding(by_document(row for row in rows if row.id not in others)):
            await self.in_flight.settled(others)
            # What the other batch could not publish is this one's to send, first.
            with self.in_flight.holding(by_document(row for row in rows if row.id in others)):
                fresh = [row for row in rows if not self.in_flight.was_published(row.id)]
                if fresh:
                    await self._publish_and_mark(fresh)

    async def _publish_and_mark(self, fresh: Sequence[OutboxRow]) -> None:
        try:
            await publishing.publish(self._publisher, self._outbox, fresh)
        except Exception as error:
            log.warning(
                "publishing after commit failed; the relay sends it",
                extra={"error": where_it_failed(error), "rows": len(fresh)},
            )
            self._on_unpublished()
            return
        self.in_flight.published(row.id for row in fresh)
        try:
            await self._outbox.mark_sent([row.id for row in fresh])
        except Exception as error:
            # Left unmarked: this process's relay marks them (it knows they went from
            # here); another replica's sends them again, with the same ids.
            log.warning("marking published rows failed", extra={"error": type(error).__name__})

    def _backoff(self) -> Backoff:
        return Backoff(self._policy.first_backoff, self._policy.max_backoff)
