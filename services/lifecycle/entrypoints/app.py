"""The composition root: settings in, a running FastStream app out.

Everything is wired here and only here: the MongoDB store, the lead service and
its pipeline, the Kafka consumer, the outbox relay and the read API's HTTP server.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import ConsumerRecord
from faststream import FastStream
from faststream.kafka import KafkaBroker

from contracts.topics import INBOUND_TOPICS, OUTBOUND_TOPICS, Topic
from services.lifecycle.adapters import held, tracing
from services.lifecycle.adapters.action_publisher import KafkaActions
from services.lifecycle.adapters.action_status import MongoActionRecords
from services.lifecycle.adapters.failures import classify
from services.lifecycle.adapters.inbox import MongoInbox
from services.lifecycle.adapters.kafka import KafkaPublisher, ensure_topics
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.kafka_consumer import BatchConsumer, ConsumerSettings
from services.lifecycle.adapters.lease import Lease
from services.lifecycle.adapters.mongo import MongoStore, connect
from services.lifecycle.adapters.refusals import mongodb_refusals
from services.lifecycle.adapters.tokens import TokenVerifier
from services.lifecycle.domain.clock import Clock, SystemClock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.entrypoints.docs import asyncapi
from services.lifecycle.entrypoints.http import create_api
from services.lifecycle.entrypoints.metrics import Sampled, ServiceMetrics
from services.lifecycle.entrypoints.serving import EmbeddedServer
from services.lifecycle.service_layer.actions import Actions
from services.lifecycle.service_layer.batch import Delivery
from services.lifecycle.service_layer.handler import LeadService
from services.lifecycle.service_layer.inbox import CursorSeal, Inbox
from services.lifecycle.service_layer.own_documents import OwnDocuments
from services.lifecycle.service_layer.pipeline import Pipeline, RetryPolicy
from services.lifecycle.service_layer.relay import OutboxRelay
from services.lifecycle.settings import Settings

log = logging.getLogger("leads.lifecycle")

CONSUMED = (Topic.INBOUND, Topic.PARTNER_ACTIONS, Topic.COMMANDS, Topic.PROFILES)


class LifecycleApp:
    """The service: owns its clients, and starts and stops them in order."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.kafka = KafkaConnection.of(settings)
        self.mongo = connect(settings.mongodb_uri, settings.mongodb_timeout)
        # The outbox documents the consumer has in hand: its commits and publishes
        # mark them, and the relay of this process leaves them alone.
        self.own = OwnDocuments()
        self.store = MongoStore(
            self.mongo,
            settings.mongodb_database,
            self.clock,
            topic_prefix=settings.topic_prefix,
            event_source=settings.event_source,
            outbox_retention=settings.outbox_retention,
            own=self.own,
            timeout=settings.mongodb_timeout,
        )
        self.service = LeadService(
            self.store,
            self.clock,
            Windows(
                settings.response_window,
                settings.contact_request_window,
                settings.reminder_offsets,
            ),
            settings.early_action_grace,
        )
        self.metrics = ServiceMetrics()
        self.producer = KafkaPublisher.of(settings, "service", self.metrics.producer_renewed)
        self.relay = OutboxRelay(
            self.store,
            self.producer,
            Lease(
                self.store.database["leases"],
                "outbox-relay",
                settings.instance_id,
                settings.relay_lease,
                self.clock,
            ),
            batch_size=settings.relay_batch,
            poll_interval=settings.relay_poll_interval.total_seconds(),
            after=settings.relay_after,
            own=self.own,
        )
        self.tracer = tracing.configure("leads-lifecycle")
        self.pipeline = Pipeline(
            self.service,
            self.store,
            self.producer,
            classify,
            self.metrics,
            RetryPolicy(settings.retry_max_backoff.total_seconds(), settings.unforeseen_attempts),
            on_unpublished=self.relay.wake,
            tracer=self.tracer,
            own=self.own,
        )
        self._topics = {topic.named(settings.topic_prefix): topic for topic in CONSUMED}
        self.consumer = BatchConsumer(
            ConsumerSettings.of(settings, list(self._topics)),
            self._handle,
            on_unreadable=self.metrics.unreadable,
        )
        self.inbox = MongoInbox(self.store.database)
        self.action_records = MongoActionRecords(self.store.database, self.clock)
        self._stopping = False
        self.api = create_api(
            Inbox(self.inbox, self.clock, CursorSeal.of(settings.cursor_secret)),
            TokenVerifier(settings),
            self.store.load_profile,
            self._readiness,
            self._metrics,
            asyncapi(settings),
            actions=Actions(
                self.action_records,
                KafkaActions(
                    self.producer,
                    lambda timeout: self.broker.ping(timeout),
                    settings.topic_prefix,
                    settings.event_source,
                    self.clock,
                ),
                self.clock,
            ),
        )
        self.http = EmbeddedServer(
            self.api,
            settings.http_host,
            settings.http_port,
            settings.shutdown_grace.total_seconds(),
            port_setting="LEADS_HTTP_PORT",
        )
        self._relay_task: asyncio.Task[None] | None = None
        # Owns the process's signals and lifecycle; answers readiness for Kafka.
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            security=self.kafka.faststream_security(),
            logger=logging.getLogger("leads.kafka"),
            log_level=logging.DEBUG,
            client_id=f"leads-{settings.instance_id}-broker",
        )
        self.app = FastStream(self.broker, logger=log)
        self.app.on_startup(self._prepare)
        self.app.after_startup(self._start)
        self.app.on_shutdown(self._stop)

    async def _handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        topic = self._topics[records[0].topic]
        await self.pipeline.handle(
            [
                Delivery(
                    topic,
                    record.topic,
                    record.partition,
                    record.offset,
                    record.value or b"",
                    record.key,
                    tuple(record.headers),
                )
                for record in records
            ]
        )

    async def _prepare(self) -> None:
        """Everything that can refuse the service, before it takes any work: its port,
        Kafka (topics), MongoDB (collections, indexes)."""
        try:
            self.http.bind()
            created = await ensure_topics(
                self.kafka,
                [t.named(self.settings.topic_prefix) for t in (*INBOUND_TOPICS, *OUTBOUND_TOPICS)],
                self.settings.topic_partitions,
                self.settings.topic_replication_factor,
            )
            async with mongodb_refusals(self.settings.mongodb_uri):
                await self.store.ensure_indexes()
                await self.inbox.ensure_indexes()
                await self.action_records.ensure_indexes()
        except BaseException:
            await self._stop()
            raise
        log.info(
            "service prepared",
            extra={"topics_created": created, "database": self.settings.mongodb_database},
        )

    async def _start(self) -> None:
        try:
            await self.producer.start()
            self._relay_task = asyncio.create_task(self.relay.run(), name="outbox-relay")
            await self.consumer.start()
            await self._start_http()
        except BaseException:
            await self._stop()  # what did start is closed, not left to warn at exit
            raise
        log.info("service started", extra={"consumer_group": self.settings.consumer_group})

    async def _start_http(self) -> None:
        await self.http.start()
        log.info(
            "read API listening",
            extra={"host": self.settings.http_host, "port": self.http_port},
        )

    @property
    def http_port(self) -> int:
        return self.http.port or self.settings.http_port

    async def _readiness(self) -> dict[str, bool]:
        if self._stopping:
            return {"accepting": False}  # handing over: send requests elsewhere
        return await self._dependencies()

    async def _dependencies(self) -> dict[str, bool]:
        async def mongodb() -> bool:
            try:
                await asyncio.wait_for(self.mongo.admin.command("ping"), 2.0)
            except Exception:
                return False
            return True

        kafka, mongo = await asyncio.gather(self.broker.ping(timeout=2.0), mongodb())
        # Kafka may answer a ping while this producer cannot deliver (its state lost,
        # too few in-sync replicas): publishing is a dependency of its own.
        return {"kafka": kafka, "mongodb": mongo, "publishing": self.producer.publishing}

    async def _metrics(self) -> bytes:
        oldest = await self.store.oldest_unsent()
        return self.metrics.render(
            Sampled(
                outbox_backlog=await self.store.unsent_count(),
                outbox_oldest_unsent_s=(self.clock.now() - oldest).total_seconds() if oldest else 0,
                consumer_lag=self.consumer.lag(),
                held_actions=await held.count(self.store.database["held_actions"]),
                dependencies=await self._dependencies(),
                outbox_set_aside=await self.store.outbox.set_aside_count(),
            )
        )

    async def _stop(self) -> None:
        """The hand-over, in order: readiness fails at once; no more fetching; the
        batch in hand commits and its offsets with it (within LEADS_SHUTDOWN_GRACE);
        the group is left, so its partitions move now; the relay's sends are flushed;
        requests in flight are answered; then the producer and the database close."""
        self._stopping = True
        log.info(
            "stopping: handing over",
            extra={"grace_s": self.settings.shutdown_grace.total_seconds()},
        )
        await self.consumer.stop()
        self.relay.stop()
        if self._relay_task is not None:
            await _within(self._relay_task, self.settings.shutdown_grace.total_seconds())
        await self.http.stop()
        await self.producer.stop(self.settings.shutdown_grace.total_seconds())
        await self.mongo.close()
        tracing.shutdown(self.tracer)
        log.info("service stopped")

    async def run(self) -> None:
        await self.app.run()


async def _within(task: asyncio.Task[None], seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), seconds)
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
