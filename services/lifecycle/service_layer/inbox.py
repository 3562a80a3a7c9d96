"""The partner's inbox, read side: list, count, one lead, and its performance.

Reads only; every query is scoped to the partner the caller is authenticated as.
"""

import base64
import binascii
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from contracts.events import Stage, Tab
from contracts.inbound import LeadType
from contracts.performance import PartnerPerformance
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.lead import Lead
from services.lifecycle.domain.performance import performance


class BadCursor(ValueError):
    """A cursor this service did not hand out."""


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: leads are listed newest first, lead id breaking ties."""

    received_at: datetime
    lead_id: str

    def encode(self) -> str:
        raw = json.dumps([self.received_at.isoformat(), self.lead_id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            received_at, lead_id = json.loads(raw)
            return cls(datetime.fromisoformat(received_at), str(lead_id))
        except (binascii.Error, ValueError, TypeError) as error:
            raise BadCursor("cursor is not one this service handed out") from error


@dataclass(frozen=True)
class InboxFilter:
    tab: Tab | None = None
    stage: Stage | None = None
    hot: bool | None = None
    expiring_by: datetime | None = None
    """Only leads still waiting for an answer whose deadline is no later than this."""
    lead_type: LeadType | None = None


@dataclass(frozen=True)
class Page:
    leads: list[Lead]
    next_cursor: Cursor | None


class InboxReader(Protocol):
    async def page(
        self, partner_id: str, where: InboxFilter, after: Cursor | None, limit: int
    ) -> Page: ...

    async def counts(self, partner_id: str) -> dict[tuple[Tab, Stage], int]:
        """Leads per tab and stage; the favorites tab counts favorite leads."""
        ...

    async def lead(self, partner_id: str, lead_id: str) -> Lead | None: ...

    async def performance(self, partner_id: str) -> PartnerPerformance | None:
        """The figures as last computed (by the scheduler), if any yet."""
        ...


class Inbox:
    def __init__(self, reader: InboxReader, clock: Clock) -> None:
        self._reader = reader
        self._clock = clock

    async def page(
        self,
        partner_id: str,
        where: InboxFilter,
        expiring_within: timedelta | None,
        cursor: str | None,
        limit: int,
    ) -> Page:
        if expiring_within is not None:
            where = replace(where, expiring_by=self._clock.now() + expiring_within)
        after = Cursor.decode(cursor) if cursor else None
        return await self._reader.page(partner_id, where, after, limit)

    async def counts(self, partner_id: str) -> dict[Tab, dict[Stage, int]]:
        found = await self._reader.counts(partner_id)
        return {tab: {stage: found.get((tab, stage), 0) for stage in Stage} for tab in Tab}

    async def lead(self, partner_id: str, lead_id: str) -> Lead | None:
        return await self._reader.lead(partner_id, lead_id)

    async def performance(self, partner_id: str) -> PartnerPerformance:
        """As last computed; before the first computation, figures of no leads."""
        stored = await self._reader.performance(partner_id)
        return stored or performance(partner_id, [])
