"""`leads.inbound`: a new lead from an upstream referral system."""

from enum import StrEnum
from typing import Annotated

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
