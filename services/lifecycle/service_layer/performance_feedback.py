"""Responsiveness feedback: recompute the figures of partners whose leads changed,
store them for the read API, and publish `partner.performance_updated` when they
differ from the last ones.

Coalesced: however many leads of a partner changed since the last run, it gets
at most one update per run, and every changed partner is visited each run.
Published before it is recorded, so a crash in between publishes it again,
under the same id (derived from the change count).
"""

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from contracts.performance import PartnerPerformance, PerformanceUpdated
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.performance import LeadFacts, performance
from services.lifecycle.service_layer.outgoing import derived_id
from services.lifecycle.service_layer.ports import Lease

log = logging.getLogger(__name__)


class Changes(Protocol):
    async def stale(self, after: str | None, limit: int) -> list[tuple[str, dict[str, int]]]:
        """Partners whose leads changed, with the change counts seen."""
        ...

    async def settle(self, seen: dict[str, int]) -> None: ...


class Records(Protocol):
    async def figures(self, partner_id: str) -> PartnerPerformance | None: ...
    async def store(self, figures: PartnerPerformance, computed_at: datetime) -> None: ...


class Facts(Protocol):
    async def facts(self, partner_id: str) -> list[LeadFacts]: ...


class UpdatePublisher(Protocol):
    async def publish(self, updates: Sequence[PerformanceUpdated]) -> None: ...


class PerformancePublisher:
    def __init__(
        self,
        changes: Changes,
        records: Records,
        leads: Facts,
        publisher: UpdatePublisher,
        lease: Lease,
        clock: Clock,
        batch_size: int = 100,
    ) -> None:
        self._changes = changes
        self._records = records
        self._leads = leads
        self._publisher = publisher
        self._lease = lease
        self._clock = clock
        self._batch_size = batch_size

    async def run(self) -> int:
        """One round over every partner whose leads changed, in batches by partner
        id, so that partners changing all the time cannot starve the others.
        Returns how many updates it published."""
        if not await self._lease.acquire():
            return 0
        published, after = 0, None
        while batch := await self._changes.stale(after, self._batch_size):
            for partner_id, seen in batch:
                published += await self._refresh(partner_id, seen)
            after = batch[-1][0]
            if len(batch) < self._batch_size:
                break
            if not await self._lease.acquire():
                log.warning("scheduler lease lost mid-feedback; stopping")
                break
        return published

    async def _refresh(self, partner_id: str, seen: dict[str, int]) -> int:
        """Store the partner's figures, and publish them if they differ from the last;
        1 if published."""
        figures = performance(partner_id, await self._leads.facts(partner_id))
        last = await self._records.figures(partner_id)
        now = self._clock.now()
        changed = last is None or figures != last.model_copy(update={"computed_at": None})
        if changed:
            update = PerformanceUpdated(
                **figures.model_dump(exclude={"computed_at"}),
                computed_at=now,
                event_id=derived_id("performance", partner_id, str(sum(seen.values()))),
                occurred_at=now,
            )
            await self._publisher.publish([update])
        await self._records.store(figures, now)
        await self._changes.settle(seen)
        return int(changed)
