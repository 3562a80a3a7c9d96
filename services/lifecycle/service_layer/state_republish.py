"""`leads state republish`: every stored lead's state on `leads.state` again, to fill a
new or rebuilt topic.

Through the outbox, as any change: the relay of a running service publishes the
rows. Each page of leads commits their states only if none of them changed since
it was read (a change meanwhile published a newer state of its own; re-publishing
the older one after it would leave a compacted topic behind). Pages go in lead id
order and the last one done is recorded, so a stopped run resumes where it was.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.lead import Lead
from services.lifecycle.service_layer.outgoing import republished_state
from services.lifecycle.service_layer.ports import Change, Publication, VersionConflict

REPUBLISHED = 1_000_000
"""A re-published state's position among its version's rows: after the change's own."""


class StoredLeads(Protocol):
    async def leads_after(
        self, lead_id: str | None, partner_id: str | None, limit: int
    ) -> list[Lead]:
        """Up to `limit` leads by lead id, after `lead_id`; only `partner_id`'s if given."""
        ...

    async def commit(self, change: Change) -> object: ...

    async def republish_checkpoint(self, run: str) -> str | None:
        """The last lead id a stopped run of this scope did."""
        ...

    async def record_republish_checkpoint(self, run: str, lead_id: str | None) -> None:
        """The last lead id done in `run`; None when the run is over."""
        ...


@dataclass(frozen=True)
class Progress:
    republished: int
    skipped: int
    """Leads that changed while their page was read: their change published a newer state."""


class StateRepublisher:
    def __init__(self, leads: StoredLeads, clock: Clock, page_size: int = 500) -> None:
        self._leads = leads
        self._clock = clock
        self._page_size = page_size

    async def run(
        self,
        partner_id: str | None = None,
        restart: bool = False,
        progress: Callable[[Progress], None] = lambda _: None,
    ) -> Progress:
        """Every stored lead's state (`partner_id`'s only, if given), from where a
        stopped run of the same scope left off unless `restart`."""
        run = f"partner:{partner_id}" if partner_id is not None else "all"
        after = None if restart else await self._leads.republish_checkpoint(run)
        done = Progress(0, 0)
        while page := await self._leads.leads_after(after, partner_id, self._page_size):
            republished = await self._republish(page)
            done = Progress(done.republished + republished, done.skipped + len(page) - republished)
            after = page[-1].lead_id
            await self._leads.record_republish_checkpoint(run, after)
            progress(done)
        await self._leads.record_republish_checkpoint(run, None)
        return done

    async def _republish(self, page: Sequence[Lead]) -> int:
        """How many of the page's states were committed: all, or those of the leads
        that did not change meanwhile, one by one."""
        try:
            await self._leads.commit(self._change(page))
            return len(page)
        except VersionConflict:
            committed = 0
            for lead in page:
                try:
                    await self._leads.commit(self._change([lead]))
                    committed += 1
                except VersionConflict:
                    pass
            return committed

    def _change(self, leads: Sequence[Lead]) -> Change:
        now = self._clock.now()
        return Change(
            republished={lead.lead_id: lead.version for lead in leads},
            outgoing=[
                Publication(republished_state(lead, now), (lead.version, REPUBLISHED))
                for lead in leads
            ],
        )
