"""The outbox relay: publishes committed outbox rows to Kafka and marks them sent.

A crash between publishing and marking re-publishes the same rows with the same
ids after a restart: at least once, never under a new id. One replica relays
at a time (a lease), so rows are not raced out of order by two relays.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from bson import ObjectId

from services.lifecycle.service_layer.ports import Lease, OutboxRow

log = logging.getLogger(__name__)


class Outbox(Protocol):
    async def pending(self, limit: int) -> list[OutboxRow]: ...
    async def mark_sent(self, ids: Sequence[ObjectId]) -> None: ...


class Publisher(Protocol):
    async def publish(self, rows: Sequence[OutboxRow]) -> None: ...


class OutboxRelay:
    def __init__(
        self,
        outbox: Outbox,
        publisher: Publisher,
        lease: Lease,
        batch_size: int,
        poll_interval: float,
        max_backoff: float = 5.0,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._lease = lease
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New rows were committed here: relay them now rather than at the next poll."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch; return how many rows were sent."""
        rows = await self._outbox.pending(self._batch_size)
        if rows:
            await self._publisher.publish(rows)
            await self._outbox.mark_sent([row.id for row in rows])
        return len(rows)

    async def run(self) -> None:
        """Relay until cancelled, backing off while Kafka or MongoDB are unavailable."""
        backoff = self._poll_interval
        try:
            while True:
                self._wake.clear()
                try:
                    sent = await self.relay_once() if await self._lease.acquire() else 0
                    backoff = self._poll_interval
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox relay failed; retrying", extra={"backoff_s": backoff})
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                if sent == 0:
                    await self._idle()
        finally:
            await asyncio.shield(self._release())

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def _release(self) -> None:
        try:
            await self._lease.release()
        except Exception:
            log.warning("could not release the relay lease; it will lapse")
