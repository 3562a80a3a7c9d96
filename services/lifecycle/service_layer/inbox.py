"""The partner's inbox, read side: list, count, one lead, and its performance.

Reads only; every query is scoped to the partner the caller is authenticated as.
"""

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import SecretStr, TypeAdapter

from contracts.common import Id
from contracts.events import Stage, Tab
from contracts.inbound import LeadType
from contracts.performance import PartnerPerformance
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.lead import Lead
from services.lifecycle.domain.performance import performance


class BadCursor(ValueError):
    """A cursor this service did not hand out, or handed out to another partner."""


_ID: TypeAdapter[str] = TypeAdapter(Id)


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: leads are listed newest first, lead id breaking ties."""

    received_at: datetime
    lead_id: str


class CursorSeal:
    """Makes cursors opaque and tamper-evident: the position, signed (HMAC-SHA256)
    with a server key together with the partner it is handed to. A cursor that
    was not signed here, or for another partner, is refused before any query.

    Without a key, one is drawn at random: cursors then last as long as the
    process, and replicas behind one address need a shared key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    @classmethod
    def of(cls, secret: SecretStr | None) -> "CursorSeal":
        return cls(secret.get_secret_value().encode() if secret else None)

    def seal(self, cursor: Cursor, partner_id: str) -> str:
        position = _b64encode(json.dumps([cursor.received_at.isoformat(), cursor.lead_id]))
        return f"{position}.{_b64encode(self._mac(position, partner_id))}"

    def open(self, text: str, partner_id: str) -> Cursor:
        position, _, mac = text.partition(".")
        try:
            if not hmac.compare_digest(_b64decode(mac), self._mac(position, partner_id)):
                raise BadCursor(_NOT_OURS)
            received_at, lead_id = json.loads(_b64decode(position))
            return Cursor(_utc(received_at), _ID.validate_python(lead_id, strict=True))
        except (ValueError, TypeError, OverflowError) as error:  # ValidationError too
            raise BadCursor(_NOT_OURS) from error

    def _mac(self, position: str, partner_id: str) -> bytes:
        signed = f"{partner_id}\x1f{position}".encode()
        return hmac.digest(self._key, signed, hashlib.sha256)


_NOT_OURS = "cursor is not one this service handed out to this partner"


def _b64encode(raw: str | bytes) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _utc(value: object) -> datetime:
    """A time with its offset, in UTC: anything else, or out of range, is refused."""
    if not isinstance(value, str):
        raise TypeError("not a time")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no offset")
    return parsed.astimezone(UTC)


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


@dataclass(frozen=True)
class SealedPage:
    """A page as handed to the partner: the next cursor sealed for it."""

    leads: list[Lead]
    next_cursor: str | None


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
    def __init__(
        self, reader: InboxReader, clock: Clock, cursors: CursorSeal | None = None
    ) -> None:
        self._reader = reader
        self._clock = clock
        self._cursors = cursors or CursorSeal()

    async def page(
        self,
        partner_id: str,
        where: InboxFilter,
        expiring_within: timedelta | None,
        cursor: str | None,
        limit: int,
    ) -> SealedPage:
        after = self._cursors.open(cursor, partner_id) if cursor else None
        if expiring_within is not None:
            where = replace(where, expiring_by=self._clock.now() + expiring_within)
        page = await self._reader.page(partner_id, where, after, limit)
        sealed = self._cursors.seal(page.next_cursor, partner_id) if page.next_cursor else None
        return SealedPage(page.leads, sealed)

    async def counts(self, partner_id: str) -> dict[Tab, dict[Stage, int]]:
        found = await self._reader.counts(partner_id)
        return {tab: {stage: found.get((tab, stage), 0) for stage in Stage} for tab in Tab}

    async def lead(self, partner_id: str, lead_id: str) -> Lead | None:
        return await self._reader.lead(partner_id, lead_id)

    async def performance(self, partner_id: str) -> PartnerPerformance:
        """As last computed; before the first computation, figures of no leads."""
        stored = await self._reader.performance(partner_id)
        return stored or performance(partner_id, [])
