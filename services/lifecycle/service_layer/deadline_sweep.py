"""One sweep: emit every due deadline as a command, in bounded batches.

Emitting is at least once: a deadline stays stored until the lifecycle service
settles it, and is emitted again after `retry_after` (doubling each time) if
the command was lost or the service was down. The command's id is the
deadline's, so the service applies it once however often it is emitted.
"""

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from contracts.commands import Command
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.deadlines import Deadline
from services.lifecycle.service_layer.ports import Lease
from services.lifecycle.service_layer.tracing import NoTracing, Tracer

log = logging.getLogger(__name__)

MAX_RETRY_DOUBLINGS = 6
"""A command still unapplied is re-sent after retry_after, then 2x, 4x ... up to 64x:
a long backlog in front of the service is not flooded with copies."""


class DueDeadlines(Protocol):
    async def due(self, now: datetime, limit: int) -> list[tuple[Deadline, int]]: ...
    async def postpone(self, next_emissions: Sequence[tuple[Deadline, datetime]]) -> None: ...
    async def count_due(self, now: datetime) -> int: ...


class CommandPublisher(Protocol):
    async def publish(self, commands: Sequence[Command]) -> None:
        """Returns once the broker has every command."""
        ...


def next_emission(now: datetime, emissions: int, retry_after: timedelta) -> datetime:
    """When a deadline just emitted for the (emissions + 1)th time is emitted again."""
    return now + retry_after * (1 << min(emissions, MAX_RETRY_DOUBLINGS))


@dataclass
class SweepReport:
    leader: bool
    due: int = 0
    """Deadlines due at the start of the sweep: the backlog."""
    emitted: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    seconds: float = 0.0

    def log_fields(self) -> dict[str, object]:
        return {
            "due_backlog": self.due,
            "emitted": dict(self.emitted),
            "emitted_total": sum(self.emitted.values()),
            "batches": self.batches,
            "sweep_ms": round(self.seconds * 1000, 1),
        }


class Sweeper:
    def __init__(
        self,
        deadlines: DueDeadlines,
        publisher: CommandPublisher,
        lease: Lease,
        clock: Clock,
        batch_size: int,
        retry_after: timedelta,
        tracer: Tracer | None = None,
    ) -> None:
        self._deadlines = deadlines
        self._publisher = publisher
        self._lease = lease
        self._clock = clock
        self._batch_size = batch_size
        self._retry_after = retry_after
        self._stopping = False
        self._tracer: Tracer = tracer or NoTracing()

    def stop(self) -> None:
        """End the sweep in progress after its current batch."""
        self._stopping = True

    async def sweep(self) -> SweepReport:
        """Emit what is due now, if this replica holds the lease: a trace of its own,
        which the commands it sends carry."""
        if not await self._lease.acquire():
            return SweepReport(leader=False)
        with self._tracer.run("leads.sweep"):
            return await self._sweep()

    async def _sweep(self) -> SweepReport:
        started = time.perf_counter()
        # One `now` per sweep: what it emits is pushed past it, so the sweep ends
        # even under a backlog; what falls due meanwhile waits for the next sweep.
        now = self._clock.now()
        report = SweepReport(leader=True, due=await self._deadlines.count_due(now))
        while not self._stopping and await self._emit_batch(now, report):
            if not await self._lease.acquire():
                log.warning("scheduler lease lost mid-sweep; stopping", extra=report.log_fields())
                break
        report.seconds = time.perf_counter() - started
        return report

    async def _emit_batch(self, now: datetime, report: SweepReport) -> bool:
        """Emit one batch; True when there may be more."""
        batch = await self._deadlines.due(now, self._batch_size)
        if not batch:
            return False
        await self._publisher.publish([deadline.to_command() for deadline, _ in batch])
        await self._deadlines.postpone(
            [(d, next_emission(now, emissions, self._retry_after)) for d, emissions in batch]
        )
        report.batches += 1
        report.emitted.update(deadline.command for deadline, _ in batch)
        return len(batch) == self._batch_size
