"""Where the service's parts are built: small factories with production defaults,
shared by both processes (`leads serve`: `entrypoints/app.py`; `leads scheduler`:
`entrypoints/scheduler.py`) and by `leads dev`, which runs the two. Each process's
root takes any part ready-made instead, so a test hands in a stand-in rather than
replacing attributes of a built one (cosmicpython's `bootstrap(uow=..., ...)`)."""

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from contracts.topics import Topic
from services.lifecycle.adapters.failures import classify
from services.lifecycle.adapters.kafka import KafkaPublisher
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.kafka_consumer import BatchConsumer, ConsumerSettings, Process
from services.lifecycle.adapters.lease import MongoLease
from services.lifecycle.adapters.mongo import MongoStore, connect, pinned
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.domain.privacy import SubjectKeys
from services.lifecycle.service_layer.erasure import ErasureService, WithErasures
from services.lifecycle.service_layer.in_flight import InFlightOutbox
from services.lifecycle.service_layer.inbox import CursorSeal, Inbox, InboxReader
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.pipeline import (
    BatchDecisions,
    Observer,
    Pipeline,
    RetryPolicy,
)
from services.lifecycle.service_layer.relay import OutboxRelay
from services.lifecycle.service_layer.tracing import Tracer
from services.lifecycle.settings import Settings

Document = dict[str, Any]


def mongo_client(settings: Settings) -> AsyncMongoClient[Document]:
    return connect(settings.mongodb_uri, settings.mongodb_timeout)


def database(settings: Settings, mongo: AsyncMongoClient[Document]) -> AsyncDatabase[Document]:
    return pinned(mongo[settings.mongodb_database])


def store(
    settings: Settings,
    db: AsyncDatabase[Document],
    clock: Clock,
    in_flight: InFlightOutbox | None = None,
    keyed: bool = True,
) -> MongoStore:
    """`keyed`: it writes leads, so it keeps their customers' keys (the operations
    commands that only read or touch them need no key)."""
    return MongoStore(
        db,
        clock,
        topic_prefix=settings.topic_prefix,
        event_source=settings.event_source,
        outbox_retention=settings.outbox_retention,
        in_flight=in_flight,
        timeout=settings.mongodb_timeout,
        subject_keys=subject_keys(settings) if keyed else None,
    )


class NoErasureKey(Exception):
    """LEADS_ERASURE_KEY is not set: no process that stores leads may run without it."""


def subject_keys(settings: Settings) -> SubjectKeys:
    """Customers' keyed hashes, where their data is kept and in erasures' proofs."""
    if settings.erasure_key is None:
        raise NoErasureKey(
            "set LEADS_ERASURE_KEY (a long random secret, the same on every replica, "
            "never changed); only `leads dev` has one of its own"
        )
    return SubjectKeys(settings.erasure_key.get_secret_value().encode())


def windows(settings: Settings) -> Windows:
    """The lifecycle's windows: the rules decide by them, the inbox reads by them."""
    return Windows(
        response=settings.response_window,
        contact_request=settings.contact_request_window,
        reminders=settings.reminder_offsets,
        duplicates=settings.duplicate_window,
        undo=settings.undo_window,
        reopen=settings.reopen_window,
        deal_nudge=settings.deal_nudge_after,
        deal_escalate=settings.deal_escalate_after,
        close_date_grace=settings.close_date_grace,
        deal_auto_close=settings.deal_auto_close_after,
    )


def lead_service(settings: Settings, store: MongoStore, clock: Clock) -> LeadService:
    return LeadService(
        store, clock, windows(settings), settings.early_action_grace, subject_keys(settings)
    )


def decisions(settings: Settings, store: MongoStore, clock: Clock) -> WithErasures:
    """What the service's consumer decides: leads, and customers' erasures."""
    erasures = ErasureService(store, clock, subject_keys(settings))
    return WithErasures(lead_service(settings, store, clock), erasures)


def inbox(settings: Settings, reader: InboxReader, clock: Clock) -> Inbox:
    """The partner's reads: cursors sealed with LEADS_CURSOR_SECRET, and the decline's
    undo window the rules go by."""
    return Inbox(reader, clock, CursorSeal.of(settings.cursor_secret), windows(settings))


def publisher(
    settings: Settings, role: str, on_renewed: Callable[[], None] = lambda: None
) -> KafkaPublisher:
    return KafkaPublisher.of(settings, role, on_renewed)


def lease(
    settings: Settings, db: AsyncDatabase[Document], name: str, ttl: timedelta, clock: Clock
) -> MongoLease:
    """This replica's hold on `name`, among all replicas sharing the database."""
    return MongoLease(db, name, settings.instance_id, ttl, clock)


def relay(
    settings: Settings,
    store: MongoStore,
    publisher: KafkaPublisher,
    clock: Clock,
    in_flight: InFlightOutbox,
) -> OutboxRelay:
    return OutboxRelay(
        store,
        publisher,
        lease(settings, store.database, "outbox-relay", settings.relay_lease, clock),
        batch_size=settings.relay_batch,
        poll_interval=settings.relay_poll_interval.total_seconds(),
        after=settings.relay_after,
        in_flight=in_flight,
    )


def pipeline(
    settings: Settings,
    service: BatchDecisions,
    store: MongoStore,
    publisher: KafkaPublisher,
    observer: Observer,
    *,
    on_unpublished: Callable[[], None],
    tracer: Tracer,
    in_flight: InFlightOutbox,
) -> Pipeline:
    return Pipeline(
        service,
        store,
        publisher,
        classify,
        observer,
        RetryPolicy(settings.retry_max_backoff.total_seconds(), settings.unforeseen_attempts),
        on_unpublished=on_unpublished,
        tracer=tracer,
        in_flight=in_flight,
    )


def consumer(
    settings: Settings,
    topics: tuple[Topic, ...],
    process: Process,
    on_unreadable: Callable[[str, int], None],
) -> BatchConsumer:
    return BatchConsumer(ConsumerSettings.of(settings, topics), process, on_unreadable)


def faststream_broker(settings: Settings) -> KafkaBroker:
    """Runs the process (signals, start and stop) and answers readiness for Kafka."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=KafkaConnection.of(settings).faststream_security(),
        logger=logging.getLogger("leads.kafka"),
        log_level=logging.DEBUG,
        client_id=f"leads-{settings.instance_id}-broker",
    )
