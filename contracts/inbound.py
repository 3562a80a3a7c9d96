"""`leads.inbound`: a new lead from an upstream referral system."""

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from contracts.common import Contract, Country, Email, Id, MessageId, Name, Phone, UtcDatetime


class LeadType(StrEnum):
    CUSTOMER_INQUIRY = "customer_inquiry"
    MARKETING_QUALIFIED = "marketing_qualified"
    SALES_QUALIFIED = "sales_qualified"


class ReferrerKind(StrEnum):
    MICROSOFT = "microsoft"
    PARTNER = "partner"


class Referrer(Contract):
    """Who sent the lead; told when it expires unanswered."""

    kind: ReferrerKind
    id: Id
    name: Name | None = None
    email: Email | None = None


class Customer(Contract):
    company_name: Name
    contact_name: Name
    email: Email
    phone: Phone | None = None
    country: Country
    company_size: Annotated[str, StringConstraints(max_length=64)] | None = None
    industry: Annotated[str, StringConstraints(max_length=100)] | None = None


class Consent(Contract):
    """What the customer agreed to."""

    contact: bool = False
    given_at: UtcDatetime | None = Field(
        default=None,
        description="When the customer gave it: a customer whose data was erased is "
        "contacted again only with consent given after the erasure",
    )
    share_with_other_partners: bool = False
    """The lead may go to the next candidate when a partner declines it or lets it expire."""


class Routing(Contract):
    """Who else may have the lead, best first, should its partner not take it."""

    candidates: Annotated[list[Id], Field(max_length=10)] = Field(
        default=[], description="Partner ids, ranked: the first that can take the lead gets it"
    )
    max_offers: int = Field(
        default=3, ge=1, le=5, description="Offers in all, the first partner's included"
    )


class InboundLead(Contract):
    message_id: MessageId
    lead_id: Id
    partner_id: Id
    lead_type: LeadType
    referrer: Referrer
    customer: Customer
    need: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    contact_requested: bool = False
    campaign_id: Id | None = None
    received_at: UtcDatetime | None = Field(
        default=None, description="Defaults to the time the service took the lead"
    )
    source_lead_id: Id | None = Field(
        default=None,
        description="The sender's own id for this lead: sent again (under any lead_id), "
        "it is the same lead and is answered `duplicate_lead`",
    )
    consent: Consent | None = None
    routing: Routing | None = Field(
        default=None,
        description="Re-offer the lead to these candidates when declined or expired "
        "(needs consent.share_with_other_partners)",
    )

    OPTIONAL_SINCE_V1: ClassVar[frozenset[str]] = frozenset(
        {"source_lead_id", "consent", "routing"}
    )
    """Fields added after v1: left out of a lead's fingerprint when absent, so that a v1
    lead sent again is still the same lead."""


class ReopenReason(StrEnum):
    WRONG_DECLINE = "wrong_decline"
    EXPIRED_IN_ERROR = "expired_in_error"
    CUSTOMER_REENGAGED = "customer_reengaged"
    SYSTEM_ERROR = "system_error"


class ReopenLead(Contract):
    """On `leads.inbound`, from the lead's referrer (the upstream system owns the lead):
    a lead declined or expired within `LEADS_REOPEN_WINDOW` is received again, with a
    fresh window to answer; at most twice per lead."""

    message_type: Literal["reopen"]
    message_id: MessageId
    lead_id: Id
    referrer_id: Id = Field(description="The lead's referrer: no other may reopen it")
    reason: ReopenReason
    customer: Customer | None = Field(
        default=None, description="The customer again, contact data included, from its source"
    )
    contact_requested: bool = False
