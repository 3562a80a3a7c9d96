"""The read API's answers (`GET /v1/...`): the partner's inbox, as the portal shows it."""

from enum import StrEnum
from typing import Literal

from pydantic import Field

from contracts.common import Contract, UtcDatetime
from contracts.events import LeadSnapshot, Stage


class LeadSort(StrEnum):
    """The order of a list of leads (`sort`)."""

    NEWEST = "newest"
    """Newest first, by `received_at`."""
    IDLE = "idle"
    """Accepted deals only, idle longest first: by `idle_since`, earliest first."""


class LeadPage(Contract):
    items: list[LeadSnapshot] = Field(
        description="In the order asked for (`sort`): newest first (by received_at), or "
        "accepted deals idle longest first (by idle_since)"
    )
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class StageCounts(Contract):
    received: int
    accepted: int
    archived: int
    total: int


class InboxCounts(Contract):
    """Badge counts: leads per tab and stage."""

    marketplace: StageCounts
    qualified: StageCounts
    favorites: StageCounts


class Actor(Contract):
    """Who made a change, as events name it (`EventActor`), with a user's role."""

    kind: Literal["partner_user", "system", "referrer"] = Field(
        description="A partner's user, the lead's referrer, or the service itself "
        "(expiry, reminders, cool-down, re-offers); `partner_user` was `user` before 2026-12"
    )
    id: str | None = None
    role: str | None = None


class HistoryItem(Contract):
    at: UtcDatetime
    actor: Actor
    action: str
    from_stage: Stage | None
    to_stage: Stage


class LeadDetail(LeadSnapshot):
    """One lead, with its version and the history an auditor reads."""

    version: int
    history: list[HistoryItem]
    undo_until: UtcDatetime | None = Field(
        default=None,
        description="On a lead this partner declined: until when it may still take the "
        "decline back (`undo_decline`); null when it cannot, or no longer can",
    )
