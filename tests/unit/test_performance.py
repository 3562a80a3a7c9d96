"""Responsiveness figures from a scripted set of leads."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from contracts.common import DeclineReason, Money
from contracts.events import Outcome
from contracts.inbound import LeadType
from services.lifecycle.domain.performance import LeadFacts, performance

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
INQUIRY, QUALIFIED = LeadType.CUSTOMER_INQUIRY, LeadType.SALES_QUALIFIED


def lead(
    answered_after: timedelta | None,
    outcome: Outcome | None = None,
    kind: LeadType = INQUIRY,
    reason: DeclineReason | None = None,
    value: str | None = None,
    currency: str = "EUR",
) -> LeadFacts:
    return LeadFacts(
        lead_type=kind,
        received_at=T0,
        answered_at=T0 + answered_after if answered_after is not None else None,
        outcome=outcome,
        decline_reason=reason,
        deal_value=Money(amount=value, currency=currency) if value else None,
    )


SCRIPT = [
    lead(2 * H, Outcome.WON, value="1000.50"),
    lead(10 * H, Outcome.WON, QUALIFIED, value="500", currency="USD"),
    lead(30 * H, Outcome.LOST, reason=DeclineReason.CHOSE_ANOTHER_VENDOR),
    lead(48 * H),  # accepted, still being worked on
    lead(80 * H, Outcome.DECLINED, QUALIFIED, DeclineReason.BUDGET_NOT_ADEQUATE),
    lead(1 * H, Outcome.DECLINED, reason=DeclineReason.BUDGET_NOT_ADEQUATE),
    lead(None, Outcome.EXPIRED, QUALIFIED),
    lead(None),  # still open
]


def test_overall_figures_follow_the_scripted_history() -> None:
    overall = performance("p", SCRIPT).overall
    assert (overall.leads, overall.open, overall.answered, overall.expired) == (8, 1, 6, 1)
    assert (overall.accepted, overall.declined, overall.won, overall.lost) == (4, 2, 2, 1)
    # Answer times in hours: 1, 2, 10, 30, 48, 80.
    assert overall.median_response_seconds == 20 * 3600
    assert overall.p90_response_seconds == 80 * 3600
    # Seven settled leads (six answered, one expired).
    assert overall.answered_within_24h == round(3 / 7, 4)
    assert overall.answered_within_72h == round(5 / 7, 4)
    assert overall.accept_rate == round(4 / 6, 4)
    assert overall.expiry_rate == round(1 / 7, 4)
    assert overall.win_rate == round(2 / 3, 4)
    # A lost deal's reason is not a decline.
    assert overall.decline_reasons == {DeclineReason.BUDGET_NOT_ADEQUATE: 2}
    assert [(v.currency, v.amount) for v in overall.won_value] == [
        ("EUR", Decimal("1000.50")),
        ("USD", Decimal("500")),
    ]


def test_figures_are_split_by_lead_type() -> None:
    found = performance("p", SCRIPT).by_lead_type
    assert set(found) == {INQUIRY, QUALIFIED}
    qualified = found[QUALIFIED]
    assert (qualified.leads, qualified.answered, qualified.expired) == (3, 2, 1)
    assert qualified.median_response_seconds == 45 * 3600
    assert qualified.answered_within_24h == round(1 / 3, 4)
    assert qualified.win_rate == 1.0


def test_a_partner_without_answers_has_no_rates_rather_than_zeros() -> None:
    figures = performance("p", [lead(None)]).overall
    assert (figures.leads, figures.open) == (1, 1)
    assert figures.median_response_seconds is None
    assert figures.accept_rate is None and figures.win_rate is None
    assert performance("p", []).by_lead_type == {}


def test_won_values_add_up_per_currency() -> None:
    won = [lead(H, Outcome.WON, value=v) for v in ("0.10", "0.20", "1000000000000")]
    [total] = performance("p", won).overall.won_value
    assert total.amount == Decimal("1000000000000.30")
    assert total.model_dump(mode="json") == {"currency": "EUR", "amount": "1000000000000.30"}


def test_a_lead_declined_as_a_duplicate_does_not_move_the_figures() -> None:
    slow_duplicate = lead(300 * H, Outcome.DECLINED, reason=DeclineReason.DUPLICATE)
    with_it = performance("p", [*SCRIPT, slow_duplicate])
    assert with_it == performance("p", SCRIPT)
    slow_decline = lead(300 * H, Outcome.DECLINED, reason=DeclineReason.OTHER)
    assert performance("p", [*SCRIPT, slow_decline]).overall != with_it.overall
