"""`partners.performance`: how fast and how well a partner answers its leads.

Published as `partner.performance_updated` when the figures change (coalesced),
and served by the read API. Rates are shares between 0 and 1, null while the
number they are a share of is zero.
"""

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, PlainSerializer, WithJsonSchema

from contracts.common import Contract, Currency, DeclineReason, Id, UtcDatetime
from contracts.inbound import LeadType

Total = Annotated[
    Decimal,
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="always"),
    WithJsonSchema({"type": "string", "description": "A decimal number, as a string"}),
]


class WonValue(Contract):
    currency: Currency
    amount: Total


class Figures(Contract):
    leads: int = Field(description="Leads received")
    open: int = Field(description="Leads still waiting for an answer")
    answered: int = Field(description="Leads accepted or declined")
    accepted: int
    declined: int
    expired: int = Field(description="Leads nobody answered within the response window")
    won: int
    lost: int
    median_response_seconds: float | None = Field(
        description="Median time from receipt to accept or decline, over answered leads"
    )
    p90_response_seconds: float | None = Field(
        description="90th percentile (nearest rank) of the same times"
    )
    answered_within_24h: float | None = Field(
        description="Share of settled leads (answered or expired) answered within 24 hours"
    )
    answered_within_72h: float | None = Field(
        description="Share of settled leads (answered or expired) answered within 72 hours"
    )
    accept_rate: float | None = Field(description="accepted / answered")
    expiry_rate: float | None = Field(description="expired / settled (answered or expired)")
    win_rate: float | None = Field(description="won / (won + lost)")
    decline_reasons: dict[DeclineReason, int] = Field(
        description="How many declines gave each reason"
    )
    won_value: list[WonValue] = Field(description="Total deal value of won leads, per currency")
    open_deals: int = Field(default=0, description="Accepted leads neither won nor lost yet")
    idle_deals_share: float | None = Field(
        default=None,
        description="Share of open deals idle past LEADS_DEAL_NUDGE_AFTER (their partner was "
        "nudged and they have not moved since)",
    )


class PartnerPerformance(Contract):
    partner_id: Id
    overall: Figures
    by_lead_type: dict[LeadType, Figures] = Field(
        description="The same figures for each lead type the partner has received"
    )
    computed_at: UtcDatetime | None = Field(
        default=None,
        description="When the figures were computed from the partner's leads; changes to "
        "its leads show within LEADS_PERFORMANCE_INTERVAL. Null while none were computed.",
    )


class PerformanceUpdated(PartnerPerformance):
    """A partner's figures changed: partner search may rank it anew."""

    event_id: str
    type: Literal["partner.performance_updated"] = "partner.performance_updated"
    occurred_at: UtcDatetime
