"""`leads scheduler`: settings in, a running APScheduler out.

An interval job sweeps MongoDB for due deadlines and emits them on
`leads.commands`, then refuses held actions whose lead never came; another
publishes changed partners' responsiveness figures on `partners.performance`.
Every replica runs the jobs; the one holding the MongoDB lease does the work,
and another takes over within the lease time when it dies. Each replica serves
/healthz and /metrics on LEADS_SCHEDULER_HTTP_PORT. The parts come from
`bootstrap`, or are handed in.
"""

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from fastapi import FastAPI, Response
from pymongo import AsyncMongoClient

from contracts.topics import Topic
from services.lifecycle import bootstrap
from services.lifecycle.adapters import tracing
from services.lifecycle.adapters.deadlines import MongoDueDeadlines
from services.lifecycle.adapters.inbox import MongoInbox
from services.lifecycle.adapters.kafka import (
    KafkaCommands,
    KafkaPerformanceUpdates,
    KafkaPublisher,
    ensure_topics,
)
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.adapters.performance import MongoPerformanceRecords
from services.lifecycle.adapters.refusals import mongodb_refusals
from services.lifecycle.adapters.tallies import MongoPartnerTallies
from services.lifecycle.domain.clock import Clock, SystemClock
from services.lifecycle.entrypoints.metrics import CONTENT_TYPE, SchedulerMetrics
from services.lifecycle.entrypoints.serving import EmbeddedServer
from services.lifecycle.service_layer.deadline_sweep import Sweeper
from services.lifecycle.service_layer.held_expiry import HeldExpiry
from services.lifecycle.service_layer.lead_purge import LeadPurge
from services.lifecycle.service_layer.performance_feedback import PerformancePublisher
from services.lifecycle.service_layer.ports import Lease
from services.lifecycle.settings import Settings

log = logging.getLogger(__name__)

LEASE_NAME = "deadline-scheduler"


class SchedulerWorker:
    """The deadline worker: every part has a production default; one handed in is
    used instead."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        mongo: AsyncMongoClient[dict[str, object]] | None = None,
        store: MongoStore | None = None,
        publisher: KafkaPublisher | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.settings = settings
        clock = clock or SystemClock()
        self.mongo = mongo or bootstrap.mongo_client(settings)
        database = bootstrap.database(settings, self.mongo)
        self.store = store or bootstrap.store(settings, database, clock)
        self.kafka = publisher or bootstrap.publisher(settings, "scheduler")
        self.lease = lease or bootstrap.lease(
            settings, database, LEASE_NAME, settings.scheduler_lease, clock
        )
        source = f"{settings.event_source}:scheduler"
        self.tracer = tracing.configure("leads-scheduler")
        self.sweeper = Sweeper(
            MongoDueDeadlines(database),
            KafkaCommands(self.kafka, settings.topic_prefix, source, clock, self.tracer),
            self.lease,
            clock,
            batch_size=settings.sweep_batch,
            retry_after=settings.command_retry_after,
            tracer=self.tracer,
        )
        self.held = HeldExpiry(
            self.store.held_past,
            bootstrap.lead_service(settings, self.store, clock),
            self.store,
            self.kafka,
            self.lease,
            clock,
            batch_size=settings.sweep_batch,
        )
        retention = settings.lead_retention
        self.purge = (
            LeadPurge(self.store, self.store, self.kafka, self.lease, clock, retention)
            if retention
            else None
        )
        self.performance = PerformancePublisher(
            MongoPartnerTallies(database),
            MongoPerformanceRecords(database),
            MongoInbox(database),
            KafkaPerformanceUpdates(self.kafka, settings.topic_prefix, source),
            self.lease,
            clock,
        )
        self.metrics = SchedulerMetrics()
        self.http = EmbeddedServer(
            self._health_api(),
            settings.http_host,
            settings.scheduler_http_port,
            port_setting="LEADS_SCHEDULER_HTTP_PORT",
        )
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._sweeping: asyncio.Task[None] | None = None
        # APScheduler logs every run at INFO; the sweep logs its own figures.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

    def _health_api(self) -> FastAPI:
        api = FastAPI(title="Lead lifecycle service: scheduler", docs_url=None, redoc_url=None)

        @api.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @api.get("/metrics")
        async def prometheus() -> Response:
            return Response(self.metrics.render(), media_type=CONTENT_TYPE)

        return api

    async def start(self) -> None:
        try:
            await self._connect()
        except BaseException:
            await self.stop()  # what did start is closed, not left to warn at exit
            raise
        # Catch up on deadlines at once on start; figures can wait an interval.
        self._every(self.settings.sweep_interval, self.sweep, "sweep", datetime.now(UTC))
        self._every(self.settings.performance_interval, self.publish_feedback, "performance")
        self.scheduler.start()
        log.info(
            "scheduler started",
            extra={
                "instance_id": self.settings.instance_id,
                "sweep_interval_s": self.settings.sweep_interval.total_seconds(),
                "performance_interval_s": self.settings.performance_interval.total_seconds(),
                "lease_s": self.settings.scheduler_lease.total_seconds(),
                "http_port": self.http.port,
            },
        )

    async def _connect(self) -> None:
        """Everything that can refuse the worker: its port, Kafka, MongoDB."""
        self.http.bind()
        # The state topic too: a lead deleted here may be the first record it gets.
        prefix = self.settings.topic_prefix
        await ensure_topics(
            KafkaConnection.of(self.settings),
            [t.named(prefix) for t in (Topic.COMMANDS, Topic.PERFORMANCE, Topic.STATE)],
            self.settings.topic_partitions,
            self.settings.topic_replication_factor,
            compacted=[Topic.STATE.named(prefix)],
        )
        async with mongodb_refusals(self.settings.mongodb_uri):
            await self.store.ensure_indexes()
        await self.kafka.start()
        await self.http.start()

    def _every(
        self,
        interval: timedelta,
        job: Callable[[], Awaitable[None]],
        name: str,
        first_run: datetime | None = None,
    ) -> None:
        seconds = interval.total_seconds()
        # APScheduler pauses a job whose next_run_time is None: leave it unset instead.
        first = {"next_run_time": first_run} if first_run is not None else {}
        self.scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            id=name,
            max_instances=1,  # a long run is not overlapped by the next one...
            coalesce=True,  # ...and the runs it missed collapse into one
            misfire_grace_time=max(1, int(seconds)),
            **first,
        )

    async def sweep(self) -> None:
        self._sweeping = asyncio.current_task()
        try:
            report = await self.sweeper.sweep()
            refused = await self.held.run() if report.leader else 0
            purged = await self.purge.run() if report.leader and self.purge else 0
        except Exception as error:
            log.warning("sweep failed; the next one retries", extra={"error": type(error).__name__})
            return
        finally:
            self._sweeping = None
        self.metrics.swept(report.leader, report.due, report.emitted, report.seconds)
        if report.leader:
            fields = {**report.log_fields(), "held_refused": refused, "leads_purged": purged}
            log.info("sweep done", extra=fields)

    async def publish_feedback(self) -> None:
        try:
            published = await self.performance.run()
        except Exception as error:
            log.warning(
                "performance feedback failed; the next run retries",
                extra={"error": type(error).__name__},
            )
            return
        if published:
            log.info("performance published", extra={"partners": published})

    async def stop(self) -> None:
        """Stop between batches, release the lease (a standby takes over at once),
        then close the producer and the database, in that order."""
        swept = self.scheduler.running  # else it never held the lease
        if swept:
            self.scheduler.shutdown(wait=False)
        self.sweeper.stop()
        if self._sweeping is not None:
            # What it sent but did not record is sent again: same ids, applied once.
            done, _ = await asyncio.wait(
                {self._sweeping}, timeout=self.settings.shutdown_grace.total_seconds()
            )
            if not done:
                self._sweeping.cancel()
        try:
            if swept:
                await self.lease.release()
        except Exception:
            log.warning("could not release the scheduler lease; it will lapse")
        await self.http.stop()
        await self.kafka.stop(self.settings.shutdown_grace.total_seconds())
        await self.mongo.close()
        tracing.shutdown(self.tracer)
        log.info("scheduler stopped")

    async def run(self) -> None:
        """Run until SIGINT or SIGTERM."""
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await self.start()
        try:
            await stopping.wait()
        finally:
            await self.stop()
