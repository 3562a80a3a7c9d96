"""The composition root: settings in, a running FastStream app out.

Everything is wired here and only here: the MongoDB store, the lead service,
the Kafka subscribers, the outbox relay and the read API's HTTP server.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import uvicorn
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.topics import INBOUND_TOPICS, OUTBOUND_TOPICS, Topic
from services.lifecycle.adapters.inbox import MongoInbox
from services.lifecycle.adapters.kafka import KafkaPublisher, ensure_topics
from services.lifecycle.adapters.lease import Lease
from services.lifecycle.adapters.mongo import MongoStore, connect
from services.lifecycle.adapters.tokens import TokenVerifier
from services.lifecycle.domain.clock import Clock, SystemClock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.entrypoints.docs import asyncapi
from services.lifecycle.entrypoints.http import create_api
from services.lifecycle.entrypoints.metrics import ServiceMetrics
from services.lifecycle.service_layer.handler import Delivery, Handled, LeadService
from services.lifecycle.service_layer.inbox import CursorSeal, Inbox
from services.lifecycle.service_layer.relay import OutboxRelay
from services.lifecycle.settings import Settings

log = logging.getLogger("leads.lifecycle")

CONSUMED = (Topic.INBOUND, Topic.PARTNER_ACTIONS, Topic.COMMANDS, Topic.PROFILES)


@dataclass
class Retry:
    """Backoff for failures that may pass (broker or database unavailable)."""

    first_delay: float = 0.1
    max_delay: float = 5.0
    attempts: int = 10
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    async def run(self, work: Callable[[], Awaitable[Handled]]) -> Handled:
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            try:
                return await work()
            except Exception:
                if attempt == self.attempts:
                    # Not acknowledged: Kafka redelivers it, nothing is lost.
                    raise
                log.warning("handling failed, retrying", exc_info=True, extra={"delay_s": delay})
                await self.sleep(delay)
                delay = min(delay * 2, self.max_delay)
        raise AssertionError("unreachable")


class LifecycleApp:
    """The service: owns its clients, and starts and stops them in order."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.mongo = connect(settings.mongodb_uri)
        self.store = MongoStore(
            self.mongo,
            settings.mongodb_database,
            self.clock,
            topic_prefix=settings.topic_prefix,
            event_source=settings.event_source,
            outbox_retention=settings.outbox_retention,
        )
        self.service = LeadService(
            self.store,
            self.clock,
            Windows(
                settings.response_window,
                settings.contact_request_window,
                settings.reminder_offsets,
            ),
        )
        self.producer = KafkaPublisher(settings.kafka_bootstrap_servers)
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
        )
        self.retry = Retry()
        self.metrics = ServiceMetrics()
        self.inbox = MongoInbox(self.store.database)
        self.api = create_api(
            Inbox(self.inbox, self.clock, CursorSeal.of(settings.cursor_secret)),
            TokenVerifier(settings),
            self.store.load_profile,
            self._readiness,
            self._metrics,
            asyncapi(settings),
        )
        self.http = _EmbeddedServer(
            uvicorn.Config(
                self.api,
                host=settings.http_host,
                port=settings.http_port,
                log_config=None,  # the service's JSON logging stays in charge
                access_log=False,
                lifespan="off",
            )
        )
        self._http_task: asyncio.Task[None] | None = None
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            # Per-message access logs ("Received", "Processed") at DEBUG: the
            # service logs its own line per message, with ids and outcome.
            logger=logging.getLogger("leads.kafka"),
            log_level=logging.DEBUG,
            client_id=f"leads-{settings.instance_id}",
        )
        self._subscribe()
        self.app = FastStream(self.broker, logger=log)
        self.app.on_startup(self._prepare)
        self.app.after_startup(self._start_relay)
        self.app.after_startup(self._start_http)
        self.app.on_shutdown(self._stop)
        self._relay_task: asyncio.Task[None] | None = None

    def topic_name(self, topic: Topic) -> str:
        return topic.named(self.settings.topic_prefix)

    def _subscribe(self) -> None:
        """One subscriber over the input topics: a single group member per
        replica joins (and rebalances) once, instead of three times."""
        topics = {self.topic_name(topic): topic for topic in CONSUMED}

        async def on_message(msg: KafkaMessage) -> None:
            record = msg.raw_message
            assert not isinstance(record, tuple)
            delivery = Delivery(
                topics[record.topic],
                record.topic,
                record.partition,
                record.offset,
                record.value or b"",
            )
            started = time.perf_counter()
            handled = await self.retry.run(lambda: self.service.handle(delivery))
            self.relay.wake()
            self.metrics.observe(delivery.topic.value, handled, time.perf_counter() - started)
            log.info(
                "message handled",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "outcome": handled.outcome,
                    "reason": handled.reason,
                },
            )

        self.broker.subscriber(
            *topics,
            group_id=self.settings.consumer_group,
            auto_offset_reset="earliest",
            # Commit the offset only after the transaction committed; never auto-commit.
            ack_policy=AckPolicy.NACK_ON_ERROR,
            title="lifecycle",
            description="Leads, partner actions, scheduler commands and partner profiles, "
            "in one consumer group.",
        )(on_message)

    async def _prepare(self) -> None:
        created = await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            [self.topic_name(t) for t in (*INBOUND_TOPICS, *OUTBOUND_TOPICS)],
            self.settings.topic_partitions,
            self.settings.topic_replication_factor,
        )
        await self.store.ensure_indexes()
        await self.inbox.ensure_indexes()
        log.info(
            "service prepared",
            extra={"topics_created": created, "database": self.settings.mongodb_database},
        )

    async def _start_relay(self) -> None:
        await self.producer.start()
        self._relay_task = asyncio.create_task(self.relay.run(), name="outbox-relay")
        log.info("service started", extra={"consumer_group": self.settings.consumer_group})

    async def _start_http(self) -> None:
        self._http_task = asyncio.create_task(self.http.serve(), name="read-api")
        while not self.http.started:
            if self._http_task.done():
                await self._http_task  # raises why it could not start
                raise RuntimeError("the read API's HTTP server stopped at start-up")
            await asyncio.sleep(0.01)
        log.info(
            "read API listening",
            extra={"host": self.settings.http_host, "port": self.http_port},
        )

    @property
    def http_port(self) -> int:
        """The bound port (LEADS_HTTP_PORT=0 picks a free one)."""
        for server in self.http.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.settings.http_port

    async def _readiness(self) -> dict[str, bool]:
        async def mongodb() -> bool:
            try:
                await asyncio.wait_for(self.mongo.admin.command("ping"), 2.0)
            except Exception:
                return False
            return True

        kafka, mongo = await asyncio.gather(self.broker.ping(timeout=2.0), mongodb())
        return {"kafka": kafka, "mongodb": mongo}

    async def _metrics(self) -> bytes:
        return self.metrics.render(await self.store.unsent_count())

    async def _stop(self) -> None:
        if self._http_task is not None:
            self.http.should_exit = True
            await asyncio.gather(self._http_task, return_exceptions=True)
        if self._relay_task is not None:
            self._relay_task.cancel()
            await asyncio.gather(self._relay_task, return_exceptions=True)
        await self.producer.stop()
        await self.mongo.close()
        log.info("service stopped")

    async def run(self) -> None:
        await self.app.run()


class _EmbeddedServer(uvicorn.Server):
    """Uvicorn inside the FastStream app, which owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
