"""The MongoDB store, the lead service on it, and the outbox relay to Kafka, on real servers."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError

from contracts.topics import OUTBOUND_TOPICS, Topic
from services.lifecycle import logs
from services.lifecycle.adapters.failures import classify
from services.lifecycle.adapters.kafka import KafkaPublisher, ensure_topics
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.lease import MongoLease
from services.lifecycle.adapters.mongo import MongoStore, Write
from services.lifecycle.domain.clock import FixedClock, SystemClock
from services.lifecycle.domain.deadlines import DeadlineChanges, deadlines_of
from services.lifecycle.domain.lead import Windows
from services.lifecycle.entrypoints import cli
from services.lifecycle.service_layer.failures import Failure
from services.lifecycle.service_layer.in_flight import InFlightOutbox
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.messages import Handled
from services.lifecycle.service_layer.pipeline import Pipeline, RetryPolicy
from services.lifecycle.service_layer.ports import (
    Change,
    LeadWrite,
    Marker,
    OutboxRow,
    Refusal,
    VersionConflict,
)
from services.lifecycle.service_layer.relay import OutboxRelay
from services.lifecycle.settings import Settings
from tests import messages
from tests.integration.stored import outbox_rows
from tests.messages import delivery

CLOCK = SystemClock()


async def counts(store: MongoStore) -> tuple[int, int, int]:
    db = store.database
    return (
        await db["leads"].count_documents({}),
        await db["processed_messages"].count_documents({}),
        len(await outbox_rows(store)),
    )


# --- atomicity ---------------------------------------------------------------------


async def test_a_version_conflict_after_the_marker_leaves_nothing(
    store: MongoStore, service: LeadService
) -> None:
    await service.decide_and_commit_one(delivery(Topic.INBOUND, messages.inbound(lead_id="lead-a")))
    before = await counts(store)
    lead = await store.load("lead-a")
    assert lead is not None
    stale = Change(
        markers={"stale-message": Marker("stale-message", "applied")},
        leads={"lead-a": LeadWrite(lead.model_copy(update={"version": 9}), expected_version=7)},
    )
    with pytest.raises(VersionConflict):
        await store.commit(stale)
    assert await counts(store) == before
    assert not await store.is_processed("stale-message")


async def test_a_failure_after_the_lead_was_written_rolls_everything_back(
    store: MongoStore, service: LeadService
) -> None:
    await service.decide_and_commit_one(delivery(Topic.INBOUND, messages.inbound(lead_id="lead-b")))
    lead = await store.load("lead-b")
    assert lead is not None
    changed = lead.model_copy(update={"version": 2, "favorite": True})
    # The lead's own expiry deadline is stored already: adding it again fails the
    # transaction after the marker and the lead were written.
    [expiry] = [d for d in deadlines_of(lead, Windows()) if d.command == "expire"]
    before = await counts(store)
    with pytest.raises(BulkWriteError):
        await store.commit(
            Change(
                markers={"half-done": Marker("half-done", "applied")},
                leads={"lead-b": LeadWrite(changed, expected_version=1)},
                deadlines=[DeadlineChanges("lead-b", add=(expiry,), fresh=True)],
            )
        )
    assert await counts(store) == before
    reloaded = await store.load("lead-b")
    assert reloaded is not None and (reloaded.version, reloaded.favorite) == (1, False)


# --- dedupe ------------------------------------------------------------------------


async def test_the_same_message_twice_is_applied_once(
    store: MongoStore, service: LeadService
) -> None:
    lead = messages.inbound(lead_id="lead-c")
    accept = messages.action("lead-c", "accept")
    assert (await service.decide_and_commit_one(delivery(Topic.INBOUND, lead))).outcome == "applied"
    first = await service.decide_and_commit_one(delivery(Topic.PARTNER_ACTIONS, accept))
    second = await service.decide_and_commit_one(delivery(Topic.PARTNER_ACTIONS, accept))
    assert (first.outcome, second.outcome) == ("applied", "duplicate")
    stored = await store.load("lead-c")
    assert stored is not None and stored.version == 2
    assert len(await outbox_rows(store, "lead-c")) == 5  # 2 events, their states, 1 alert


async def test_concurrent_deliveries_of_one_message_commit_once(
    store: MongoStore, service: LeadService
) -> None:
    await service.decide_and_commit_one(delivery(Topic.INBOUND, messages.inbound(lead_id="lead-d")))
    favorite = messages.action("lead-d", "favorite")
    results = await asyncio.gather(
        *(
            service.decide_and_commit_one(delivery(Topic.PARTNER_ACTIONS, favorite))
            for _ in range(4)
        )
    )
    assert sorted(r.outcome for r in results) == ["applied", "duplicate", "duplicate", "duplicate"]
    assert len(await outbox_rows(store, "lead-d")) == 5


async def test_a_malformed_record_redelivered_is_answered_once(
    store: MongoStore, service: LeadService, settings: Settings
) -> None:
    bad = delivery(Topic.INBOUND, b"{nope", offset=42)
    assert (await service.decide_and_commit_one(bad)).outcome == "rejected"
    assert (await service.decide_and_commit_one(bad)).outcome == "duplicate"
    rejected = Topic.REJECTED.named(settings.topic_prefix)
    assert [row.topic for row in await outbox_rows(store)].count(rejected) == 1


# --- optimistic concurrency --------------------------------------------------------


async def test_concurrent_changes_to_one_lead_are_both_applied_in_turn(
    store: MongoStore, service: LeadService
) -> None:
    await service.decide_and_commit_one(delivery(Topic.INBOUND, messages.inbound(lead_id="lead-e")))
    results = await asyncio.gather(
        service.decide_and_commit_one(
            delivery(Topic.PARTNER_ACTIONS, messages.action("lead-e", "accept"))
        ),
        service.decide_and_commit_one(
            delivery(Topic.PARTNER_ACTIONS, messages.action("lead-e", "favorite"))
        ),
    )
    assert [r.outcome for r in results] == ["applied", "applied"]
    lead = await store.load("lead-e")
    assert lead is not None
    assert (lead.version, lead.stage, lead.favorite) == (3, "accepted", True)
    assert sorted(entry.action for entry in lead.history[1:]) == ["accept", "favorite"]


# --- relay -------------------------------------------------------------------------


class CrashAfter:
    """The real producer, failing once after publishing `n` rows: a crash mid-relay."""

    def __init__(self, producer: KafkaPublisher, n: int) -> None:
        self._producer = producer
        self._left = n

    async def publish(self, rows: Sequence[OutboxRow]) -> list[Refusal]:
        if self._left <= 0:
            raise ConnectionError("relay crashed")
        await self._producer.publish(rows[: self._left])
        self._left -= len(rows)
        if self._left <= 0:
            raise ConnectionError("relay crashed")
        return []


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[KafkaPublisher]:
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [t.named(settings.topic_prefix) for t in OUTBOUND_TOPICS],
        3,
        1,
    )
    producer = KafkaPublisher.of(settings, "test")
    await producer.start()
    yield producer
    await producer.stop()


async def read_all(settings: Settings, expected: int, timeout: float = 30) -> list[Any]:
    consumer = AIOKafkaConsumer(
        *(t.named(settings.topic_prefix) for t in OUTBOUND_TOPICS),
        **KafkaConnection.of(settings).options(),
        auto_offset_reset="earliest",
        group_id=f"reader-{uuid.uuid4()}",
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records.extend(r for rs in batch.values() for r in rs)
        # Anything more would be a duplicate: give it one more fetch to show up.
        batch = await consumer.getmany(timeout_ms=1000)
        records.extend(r for rs in batch.values() for r in rs)
    finally:
        await consumer.stop()
    return records


def relay(
    store: MongoStore,
    publisher: Any,
    settings: Settings,
    batch: int = 4,
    in_flight: InFlightOutbox | None = None,
) -> OutboxRelay:
    lease = MongoLease(store.database, "outbox-relay", "me", settings.relay_lease, CLOCK)
    return OutboxRelay(
        store, publisher, lease, batch_size=batch, poll_interval=0.1, in_flight=in_flight
    )


async def until_committed(store: MongoStore) -> None:
    """Polls until the store holds unsent rows (a batch committed), or 10 s pass."""
    deadline = asyncio.get_running_loop().time() + 10
    while not await store.pending(100) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


async def test_relay_resumes_after_a_crash_and_loses_nothing(
    store: MongoStore, service: LeadService, producer: KafkaPublisher, settings: Settings
) -> None:
    for n in range(5):  # 5 leads x (event + state + notification) = 15 rows
        await service.decide_and_commit_one(
            delivery(Topic.INBOUND, messages.inbound(lead_id=f"lead-r{n}"))
        )
    with pytest.raises(ConnectionError):
        await relay(store, CrashAfter(producer, 3), settings).relay_once()
    assert await store.unsent_count() == 15  # published 3, marked none: all still pending

    restarted = relay(store, producer, settings)
    while await restarted.relay_once():
        pass
    assert await store.unsent_count() == 0
    records = await read_all(settings, expected=18)
    ids = [dict(r.headers)["ce_id"] for r in records]
    assert len(set(ids)) == 15  # every row arrived; the 3 re-sent ones under the same ids
    assert len(ids) == 18


async def test_a_row_kafka_refuses_is_set_aside_and_the_rest_go_out_once(
    store: MongoStore, service: LeadService, producer: KafkaPublisher, settings: Settings
) -> None:
    for n in range(2):
        await service.decide_and_commit_one(
            delivery(Topic.INBOUND, messages.inbound(lead_id=f"lead-p{n}"))
        )
    # A 1.1 MiB record parked on the dead-letter topic: its copy there is more than
    # a produce request may carry (1 MiB), beside its internal_error answer.
    huge = delivery(Topic.INBOUND, b"x" * (1024 * 1024 + 100 * 1024))
    await service.park(huge, ValueError("no rule foresaw this"))
    await service.decide_and_commit_one(
        delivery(Topic.INBOUND, messages.inbound(lead_id="lead-p2"))
    )
    rows = await store.pending(100)
    dead_letter = Topic.DEAD_LETTER.named(settings.topic_prefix)
    assert [row.topic for row in rows].count(dead_letter) == 1

    the_relay = relay(store, producer, settings)
    while await the_relay.relay_once():
        pass  # the relay goes on past the refused row: it ends

    assert await store.pending(100) == []
    [aside] = await store.outbox.set_aside_rows()
    assert aside.topic == dead_letter
    assert aside.error == "MessageSizeTooLargeError" and aside.size == len(huge.value)
    records = await read_all(settings, expected=len(rows) - 1)
    ids = [dict(r.headers)["ce_id"] for r in records]
    assert len(ids) == len(set(ids)) == len(rows) - 1  # every other row once, none again


async def test_rows_set_aside_are_retried_through_the_outbox(
    store: MongoStore, service: LeadService, producer: KafkaPublisher, settings: Settings
) -> None:
    huge = delivery(Topic.INBOUND, b"x" * (1024 * 1024 + 100 * 1024))
    await service.park(huge, ValueError("no rule foresaw this"))
    the_relay = relay(store, producer, settings)
    while await the_relay.relay_once():
        pass
    [first] = await store.outbox.set_aside_rows()
    # Retried while still too large: back in the outbox, refused again, set aside
    # again under the row's new place: kept, not lost, and the relay still ends.
    assert await store.retry_set_aside([first.id]) == 1
    assert await store.outbox.set_aside_rows() == []
    assert [row.topic for row in await store.pending(100)] == [first.topic]
    while await the_relay.relay_once():
        pass
    [again] = await store.outbox.set_aside_rows()
    assert (again.topic, again.lead_id, again.size) == (first.topic, first.lead_id, first.size)
    assert await store.pending(100) == []


async def test_the_cli_lists_rows_set_aside_without_their_content_and_retries_them(
    store: MongoStore,
    service: LeadService,
    producer: KafkaPublisher,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = b"grace@fabrikam.example" * 60_000  # over 1 MiB, and personal
    await service.park(delivery(Topic.INBOUND, secret), ValueError("no rule foresaw this"))
    the_relay = relay(store, producer, settings)
    while await the_relay.relay_once():
        pass
    [aside] = await store.outbox.set_aside_rows()
    for name, value in settings.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(logs, "configure", lambda *_: None)  # pytest's logging stays

    def leads(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, listed, _ = await asyncio.to_thread(leads, "outbox", "list")
    assert code == 0 and aside.id in listed and "MessageSizeTooLargeError" in listed
    assert "grace@" not in listed
    code, _, missing = await asyncio.to_thread(leads, "outbox", "retry", "--id", "no-such-row")
    assert code == 1 and "no-such-row" in missing
    code, retried, _ = await asyncio.to_thread(leads, "outbox", "retry", "--id", aside.id)
    assert code == 0 and retried.startswith("1 row(s) back in the outbox")
    assert [row.topic for row in await store.pending(100)] == [aside.topic]


async def test_relay_keeps_each_leads_order_with_cloudevents_headers(
    store: MongoStore, service: LeadService, producer: KafkaPublisher, settings: Settings
) -> None:
    await service.decide_and_commit_one(delivery(Topic.INBOUND, messages.inbound(lead_id="lead-o")))
    for name in ("accept", "favorite", "unfavorite", "won"):
        await service.decide_and_commit_one(
            delivery(Topic.PARTNER_ACTIONS, messages.action("lead-o", name))
        )
    one_at_a_time = relay(store, producer, settings, batch=1)
    while await one_at_a_time.relay_once():
        pass
    records = [r for r in await read_all(settings, expected=6) if r.topic.endswith("leads.events")]
    versions = [json.loads(r.value)["version"] for r in records]
    assert versions == [1, 2, 3, 4, 5]
    headers = dict(records[0].headers)
    assert headers["ce_specversion"] == b"1.0" and headers["ce_type"] == b"lead.received"
    assert headers["ce_subject"] == b"lead-o" and headers["content-type"] == b"application/json"
    assert {r.key for r in records} == {b"lead-o"}


async def test_the_relay_waits_from_a_slow_transactions_commit_not_from_its_start(
    mongo: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of a transaction that took longer than the relay's wait are the
    consumer's to publish once it commits; taken by the relay at once, they went
    out twice."""
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    store = MongoStore(mongo[settings.mongodb_database], clock, settings.topic_prefix)
    await store.ensure_indexes()
    service = LeadService(store, clock, Windows())
    await service.decide_and_commit_one(delivery(Topic.PROFILES, messages.profile()))
    await store.mark_sent([row.id for row in await store.pending(100)])
    write = Write.run

    async def slow_write(self: Write, session: Any = None) -> None:
        clock.advance(timedelta(seconds=10))  # a busy store: each bulk write takes 10 s
        await write(self, session)

    monkeypatch.setattr(Write, "run", slow_write)
    lead = messages.inbound()
    await service.decide_and_commit_one(delivery(Topic.INBOUND, lead))

    # The transaction took 40 s or more; its last write, 10 s.
    assert await store.pending(100, older_than=timedelta(seconds=30)) == []
    left_over = await store.pending(100, older_than=timedelta(seconds=10))
    assert {row.lead_id for row in left_over} == {lead["lead_id"]}


class SlowBroker:
    """Kafka, with each publish held until the test lets it go."""

    def __init__(self, producer: KafkaPublisher) -> None:
        self.producer = producer
        self.go = asyncio.Event()

    async def publish(self, rows: Sequence[OutboxRow]) -> list[Refusal]:
        await self.go.wait()
        return await self.producer.publish(rows)


class Quiet:
    """A pipeline observer that observes nothing."""

    def handled_batch(self, topic: str, outcomes: Sequence[Handled], seconds: float) -> None: ...
    def retried(self, kind: Failure) -> None: ...
    def parked(self, error_class: str) -> None: ...


async def test_the_relay_leaves_rows_the_consumer_is_publishing_to_it(
    store: MongoStore, service: LeadService, producer: KafkaPublisher, settings: Settings
) -> None:
    """However long a publish takes, the relay of the same process does not send
    the rows too (nor a later row of the same lead, which would overtake them)."""
    broker = SlowBroker(producer)
    pipeline = Pipeline(service, store, broker, classify, Quiet(), RetryPolicy())
    the_relay = relay(store, producer, settings, batch=100, in_flight=pipeline.in_flight)
    handling = asyncio.create_task(
        pipeline.process([delivery(Topic.INBOUND, messages.inbound(lead_id="lead-slow"))])
    )
    await until_committed(store)
    assert {row.lead_id for row in await store.pending(100)} == {"lead-slow"}  # committed

    assert await the_relay.relay_once() == 0  # the consumer's to publish
    broker.go.set()
    await handling
    assert await the_relay.relay_once() == 0
    records = await read_all(settings, expected=3)
    assert len(records) == 3 and len({dict(r.headers)["ce_id"] for r in records}) == 3


async def test_a_batch_that_read_rows_another_batch_is_publishing_does_not_send_them_too(
    store: MongoStore, service: LeadService, producer: KafkaPublisher, settings: Settings
) -> None:
    """A lead's accept, on its own partition, is decided while the publish of its
    arrival is still under way: the accept waits for it rather than sending the
    arrival's rows a second time ahead of its own."""
    broker = SlowBroker(producer)
    pipeline = Pipeline(service, store, broker, classify, Quiet(), RetryPolicy())
    arriving = asyncio.create_task(
        pipeline.process([delivery(Topic.INBOUND, messages.inbound(lead_id="lead-both"))])
    )
    await until_committed(store)
    accepting = asyncio.create_task(
        pipeline.process([delivery(Topic.PARTNER_ACTIONS, messages.action("lead-both", "accept"))])
    )
    deadline = asyncio.get_running_loop().time() + 10
    while await store.versions_of(["lead-both"]) != {"lead-both": 2}:
        assert asyncio.get_running_loop().time() < deadline, "the accept was not committed"
        await asyncio.sleep(0.01)
    broker.go.set()
    await asyncio.gather(arriving, accepting)

    events = [r for r in await read_all(settings, expected=4) if r.topic.endswith("leads.events")]
    assert [dict(r.headers)["ce_type"] for r in events] == [b"lead.received", b"lead.accepted"]


async def test_the_relay_leaves_rows_whose_commit_has_not_returned_yet(
    mongo: Any, settings: Settings, producer: KafkaPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy store may apply a commit well before its reply reaches the consumer:
    the rows are then unsent on the store and still the consumer's to publish."""
    own = InFlightOutbox()
    store = MongoStore(
        mongo[settings.mongodb_database], CLOCK, settings.topic_prefix, in_flight=own
    )
    await store.ensure_indexes()
    service = LeadService(store, CLOCK, Windows())
    pipeline = Pipeline(service, store, producer, classify, Quiet(), RetryPolicy(), in_flight=own)
    the_relay = relay(store, producer, settings, batch=100, in_flight=own)
    commit = AsyncClientSession.with_transaction
    relayed_before_the_reply: list[int] = []

    async def late_reply(self: AsyncClientSession, *args: Any, **kwargs: Any) -> Any:
        done = await commit(self, *args, **kwargs)
        relayed_before_the_reply.append(await the_relay.relay_once())
        return done

    monkeypatch.setattr(AsyncClientSession, "with_transaction", late_reply)
    await pipeline.process([delivery(Topic.PROFILES, messages.profile())])
    await pipeline.process([delivery(Topic.INBOUND, messages.inbound(lead_id="lead-late"))])

    assert relayed_before_the_reply == [0, 0]
    assert await store.pending(100) == []
    records = await read_all(settings, expected=3)
    assert len(records) == 3 and len({dict(r.headers)["ce_id"] for r in records}) == 3


class Unmarkable:
    """The store's outbox, with marking rows sent failing."""

    async def pending(
        self, limit: int, older_than: timedelta = timedelta(0), skip: Any = None
    ) -> list[OutboxRow]:
        raise AssertionError("the pipeline does not read pending rows")

    async def mark_sent(self, ids: Sequence[Any]) -> None:
        raise ConnectionError("the store went away")

    async def set_aside(self, refused: Sequence[tuple[OutboxRow, str]]) -> None:
        raise AssertionError("nothing is refused here")


async def test_the_relay_marks_without_sending_what_the_consumer_published_unmarked(
    store: MongoStore, service: LeadService, producer: KafkaPublisher, settings: Settings
) -> None:
    pipeline = Pipeline(service, Unmarkable(), producer, classify, Quiet(), RetryPolicy())
    await pipeline.process([delivery(Topic.INBOUND, messages.inbound(lead_id="lead-unmarked"))])
    assert {row.lead_id for row in await store.pending(100)} == {"lead-unmarked"}

    the_relay = relay(store, producer, settings, batch=100, in_flight=pipeline.in_flight)
    assert await the_relay.relay_once() == 3
    assert await store.pending(100) == []
    records = await read_all(settings, expected=3)
    assert len(records) == 3 and len({dict(r.headers)["ce_id"] for r in records}) == 3


async def test_only_one_relay_holds_the_lease(store: MongoStore, settings: Settings) -> None:
    first = MongoLease(store.database, "outbox-relay", "a", settings.relay_lease, CLOCK)
    second = MongoLease(store.database, "outbox-relay", "b", settings.relay_lease, CLOCK)
    assert await first.acquire()
    assert not await second.acquire()
    await first.release()
    assert await second.acquire()
