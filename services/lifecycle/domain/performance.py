"""Responsiveness feedback: how fast and how well a partner answers its leads.

Pure: computed from the facts of each lead, with no clock and no storage, so
the same leads always give the same figures.
"""

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from contracts.common import DeclineReason, Money
from contracts.events import Outcome
from contracts.inbound import LeadType
from contracts.performance import Figures, PartnerPerformance, WonValue

DAY = timedelta(hours=24)
THREE_DAYS = timedelta(hours=72)


@dataclass(frozen=True)
class LeadFacts:
    """What the figures need to know of one lead."""

    lead_type: LeadType
    received_at: datetime
    answered_at: datetime | None
    outcome: Outcome | None
    decline_reason: DeclineReason | None = None
    deal_value: Money | None = None
    idle: bool = False
    """An accepted deal its partner was nudged about: it had not moved for the nudge's time."""

    @property
    def declined_as_duplicate(self) -> bool:
        """A lead sent twice: declining it says nothing of how the partner answers."""
        return self.outcome is Outcome.DECLINED and self.decline_reason is DeclineReason.DUPLICATE

    @property
    def accepted(self) -> bool:
        return self.answered_at is not None and self.outcome is not Outcome.DECLINED

    @property
    def open_deal(self) -> bool:
        """Accepted, neither won nor lost yet."""
        return self.accepted and self.outcome is None


def performance(partner_id: str, leads: Iterable[LeadFacts]) -> PartnerPerformance:
    facts = [lead for lead in leads if not lead.declined_as_duplicate]
    by_type: dict[LeadType, list[LeadFacts]] = defaultdict(list)
    for lead in facts:
        by_type[lead.lead_type].append(lead)
    return PartnerPerformance(
        partner_id=partner_id,
        overall=figures(facts),
        by_lead_type={kind: figures(by_type[kind]) for kind in LeadType if kind in by_type},
    )


def figures(leads: Sequence[LeadFacts]) -> Figures:
    answered = [lead for lead in leads if lead.answered_at is not None]
    times = sorted(lead.answered_at - lead.received_at for lead in answered if lead.answered_at)
    outcomes = Counter(lead.outcome for lead in leads)
    settled = len(answered) + outcomes[Outcome.EXPIRED]
    accepted = sum(lead.accepted for lead in leads)
    open_deals = [lead for lead in leads if lead.open_deal]
    return Figures(
        leads=len(leads),
        open=len(leads) - settled,
        answered=len(answered),
        accepted=accepted,
        declined=outcomes[Outcome.DECLINED],
        expired=outcomes[Outcome.EXPIRED],
        won=outcomes[Outcome.WON],
        lost=outcomes[Outcome.LOST],
        median_response_seconds=statistics.median(t.total_seconds() for t in times)
        if times
        else None,
        p90_response_seconds=_nearest_rank(times, 0.9),
        answered_within_24h=_share(sum(t <= DAY for t in times), settled),
        answered_within_72h=_share(sum(t <= THREE_DAYS for t in times), settled),
        accept_rate=_share(accepted, len(answered)),
        expiry_rate=_share(outcomes[Outcome.EXPIRED], settled),
        win_rate=_share(outcomes[Outcome.WON], outcomes[Outcome.WON] + outcomes[Outcome.LOST]),
        decline_reasons=dict(
            sorted(
                Counter(
                    lead.decline_reason
                    for lead in leads
                    if lead.outcome is Outcome.DECLINED and lead.decline_reason
                ).items()
            )
        ),
        won_value=_totals(lead.deal_value for lead in leads if lead.outcome is Outcome.WON),
        open_deals=len(open_deals),
        idle_deals_share=_share(sum(lead.idle for lead in open_deals), len(open_deals)),
    )


def _nearest_rank(times: Sequence[timedelta], quantile: float) -> float | None:
    if not times:
        return None
    return times[math.ceil(quantile * len(times)) - 1].total_seconds()


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _totals(values: Iterable[Money | None]) -> list[WonValue]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for value in values:
        if value is not None:
            totals[value.currency] += value.amount
    return [WonValue(currency=c, amount=totals[c]) for c in sorted(totals)]
