"""The deadline worker's composition root: settings in, a running APScheduler out.

An interval job sweeps MongoDB for due deadlines and emits them on
`leads.commands`; another publishes changed partners' responsiveness figures
on `partners.performance`. Every replica runs the jobs; the one holding the
MongoDB lease does the work, and another takes over within the lease time when
it dies.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from contracts.topics import Topic
from services.lifecycle.adapters.deadlines import DueDeadlines
from services.lifecycle.adapters.inbox import MongoInbox
from services.lifecycle.adapters.kafka import (
    KafkaCommands,
    KafkaPerformanceUpdates,
    KafkaPublisher,
    ensure_topics,
)
from services.lifecycle.adapters.lease import Lease
from services.lifecycle.adapters.mongo import connect
from services.lifecycle.adapters.performance import PerformanceRecords
from services.lifecycle.domain.clock import Clock, SystemClock
from services.lifecycle.settings import Settings
from services.scheduler.feedback import Feedback
from services.scheduler.sweep import Sweeper

log = logging.getLogger("leads.scheduler")

LEASE_NAME = "deadline-scheduler"


class SchedulerWorker:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        clock = clock or SystemClock()
        self.mongo = connect(settings.mongodb_uri)
        database = self.mongo[settings.mongodb_database]
        self.deadlines = DueDeadlines(database["deadlines"])
        self.kafka = KafkaPublisher(settings.kafka_bootstrap_servers)
        self.lease = Lease(
            database["leases"], LEASE_NAME, settings.instance_id, settings.scheduler_lease, clock
        )
        self.sweeper = Sweeper(
            self.deadlines,
            KafkaCommands(
                self.kafka, settings.topic_prefix, f"{settings.event_source}:scheduler", clock
            ),
            self.lease,
            clock,
            batch_size=settings.sweep_batch,
            retry_after=settings.command_retry_after,
        )
        self.performance = PerformanceRecords(database["partner_performance"])
        self.feedback = Feedback(
            self.performance,
            MongoInbox(database),
            KafkaPerformanceUpdates(
                self.kafka, settings.topic_prefix, f"{settings.event_source}:scheduler"
            ),
            self.lease,
            clock,
        )
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._sweeping: asyncio.Task[None] | None = None
        # APScheduler logs every run at INFO; the sweep logs its own figures.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

    async def start(self) -> None:
        await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            [t.named(self.settings.topic_prefix) for t in (Topic.COMMANDS, Topic.PERFORMANCE)],
            self.settings.topic_partitions,
            self.settings.topic_replication_factor,
        )
        await self.deadlines.ensure_indexes()
        await self.performance.ensure_indexes()
        await self.kafka.start()
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
            },
        )

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
        except Exception:
            log.exception("sweep failed; the next one retries")
            return
        finally:
            self._sweeping = None
        if report.leader:
            log.info("sweep done", extra=report.log_fields())

    async def publish_feedback(self) -> None:
        try:
            published = await self.feedback.run()
        except Exception:
            log.exception("performance feedback failed; the next run retries")
            return
        if published:
            log.info("performance published", extra={"partners": published})

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._sweeping is not None:
            # What it sent but did not record is sent again: same ids, applied once.
            self._sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeping
        try:
            await self.lease.release()  # a standby replica takes over at once
        except Exception:
            log.warning("could not release the scheduler lease; it will lapse")
        await self.kafka.stop()
        await self.mongo.close()
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
