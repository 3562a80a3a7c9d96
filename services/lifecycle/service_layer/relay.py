"""The outbox relay: the recovery path for committed rows nobody published.

The consumer publishes what a batch committed at once; rows still unsent
`after` their commit (a crash between commit and publish, the broker away) are
published here and marked sent. A crash between publishing and marking
re-publishes the same rows with the same ids: at least once, never under a new
id. One replica relays at a time (a lease), so rows are not raced out of order.
"""

import asyncio
import contextlib
import logging
from datetime import timedelta

from services.lifecycle.service_layer import publishing
from services.lifecycle.service_layer.in_flight import InFlightOutbox
from services.lifecycle.service_layer.ports import Lease, Outbox, Publisher

log = logging.getLogger(__name__)


class OutboxRelay:
    """Publishes committed rows nobody published, under a lease.

    Arguments:
        outbox: the rows, and marking them sent.
        publisher: Kafka.
        lease: one relay at a time among replicas.
        batch_size: rows published per round, about.
        poll_interval: seconds between polls when there is nothing to do.
        after: rows younger than this are the consumer's to publish.
        max_backoff: ceiling, in seconds, of the wait after a failed round.
        in_flight: documents this process's consumer has in hand: left to it.
    """

    def __init__(
        self,
        outbox: Outbox,
        publisher: Publisher,
        lease: Lease,
        batch_size: int,
        poll_interval: float,
        after: timedelta = timedelta(0),
        max_backoff: float = 5.0,
        in_flight: InFlightOutbox | None = None,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._lease = lease
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._after = after
        self._max_backoff = max_backoff
        self._in_flight = in_flight or InFlightOutbox()
        """Documents this process's consumer has in hand: left to it."""
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Rows were left unsent here: relay them at the next chance."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch and mark it sent; return how many rows were settled."""
        pending = await self._outbox.pending(self._batch_size, self._after, self._in_flight.leaves)
        busy = self._in_flight.busy(pending)  # again: the consumer may have taken some meanwhile
        rows = [row for row in pending if row.id not in busy]
        sent = self._in_flight.sent(rows)
        unsent = [row for row in rows if row.id not in sent]
        if unsent:
            await publishing.publish(self._publisher, self._outbox, unsent)
        if rows:
            await self._outbox.mark_sent([row.id for row in rows])
        return len(rows)

    async def run(self) -> None:
        """Relay until stopped (or cancelled), backing off while Kafka or MongoDB are away."""
        backoff = self._poll_interval
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    sent = await self.relay_once() if await self._lease.acquire() else 0
                    backoff = self._poll_interval
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.warning(
                        "outbox relay failed; retrying",
                        extra={"error": type(error).__name__, "backoff_s": backoff},
                    )
                    await self._idle(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                if sent == 0:
                    await self._idle(self._poll_interval)
        finally:
            await asyncio.shield(self._release())

    def stop(self) -> None:
        """Finish the batch in hand (its sends are flushed and marked), then end `run`."""
        self._stopping = True
        self._wake.set()

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _release(self) -> None:
        try:
            await self._lease.release()
        except Exception:
            log.warning("could not release the relay lease; it will lapse")
