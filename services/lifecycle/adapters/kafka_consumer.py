"""The input topics, read in batches per partition with partitions side by side.

aiokafka directly, for the mechanics the service needs from its consumer: raw
bytes (decoded once, by the service), one batch per partition and round, an
offset committed per partition only once its batch is committed, read-committed
isolation, a partition whose records cannot even be read set aside (reported,
retried each minute) while the others go on, and a clean hand-over on stop
(finish the batch in hand, commit it, leave the group).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, KafkaError

from contracts.topics import Topic
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.refusals import kafka_refusals
from services.lifecycle.service_layer.failures import Stopping
from services.lifecycle.service_layer.messages import Delivery
from services.lifecycle.settings import Settings

log = logging.getLogger(__name__)

Process = Callable[[Sequence[Delivery]], Awaitable[None]]
"""Processes one partition's records, in order; returns once they are committed."""

UNREADABLE_RETRY_S = 60.0
COMMIT_INTERVAL_S = 0.1


MAX_POLL_INTERVAL_MS = 300_000
"""A replica whose every partition has been stuck on one batch this long (its MongoDB
away, say) leaves the group, so that others may take them; its batch goes on
retrying, and the version guards and markers keep both owners' work safe. It
joins again as soon as a batch ends. Kafka's default, kept on purpose."""
REBALANCE_MARGIN_S = 5.0


@dataclass(frozen=True)
class ConsumerSettings:
    connection: KafkaConnection
    topics: Mapping[str, Topic]
    """The topics read, by their name on the broker (prefixed)."""
    group_id: str
    client_id: str
    batch_max: int
    batch_wait_s: float
    fetch_max_wait_ms: int
    max_poll_records: int
    hand_over_s: float
    """How long partitions moving away (a rebalance, a stop) wait for the batch in hand."""
    group_instance_id: str | None = None
    """Static membership: back within the session timeout, a replica keeps its partitions."""
    session_timeout_ms: int = 10_000

    @classmethod
    def of(cls, settings: Settings, topics: Iterable[Topic]) -> "ConsumerSettings":
        return cls(
            connection=KafkaConnection.of(settings),
            topics={topic.named(settings.topic_prefix): topic for topic in topics},
            group_id=settings.consumer_group,
            client_id=f"leads-{settings.instance_id}",
            batch_max=settings.batch_max,
            batch_wait_s=settings.batch_wait.total_seconds(),
            fetch_max_wait_ms=int(settings.kafka_fetch_max_wait.total_seconds() * 1000),
            max_poll_records=settings.kafka_max_poll_records,
            hand_over_s=settings.shutdown_grace.total_seconds(),
            group_instance_id=settings.kafka_group_instance_id,
            session_timeout_ms=int(settings.kafka_session_timeout.total_seconds() * 1000),
        )

    @property
    def rebalance_timeout_ms(self) -> int:
        """How long the group waits for members to re-join: above the hand-over, which
        waits for the batches in hand and then for their offset commit."""
        return int((2 * self.hand_over_s + REBALANCE_MARGIN_S) * 1000)


class BatchConsumer:
    def __init__(
        self,
        settings: ConsumerSettings,
        process: Process,
        on_unreadable: Callable[[str, int], None] = lambda topic, partition: None,
    ) -> None:
        self._settings = settings
        self._process = process
        self._on_unreadable = on_unreadable
        self._consumer: AIOKafkaConsumer | None = None
        self._loop: asyncio.Task[None] | None = None
        self._busy: dict[TopicPartition, asyncio.Task[None]] = {}
        """Partitions whose batch is being handled: not fetched for until it is done."""
        self._freed = asyncio.Event()
        self._stopping = False
        self._next: dict[TopicPartition, int] = {}
        """Per partition, the offset after the last record handled here."""
        self._uncommitted: dict[TopicPartition, int] = {}
        """Offsets of handled batches not yet committed to Kafka."""
        self._committer: asyncio.Task[None] | None = None
        self._unreadable: dict[TopicPartition, float] = {}
        """Partitions set aside because their records cannot be read, since when."""

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise ConsumerStoppedError()
        return self._consumer

    def options(self) -> dict[str, object]:
        settings = self._settings
        return {
            **settings.connection.options(),
            "group_id": settings.group_id,
            "client_id": settings.client_id,
            "enable_auto_commit": False,  # an offset is committed once its batch is
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",  # never an aborted upstream transaction
            "fetch_max_wait_ms": settings.fetch_max_wait_ms,
            "max_poll_records": settings.max_poll_records,
            # Partition N of every input topic to one replica: a lead's messages on the
            # four topics (one key, one partition number) are decided by one replica.
            "partition_assignment_strategy": (RangePartitionAssignor,),
            "rebalance_timeout_ms": settings.rebalance_timeout_ms,
            "session_timeout_ms": settings.session_timeout_ms,
            "max_poll_interval_ms": MAX_POLL_INTERVAL_MS,
            "group_instance_id": settings.group_instance_id,
        }

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(**self.options())
        consumer.subscribe(list(self._settings.topics), listener=_HandOver(self))
        try:
            async with kafka_refusals(self._settings.connection):
                await consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        self._consumer = consumer
        self._loop = asyncio.create_task(self._run(), name="kafka-consumer")
        self._committer = asyncio.create_task(self._commit_offsets(), name="offset-commits")

    async def stop(self) -> None:
        """Stop fetching, let the batches in hand commit (within the hand-over time, else
        they are abandoned uncommitted and delivered again), then leave the group."""
        self._stopping = True
        self._freed.set()  # the loop may be waiting for a busy partition
        await self._finish_batches()
        for task in (self._loop, self._committer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._flush_offsets()
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            # Leaves the group, so the partitions move at once; a broker that does not
            # answer leaves it to the session timeout instead.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(consumer.stop(), self._settings.hand_over_s)

    def lag(self) -> dict[str, int]:
        """Records not yet handled, per topic, as of the last fetch: up to the last stable
        offset (an open upstream transaction's records cannot be read yet, and commit
        markers are no records)."""
        behind: dict[str, int] = {}
        if self._consumer is None:
            return behind
        for tp in self._consumer.assignment():
            end = _readable_end(self._consumer, tp)
            position = self._next.get(tp)
            if end is not None and position is not None:
                behind[tp.topic] = behind.get(tp.topic, 0) + max(0, end - position)
        return behind

    # --- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._dispatch()
            except (asyncio.CancelledError, ConsumerStoppedError):
                raise
            except Exception:
                log.exception("the consumer loop failed; going on")
                await asyncio.sleep(1.0)

    async def _dispatch(self) -> None:
        """Fetch for the partitions not busy with a batch, and start on what came."""
        self._retry_unreadable()
        self._freed.clear()
        idle = self.consumer.assignment() - self.consumer.paused() - set(self._busy)
        if idle:
            records = await self._fetch(idle)
        elif self._busy:
            records = {}
            await self._freed.wait()
        else:
            records = {}
            await asyncio.sleep(0.1)  # no partition assigned yet
        for tp, batch in records.items():
            if not self._stopping:
                self._busy[tp] = asyncio.create_task(self._handle_partition(tp, batch))

    async def _handle_partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        try:
            await self._handle_batches(tp, records)
        finally:
            self._busy.pop(tp, None)
            self._freed.set()

    async def _fetch(
        self, idle: set[TopicPartition]
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """Records of idle partitions: as soon as some are there, or a busy partition
        becomes free (then it is fetched for too)."""
        try:
            records = await self._first_of(idle)
            if records and self._settings.batch_wait_s > 0:
                # Once something is there, give the batches a moment to fill.
                more = await self.consumer.getmany(
                    *idle, timeout_ms=int(self._settings.batch_wait_s * 1000)
                )
                for tp, extra in more.items():
                    records.setdefault(tp, []).extend(extra)
            return records
        except Exception as error:
            if isinstance(error, ConsumerStoppedError):
                raise
            # Records of other partitions drained before the failure were taken but
            # never handed over: go back to what was handled, then read partition
            # by partition to find the one that cannot be read.
            log.warning("a fetch could not be read; reading partition by partition")
            await self._rewind(idle)
            return await self._fetch_each(idle)

    async def _first_of(
        self, idle: set[TopicPartition]
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        fetch = asyncio.ensure_future(self.consumer.getmany(*idle, timeout_ms=500))
        freed = asyncio.ensure_future(self._freed.wait())
        await asyncio.wait({fetch, freed}, return_when=asyncio.FIRST_COMPLETED)
        freed.cancel()
        if not fetch.done():
            # Records are taken from the buffer and handed back without a pause in
            # between: cancelled while waiting, a fetch has taken none.
            fetch.cancel()
            await asyncio.wait({fetch})
        if fetch.cancelled():
            return {}
        records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = fetch.result()
        return records

    async def _fetch_each(
        self, idle: set[TopicPartition]
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        await asyncio.sleep(self._settings.fetch_max_wait_ms / 1000)
        found: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for tp in sorted(idle):
            try:
                got = await self.consumer.getmany(tp, timeout_ms=0)
            except Exception as error:
                self._set_aside(tp, error)
                continue
            if got.get(tp):
                found[tp] = got[tp]
        return found

    async def _rewind(self, partitions: set[TopicPartition]) -> None:
        consumer = self.consumer
        for tp in partitions:
            if tp in self._next:
                consumer.seek(tp, self._next[tp])
            elif (committed := await consumer.committed(tp)) is not None:
                consumer.seek(tp, committed)
            else:
                await consumer.seek_to_beginning(tp)

    def _set_aside(self, tp: TopicPartition, error: Exception) -> None:
        """Records that cannot be read (an unknown codec, a corrupt batch) must not
        stop the other partitions: pause this one, say so, try it again in a minute."""
        self.consumer.pause(tp)
        self._unreadable[tp] = time.monotonic()
        self._on_unreadable(tp.topic, tp.partition)
        log.error(
            "records of a partition cannot be read; it is set aside and retried each minute",
            extra={
                "topic": tp.topic,
                "partition": tp.partition,
                "offset": self._next.get(tp),
                "error": f"{type(error).__name__}: {error}",
            },
        )

    def _retry_unreadable(self) -> None:
        now = time.monotonic()
        for tp, since in list(self._unreadable.items()):
            if now - since >= UNREADABLE_RETRY_S:
                del self._unreadable[tp]
                if tp in self.consumer.assignment():
                    self.consumer.resume(tp)

    async def _handle_batches(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        size = self._settings.batch_max
        last = (len(records) - 1) // size * size
        for start in range(0, len(records), size):
            batch = records[start : start + size]
            try:
                await self._process([self._delivery(record) for record in batch])
            except Stopping:
                return
            except Exception:
                # The pipeline answers every failure itself; this is a bug in it.
                # Read the batch again later rather than skip it.
                log.exception("a batch could not be handled; it is read again")
                self.consumer.seek(tp, batch[0].offset)
                await asyncio.sleep(1.0)
                return
            after = batch[-1].offset + 1
            if start == last:
                # Past what the fetch skipped after it (a commit marker, aborted
                # records): the committed offset then reaches the end, and lag 0.
                after = max(after, await self._position(tp, after))
            self._next[tp] = self._uncommitted[tp] = after

    def _delivery(self, record: ConsumerRecord[bytes, bytes]) -> Delivery:
        return Delivery(
            self._settings.topics[record.topic],
            record.topic,
            record.partition,
            record.offset,
            record.value or b"",
            record.key,
            tuple(record.headers),
        )

    async def _position(self, tp: TopicPartition, otherwise: int) -> int:
        try:
            return int(await self.consumer.position(tp))
        except KafkaError:  # moved away meanwhile
            return otherwise

    async def _commit_offsets(self) -> None:
        """Offsets of handled batches go to Kafka together, every COMMIT_INTERVAL_S:
        one request for every partition, not one per batch. A batch handled but not
        yet committed here is found done when delivered again."""
        while True:
            await asyncio.sleep(COMMIT_INTERVAL_S)
            await self._flush_offsets()

    async def _flush_offsets(self, partitions: set[TopicPartition] | None = None) -> None:
        due = {
            tp: offset
            for tp, offset in self._uncommitted.items()
            if partitions is None or tp in partitions
        }
        if not due or self._consumer is None:
            return
        for tp in due:
            self._uncommitted.pop(tp, None)
        await self._commit(due)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        # Never cancelled half-way (a stop cancels the committer): aiokafka would leave
        # its own request running with no one to read how it ended.
        commit = asyncio.ensure_future(self.consumer.commit(offsets))
        commit.add_done_callback(_outcome_read)
        try:
            # aiokafka retries a commit for as long as the broker is away: bounded, so
            # that a stop or a hand-over during an outage still ends.
            await asyncio.wait_for(asyncio.shield(commit), self._settings.hand_over_s)
        except (CommitFailedError, KafkaError, TimeoutError) as error:
            # Rebalanced away meanwhile: the new owner reads it again and finds it done.
            log.info(
                "offset commit failed; the batches will be found done",
                extra={"partitions": len(offsets), "error": type(error).__name__},
            )

    async def _finish_batches(self, partitions: set[TopicPartition] | None = None) -> None:
        """Let the batches in hand (of these partitions) commit, within the hand-over
        time; what is not done by then is abandoned uncommitted."""
        busy = [t for tp, t in self._busy.items() if partitions is None or tp in partitions]
        if busy and not await _finished(busy, self._settings.hand_over_s):
            log.warning("batches in hand did not finish in time; left uncommitted")

    def _assigned(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._next.pop(tp, None)
            self._uncommitted.pop(tp, None)
            self._unreadable.pop(tp, None)


class _HandOver(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions move away, the batch in hand commits its offsets."""

    def __init__(self, consumer: BatchConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._consumer._finish_batches(revoked)
        await self._consumer._flush_offsets(revoked)
        log.info("partitions handed over", extra={"partitions": len(revoked)})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._consumer._assigned(assigned)
        log.info("partitions assigned", extra={"partitions": len(assigned)})


def _readable_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The last stable offset under read_committed; the high watermark where the
    broker does not tell it."""
    stable = consumer.last_stable_offset(tp)
    if stable is not None and stable >= 0:
        return int(stable)
    end = consumer.highwater(tp)
    return None if end is None else int(end)


def _outcome_read(task: asyncio.Future[None]) -> None:
    """A commit left to finish on its own: its failure is expected (the group moved
    on, or the broker is away) and the batches are found done when delivered again."""
    if not task.cancelled():
        task.exception()


async def _finished(tasks: list[asyncio.Task[None]], timeout: float) -> bool:
    """Wait for `tasks` up to `timeout`; cancel those not done by then."""
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    return not pending
