"""`leads serve`: settings in, a running FastStream app out.

The parts come from `bootstrap` (or are handed in, by tests); this root wires them
and owns the process's life: what is checked before any work (`_prepare`), the start
in order, readiness and metrics, and the hand-over on stop.
"""

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from faststream import FastStream
from pymongo import AsyncMongoClient

from contracts.topics import COMPACTED_TOPICS, INBOUND_TOPICS, OUTBOUND_TOPICS
from services.lifecycle import bootstrap
from services.lifecycle.adapters import tracing
from services.lifecycle.adapters.action_publisher import KafkaActions
from services.lifecycle.adapters.action_status import MongoActionRecords
from services.lifecycle.adapters.inbox import MongoInbox
from services.lifecycle.adapters.kafka import KafkaPublisher, ensure_topics
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.kafka_consumer import BatchConsumer
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.adapters.refusals import mongodb_refusals
from services.lifecycle.adapters.tokens import TokenVerifier
from services.lifecycle.domain.clock import Clock, SystemClock
from services.lifecycle.entrypoints.docs import asyncapi
from services.lifecycle.entrypoints.http import create_api
from services.lifecycle.entrypoints.metrics import GaugeReadings, ServiceMetrics
from services.lifecycle.entrypoints.serving import EmbeddedServer
from services.lifecycle.service_layer.actions import Actions
from services.lifecycle.service_layer.in_flight import InFlightOutbox
from services.lifecycle.service_layer.relay import OutboxRelay
from services.lifecycle.settings import Settings

log = logging.getLogger(__name__)

CONSUMED = INBOUND_TOPICS


class LifecycleApp:
    """The service: owns its clients, and starts and stops them in order. Every part
    has a production default; one handed in is used instead."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        mongo: AsyncMongoClient[dict[str, object]] | None = None,
        store: MongoStore | None = None,
        producer: KafkaPublisher | None = None,
        relay: OutboxRelay | None = None,
        consumer: BatchConsumer | None = None,
        http: EmbeddedServer | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.mongo = mongo or bootstrap.mongo_client(settings)
        database = bootstrap.database(settings, self.mongo)
        # The outbox documents the consumer has in hand: its commits and publishes
        # mark them, and the relay of this process leaves them alone.
        in_flight = InFlightOutbox()
        self.store = store or bootstrap.store(settings, database, self.clock, in_flight)
        self.metrics = ServiceMetrics()
        self.producer = producer or bootstrap.publisher(
            settings, "service", self.metrics.producer_renewed
        )
        self.relay = relay or bootstrap.relay(
            settings, self.store, self.producer, self.clock, in_flight
        )
        self.tracer = tracing.configure("leads-lifecycle")
        self.pipeline = bootstrap.pipeline(
            settings,
            bootstrap.decisions(settings, self.store, self.clock),
            self.store,
            self.producer,
            self.metrics,
            on_unpublished=self.relay.wake,
            tracer=self.tracer,
            in_flight=in_flight,
        )
        self.consumer = consumer or bootstrap.consumer(
            settings, CONSUMED, self.pipeline.process, self.metrics.unreadable
        )
        self.inbox = MongoInbox(database)
        self.action_records = MongoActionRecords(database, self.clock)
        self.broker = bootstrap.faststream_broker(settings)
        self.api = self._read_api()
        self.http = http or EmbeddedServer(
            self.api,
            settings.http_host,
            settings.http_port,
            settings.shutdown_grace.total_seconds(),
            port_setting="LEADS_HTTP_PORT",
        )
        self._stopping = False
        self._relay_task: asyncio.Task[None] | None = None
        self.faststream = FastStream(self.broker, logger=log)
        self.faststream.on_startup(self._prepare)
        self.faststream.after_startup(self._start)
        self.faststream.on_shutdown(self.stop)

    def _read_api(self) -> FastAPI:
        actions = KafkaActions(
            self.producer,
            lambda timeout: self.broker.ping(timeout),
            self.settings.topic_prefix,
            self.settings.event_source,
            self.clock,
        )
        return create_api(
            bootstrap.inbox(self.settings, self.inbox, self.clock),
            TokenVerifier(self.settings),
            self.store.load_profile,
            self.readiness,
            self._metrics,
            asyncapi(self.settings),
            actions=Actions(self.action_records, actions, self.clock),
        )

    async def _prepare(self) -> None:
        """Everything that can refuse the service, before it takes any work: its port,
        Kafka (topics), MongoDB (collections, indexes)."""
        try:
            self.http.bind()
            created = await ensure_topics(
                KafkaConnection.of(self.settings),
                [t.named(self.settings.topic_prefix) for t in (*INBOUND_TOPICS, *OUTBOUND_TOPICS)],
                self.settings.topic_partitions,
                self.settings.topic_replication_factor,
                [t.named(self.settings.topic_prefix) for t in COMPACTED_TOPICS],
            )
            async with mongodb_refusals(self.settings.mongodb_uri):
                await self.store.ensure_indexes()
                await self.inbox.ensure_indexes()
                await self.action_records.ensure_indexes()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "service prepared",
            extra={"topics_created": created, "database": self.settings.mongodb_database},
        )

    async def _start(self) -> None:
        try:
            await self.producer.start()
            await self.start_relay()
            await self.consumer.start()
            await self._start_http()
        except BaseException:
            await self.stop()  # what did start is closed, not left to warn at exit
            raise
        log.info("service started", extra={"consumer_group": self.settings.consumer_group})

    async def start_relay(self) -> None:
        """The relay runs beside the consumer until stopped."""
        self._relay_task = asyncio.create_task(self.relay.run(), name="outbox-relay")

    async def _start_http(self) -> None:
        await self.http.start()
        log.info(
            "read API listening",
            extra={"host": self.settings.http_host, "port": self.http_port},
        )

    @property
    def http_port(self) -> int:
        return self.http.port or self.settings.http_port

    async def readiness(self) -> dict[str, bool]:
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
            GaugeReadings(
                outbox_backlog=await self.store.unsent_count(),
                outbox_oldest_unsent_s=(self.clock.now() - oldest).total_seconds() if oldest else 0,
                consumer_lag=self.consumer.lag(),
                held_actions=await self.store.held_count(),
                dependencies=await self._dependencies(),
                outbox_set_aside=await self.store.outbox.set_aside_count(),
            )
        )

    async def stop(self) -> None:
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
        await self.faststream.run()


async def _within(task: asyncio.Task[None], seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), seconds)
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
