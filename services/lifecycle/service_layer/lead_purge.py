"""Archived leads past their retention (`LEADS_LEAD_RETENTION`), deleted for good by
the scheduler: each with its deadlines and source key, and a tombstone on
`leads.state` so that compaction drops its key from every connector's start."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.lead import Lead
from services.lifecycle.service_layer import publishing
from services.lifecycle.service_layer.outgoing import state_tombstone
from services.lifecycle.service_layer.ports import (
    Change,
    Lease,
    Outbox,
    OutboxRow,
    Publication,
    Publisher,
    VersionConflict,
)


class EndedLeads(Protocol):
    async def ended_before(self, cutoff: datetime, limit: int) -> list[Lead]: ...
    async def commit(self, change: Change) -> list[OutboxRow]: ...


class LeadPurge:
    """Deletes, a page per transaction, the leads that ended more than `retention` ago."""

    def __init__(
        self,
        store: EndedLeads,
        outbox: Outbox,
        publisher: Publisher,
        lease: Lease,
        clock: Clock,
        retention: timedelta,
        page_size: int = 500,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._publisher = publisher
        self._lease = lease
        self._clock = clock
        self._retention = retention
        self._page_size = page_size

    async def run(self) -> int:
        """Every lead past its retention; returns how many were deleted."""
        if not await self._lease.acquire():
            return 0
        now = self._clock.now()
        purged = 0
        while page := await self._store.ended_before(now - self._retention, self._page_size):
            change = Change(
                slot="purge",
                purged=page,
                outgoing=[
                    Publication(state_tombstone(lead, now), (lead.version + 1, 0)) for lead in page
                ],
            )
            try:
                rows = await self._store.commit(change)
            except VersionConflict:
                continue  # one was reopened or changed meanwhile: read the page again
            purged += len(page)
            await self._publish(rows)
            if len(page) < self._page_size:
                break
        return purged

    async def _publish(self, rows: Sequence[OutboxRow]) -> None:
        what = "tombstones of deleted leads"
        await publishing.publish_or_leave(self._publisher, self._outbox, rows, what)
