"""`leads.events`: lifecycle facts, for CRM connectors and analytics."""

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from contracts.actions import ActivityKind, Deal
from contracts.common import (
    Contact,
    Contract,
    Country,
    DeclineReason,
    Email,
    Id,
    MessageId,
    Name,
    Notes,
    Phone,
    UtcDatetime,
)
from contracts.inbound import LeadType, Referrer, ReopenReason
from contracts.topics import EventType


class Stage(StrEnum):
    RECEIVED = "received"
    ACCEPTED = "accepted"
    ARCHIVED = "archived"


class Outcome(StrEnum):
    WON = "won"
    LOST = "lost"
    DECLINED = "declined"
    EXPIRED = "expired"


class Tab(StrEnum):
    MARKETPLACE = "marketplace"
    QUALIFIED = "qualified"
    FAVORITES = "favorites"


class Offer(Contract):
    """Which offer of its referral a lead is: "offer 2 of 3"."""

    number: int = Field(ge=1)
    of: int = Field(ge=1, description="The most offers the referrer allows")


class MatchedOn(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    COMPANY_DOMAIN = "company_domain"


class PossibleDuplicate(Contract):
    """An open lead of the same partner for what looks like the same customer."""

    lead_id: Id
    matched_on: list[MatchedOn]


class IdleStep(StrEnum):
    NUDGE = "nudge"
    ESCALATE = "escalate"


class Activity(Contract):
    """Work logged on a deal."""

    at: UtcDatetime
    kind: ActivityKind
    summary: Notes
    user_id: Id


class ActorKind(StrEnum):
    PARTNER_USER = "partner_user"
    REFERRER = "referrer"
    SYSTEM = "system"


class EventActor(Contract):
    """Who made the change: a partner's user, the referrer, or the service itself
    (expiry, reminders, cool-down, re-offers): never a user for what the system did."""

    kind: ActorKind
    id: str | None = None


class UnroutableReason(StrEnum):
    NO_CANDIDATE = "no_candidate"
    CONSENT_MISSING = "consent_missing"
    MAX_OFFERS = "max_offers"


class CustomerView(Contract):
    """The customer as stored: contact fields are erased (null) once the lead is
    declined or expires; company, country and size stay."""

    company_name: Name
    contact_name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    country: Country
    company_size: str | None = None
    industry: str | None = None


class LeadSnapshot(Contract):
    """The lead as it now stands (its history is not included)."""

    lead_id: Id
    partner_id: Id
    stage: Stage
    outcome: Outcome | None = None
    lead_type: LeadType
    tab: Tab
    customer: CustomerView
    need: str
    referrer: Referrer
    deal: Deal | None = None
    contacts: list[Contact] = []
    favorite: bool = False
    contact_requested: bool = False
    hot: bool = False
    hot_until: UtcDatetime | None = None
    received_at: UtcDatetime
    respond_by: UtcDatetime
    decline_reason: DeclineReason | None = None
    closing_notes: Notes | None = None
    campaign_id: Id | None = None
    answered_at: UtcDatetime | None = Field(
        default=None, description="When the partner accepted or declined the lead"
    )
    referral_id: Id | None = Field(
        default=None, description="On a re-offered lead: the id of its referral's first lead"
    )
    offer: Offer | None = Field(
        default=None, description="On a lead sent with routing: which offer of its referral"
    )
    possible_duplicate_of: PossibleDuplicate | None = None
    idle_since: UtcDatetime | None = Field(
        default=None,
        description="An accepted deal: when it last moved (pushed on by snoozes); its idle "
        "time is counted from here",
    )
    idle_step: IdleStep | None = Field(
        default=None, description="How far the idle alerts went since the deal last moved"
    )
    snoozed_until: UtcDatetime | None = None
    activities: list[Activity] = Field(default=[], description="Work logged, newest last")
    duplicate_of: Id | None = Field(
        default=None, description="Declined as a duplicate of this lead of the same partner"
    )


class LeadEvent(Contract):
    event_id: str
    type: EventType
    lead_id: Id
    partner_id: Id
    occurred_at: UtcDatetime
    version: int = Field(ge=1, description="The lead's version after the change")
    causation_id: MessageId = Field(description="The message_id that caused this event")
    lead: LeadSnapshot
    actor: EventActor | None = Field(default=None, description="Who made the change")
    reason: UnroutableReason | ReopenReason | None = Field(
        default=None,
        description="On `lead.unroutable`: why nobody else gets the lead; on "
        "`lead.reopened` by the referrer: why it reopened it",
    )
    reopen_count: int | None = Field(
        default=None, ge=0, description="On `lead.reopened`: the referrer's reopens so far"
    )
    from_outcome: Outcome | None = Field(
        default=None, description="On `lead.reopened`: how the lead had ended"
    )
    days_idle: int | None = Field(
        default=None, ge=0, description="On `lead.deal_idle`: whole days since the deal moved"
    )
    step: IdleStep | None = Field(default=None, description="On `lead.deal_idle`")
    request_id: Id | None = Field(
        default=None, description="On `lead.customer_erased`: the erasure request"
    )


class LeadState(LeadSnapshot):
    """`leads.state`: a lead as it now stands (as the read API returns it, without its
    history), after each change, written with the change's events. A lead's states
    come in version order; against `leads.events` there is no order: keep the highest
    version."""

    type: ClassVar[str] = "lead.state"
    """Its CloudEvents `type` (a header: the value is the lead, as the read API has it)."""
    version: int = Field(ge=1, description="The lead's version: the `version` of its last event")
