"""The partner's inbox, read side: list (newest first, or idle deals first), count,
one lead, and its performance.

Reads only; every query is scoped to the partner the caller is authenticated as.
"""

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Protocol

from pydantic import SecretStr, TypeAdapter

from contracts.common import Id
from contracts.events import Stage, Tab
from contracts.inbound import LeadType
from contracts.inbox import LeadSort
from contracts.performance import PartnerPerformance
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.lead import Lead, Windows, undoable_until
from services.lifecycle.domain.performance import performance


class BadCursor(ValueError):
    """A cursor this service did not hand out, or handed out to another partner."""


_ID: TypeAdapter[str] = TypeAdapter(Id)


@dataclass(frozen=True)
class Cursor:
    """Where a page of the newest-first list ended: its last lead's arrival, the lead
    id breaking ties."""

    received_at: datetime
    lead_id: str
    sort: ClassVar[LeadSort] = LeadSort.NEWEST

    @property
    def key(self) -> tuple[datetime, str]:
        """The position in the list's order: the sorted time, then the lead id."""
        return self.received_at, self.lead_id


@dataclass(frozen=True)
class IdleCursor:
    """Where a page of the idle-longest list ended: its last deal's `idle_since`, the
    lead id breaking ties."""

    idle_since: datetime
    lead_id: str
    sort: ClassVar[LeadSort] = LeadSort.IDLE

    @property
    def key(self) -> tuple[datetime, str]:
        return self.idle_since, self.lead_id


Position = Cursor | IdleCursor


def position_of(lead: Lead, sort: LeadSort) -> Position:
    """Where `lead` stands in the list ordered by `sort`."""
    if sort is LeadSort.IDLE:
        assert lead.idle_since is not None  # only deals with an idle clock are listed so
        return IdleCursor(lead.idle_since, lead.lead_id)
    return Cursor(lead.received_at, lead.lead_id)


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

    def seal(self, cursor: Position, partner_id: str) -> str:
        at, lead_id = cursor.key
        # A newest-first cursor stays [time, id], as before there were two orders:
        # those handed out then still open.
        named = [] if cursor.sort is LeadSort.NEWEST else [cursor.sort.value]
        position = _b64encode(json.dumps([at.isoformat(), lead_id, *named]))
        return f"{position}.{_b64encode(self._mac(position, partner_id))}"

    def open(self, text: str, partner_id: str) -> Position:
        position, _, mac = text.partition(".")
        try:
            if not hmac.compare_digest(_b64decode(mac), self._mac(position, partner_id)):
                raise BadCursor(_NOT_OURS)
            return _position(json.loads(_b64decode(position)))
        except (ValueError, TypeError, OverflowError) as error:  # ValidationError too
            raise BadCursor(_NOT_OURS) from error

    def _mac(self, position: str, partner_id: str) -> bytes:
        signed = f"{partner_id}\x1f{position}".encode()
        return hmac.digest(self._key, signed, hashlib.sha256)


_NOT_OURS = "cursor is not one this service handed out to this partner"


def _position(fields: object) -> Position:
    match fields:
        case [at, lead_id]:
            return Cursor(_utc(at), _ID.validate_python(lead_id, strict=True))
        case [at, lead_id, LeadSort.IDLE.value]:
            return IdleCursor(_utc(at), _ID.validate_python(lead_id, strict=True))
    raise ValueError("not a position")


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
    """Which of the partner's leads to list, and in which order."""

    tab: Tab | None = None
    stage: Stage | None = None
    hot: bool | None = None
    expiring_by: datetime | None = None
    """Only leads still waiting for an answer whose deadline is no later than this."""
    lead_type: LeadType | None = None
    sort: LeadSort = LeadSort.NEWEST
    """`idle` lists accepted deals only: those with an idle clock (`idle_since`)."""


@dataclass(frozen=True)
class Page:
    leads: list[Lead]
    next_cursor: Position | None


@dataclass(frozen=True)
class SealedPage:
    """A page as handed to the partner: the next cursor sealed for it."""

    leads: list[Lead]
    next_cursor: str | None


class InboxReader(Protocol):
    async def page(
        self, partner_id: str, where: InboxFilter, after: Position | None, limit: int
    ) -> Page:
        """Up to `limit` leads past `after` in `where.sort`'s order (`after` is of it)."""
        ...

    async def counts(self, partner_id: str) -> dict[tuple[Tab, Stage], int]:
        """Leads per tab and stage; the favorites tab counts favorite leads."""
        ...

    async def lead(self, partner_id: str, lead_id: str) -> Lead | None: ...

    async def performance(self, partner_id: str) -> PartnerPerformance | None:
        """The figures as last computed (by the scheduler), if any yet."""
        ...


class Inbox:
    def __init__(
        self,
        reader: InboxReader,
        clock: Clock,
        cursors: CursorSeal | None = None,
        windows: Windows | None = None,
    ) -> None:
        """`windows`: the lifecycle rules' own (bootstrap builds both from settings)."""
        self._reader = reader
        self._clock = clock
        self._cursors = cursors or CursorSeal()
        self._windows = windows or Windows()

    async def page(
        self,
        partner_id: str,
        where: InboxFilter,
        expiring_within: timedelta | None,
        cursor: str | None,
        limit: int,
    ) -> SealedPage:
        after = self._cursors.open(cursor, partner_id) if cursor else None
        if after is not None and after.sort is not where.sort:
            # Read in another order, its position would skip or repeat leads.
            raise BadCursor(f"cursor is of the {after.sort.value} order, not {where.sort.value}")
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

    def undo_until(self, lead: Lead) -> datetime | None:
        """Until when the partner may still take back its decline of `lead`; None when
        it cannot, or no longer can."""
        until = undoable_until(lead, self._windows)
        return until if until is not None and self._clock.now() <= until else None

    async def performance(self, partner_id: str) -> PartnerPerformance:
        """As last computed; before the first computation, figures of no leads."""
        stored = await self._reader.performance(partner_id)
        return stored or performance(partner_id, [])
