"""Held actions whose lead never came: refused `unknown_lead` once their grace ends.

The same path and the same timing whether no such lead exists or it is another
partner's, so the answer tells the sender nothing about other partners' leads.
"""

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from services.lifecycle.domain.clock import Clock
from services.lifecycle.service_layer import publishing
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.ports import (
    HeldAction,
    Lease,
    Outbox,
    OutboxRow,
    Publisher,
    VersionConflict,
)

Expired = Callable[[datetime, int], Awaitable[list[HeldAction]]]


class HeldExpiry:
    def __init__(
        self,
        expired: Expired,
        service: LeadService,
        outbox: Outbox,
        publisher: Publisher,
        lease: Lease,
        clock: Clock,
        batch_size: int,
    ) -> None:
        self._expired = expired
        self._service = service
        self._outbox = outbox
        self._publisher = publisher
        self._lease = lease
        self._clock = clock
        self._batch_size = batch_size

    async def run(self) -> int:
        """Refuse every held action past its grace; return how many."""
        if not await self._lease.acquire():
            return 0
        refused = 0
        now = self._clock.now()
        while batch := await self._expired(now, self._batch_size):
            rows: list[OutboxRow] = []
            for held in batch:
                try:
                    rows += await self._service.refuse_expired(held)
                except VersionConflict:
                    continue  # its lead came meanwhile and settled it
                refused += 1
            await self._publish(rows)
            if not rows or len(batch) < self._batch_size:
                break  # the rest next time: a batch that made no progress ends the run
        return refused

    async def _publish(self, rows: Sequence[OutboxRow]) -> None:
        what = "refusals of expired held actions"
        await publishing.publish_or_leave(self._publisher, self._outbox, rows, what)
