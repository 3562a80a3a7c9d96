"""Accepted deals that stop moving: nudged, escalated, flagged past their close date,
closed when configured; what moves a deal, what pauses it, and the deadlines that follow."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from contracts.actions import PARTNER_ACTION
from contracts.commands import COMMAND, DealCommand
from contracts.common import DeclineReason
from contracts.events import IdleStep, Outcome, Stage
from contracts.inbound import InboundLead, LeadType
from contracts.profiles import PartnerProfile
from contracts.topics import EventType, NotificationTemplate, Reason
from services.lifecycle.domain import deadlines, stale_deals
from services.lifecycle.domain import lead as rules
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.lead import Decision, Lead, Windows
from services.lifecycle.domain.performance import LeadFacts, figures
from tests import messages

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
WINDOWS = Windows()
PROFILE = PartnerProfile.model_validate(messages.profile())
CLOSES = date(2027, 6, 30)  # messages.DEAL's expected close date


def accepted(at: datetime = T0) -> Lead:
    message = InboundLead.model_validate(messages.inbound(received_at=at.isoformat()))
    lead = rules.receive(None, message, at, WINDOWS, PROFILE).lead
    return act(lead, "accept", at).lead


def act(lead: Lead, name: str, at: datetime, **fields: Any) -> Decision:
    message = PARTNER_ACTION.validate_python(messages.action(lead.lead_id, name, **fields))
    return rules.act(lead, message, at, windows=WINDOWS)


def run(lead: Lead, name: str, at: datetime, windows: Windows = WINDOWS) -> Decision:
    message = COMMAND.validate_python(messages.command(lead.lead_id, name))
    assert isinstance(message, DealCommand)
    return stale_deals.command(lead, message, at, windows, PROFILE)


def due(lead: Lead, windows: Windows = WINDOWS) -> dict[str, datetime]:
    return {d.command: d.due_at for d in deadlines.deal_deadlines(lead, windows)}


def test_an_accepted_deal_waits_on_its_nudge_escalation_and_close_date() -> None:
    assert due(accepted()) == {
        "deal_nudge": T0 + 14 * DAY,
        "deal_escalate": T0 + 21 * DAY,
        "close_date_passed": datetime(2027, 7, 7, tzinfo=UTC),
    }


def test_an_untouched_deal_nudges_its_contacts_then_tells_the_admins() -> None:
    lead = accepted()
    nudged = run(lead, "deal_nudge", T0 + 14 * DAY)
    assert (nudged.event, nudged.lead.idle_step) == (EventType.DEAL_IDLE, IdleStep.NUDGE)
    assert {n.template for n in nudged.notifications} == {NotificationTemplate.DEAL_IDLE}
    assert all(n.recipient.role is None for n in nudged.notifications)
    assert nudged.notifications[0].data["days_idle"] == 14

    escalated = run(nudged.lead, "deal_escalate", T0 + 21 * DAY)
    assert (escalated.event, escalated.lead.idle_step) == (EventType.DEAL_IDLE, IdleStep.ESCALATE)
    [admins] = escalated.notifications
    assert (admins.recipient.role, admins.data["step"]) == (stale_deals.ADMIN_ROLE, "escalate")
    assert escalated.lead.history[-1].actor.kind == "system"


def test_an_alert_sent_already_or_not_due_yet_does_nothing() -> None:
    lead = accepted()
    assert run(lead, "deal_nudge", T0 + 14 * DAY - timedelta(seconds=1)).lead is lead
    nudged = run(lead, "deal_nudge", T0 + 14 * DAY).lead
    again = run(nudged, "deal_nudge", T0 + 15 * DAY)
    assert (again.lead, again.event, again.notifications) == (nudged, None, ())
    escalated = run(nudged, "deal_escalate", T0 + 21 * DAY).lead
    # An escalation covers the nudge: a late nudge does not follow it.
    assert run(escalated, "deal_nudge", T0 + 22 * DAY).lead is escalated


def test_each_alert_once_and_in_order_as_the_deadlines_follow_the_deal() -> None:
    windows = replace(WINDOWS, deal_auto_close=30 * DAY)
    lead, fired = accepted(), []
    for _ in range(5):  # more rounds than alerts: a round that fires nothing ends it
        pending = sorted(deadlines.deal_deadlines(lead, windows), key=lambda d: d.due_at)
        if not pending:
            break
        decision = run(lead, pending[0].command, pending[0].due_at, windows)
        assert decision.event is not None
        fired.append((pending[0].command, decision.event))
        lead = decision.lead
    assert fired == [
        ("deal_nudge", EventType.DEAL_IDLE),
        ("deal_escalate", EventType.DEAL_IDLE),
        ("auto_close", EventType.LOST),
    ]
    assert (lead.stage, lead.outcome, lead.decline_reason) == (
        Stage.ARCHIVED,
        Outcome.LOST,
        DeclineReason.NO_UPDATE,
    )


def test_auto_close_is_off_unless_configured() -> None:
    lead = accepted()
    assert "auto_close" not in due(lead)
    assert run(lead, "auto_close", T0 + 365 * DAY).lead is lead


def test_a_passed_close_date_is_flagged_once_and_a_new_date_anew() -> None:
    lead = accepted()
    passes = datetime.combine(CLOSES, datetime.min.time(), UTC) + WINDOWS.close_date_grace
    assert run(lead, "close_date_passed", passes - timedelta(seconds=1)).lead is lead
    flagged = run(lead, "close_date_passed", passes)
    assert flagged.event is EventType.CLOSE_DATE_PASSED
    assert "close_date_passed" not in due(flagged.lead)
    assert run(flagged.lead, "close_date_passed", passes + DAY).event is None

    later = date(2027, 9, 30)
    moved = act(flagged.lead, "update", passes + DAY, changes={"estimated_close_date": str(later)})
    assert due(moved.lead)["close_date_passed"] == datetime(2027, 10, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("log_activity", {"kind": "call", "summary": "Called the buyer"}),
        ("update", {"changes": {"value": {"amount": "99000", "currency": "EUR"}}}),
        ("update", {"changes": {"estimated_close_date": "2027-07-15"}}),
        ("add_contacts", {"contacts": [{"name": "Kim", "email": "kim@p.example"}]}),
    ],
)
def test_a_deal_that_moves_starts_its_idle_clock_and_alerts_again(
    name: str, fields: dict[str, Any]
) -> None:
    nudged = run(accepted(), "deal_nudge", T0 + 15 * DAY).lead
    moved = act(nudged, name, T0 + 16 * DAY, **fields).lead
    assert (moved.idle_since, moved.idle_step) == (T0 + 16 * DAY, None)
    assert due(moved)["deal_nudge"] == T0 + 30 * DAY
    change = deadlines.changes(nudged, moved, WINDOWS)
    assert change is not None
    assert change.drop_commands >= {"deal_escalate"}
    assert {d.command for d in change.add} >= {"deal_nudge", "deal_escalate"}


def test_a_new_name_or_note_is_not_a_move() -> None:
    lead = accepted()
    renamed = act(lead, "update", T0 + DAY, changes={"name": "Fabrikam ERP, phase 1"}).lead
    assert (renamed.idle_since, deadlines.changes(lead, renamed, WINDOWS)) == (T0, None)


def test_logged_work_is_kept_with_its_author() -> None:
    lead = act(accepted(), "log_activity", T0 + DAY, kind="meeting", summary="Demo held").lead
    [activity] = lead.activities
    assert (activity.kind, activity.summary, activity.user_id) == (
        "meeting",
        "Demo held",
        messages.ADMIN["user_id"],
    )
    assert lead.snapshot().activities == [activity]


def test_a_snooze_pauses_the_clock_which_then_counts_on() -> None:
    lead = accepted()
    snoozed = act(lead, "snooze", T0 + 10 * DAY, until=(T0 + 12 * DAY).isoformat())
    assert snoozed.event is EventType.SNOOZED
    assert snoozed.lead.idle_since == T0 + 2 * DAY  # 10 days idle before, counted on after
    assert due(snoozed.lead)["deal_nudge"] == T0 + 16 * DAY
    assert run(snoozed.lead, "deal_nudge", T0 + 14 * DAY).lead is snoozed.lead
    assert run(snoozed.lead, "deal_nudge", T0 + 16 * DAY).lead.idle_step is IdleStep.NUDGE


def test_a_longer_snooze_while_snoozed_pauses_only_the_extra_time() -> None:
    lead = act(accepted(), "snooze", T0 + DAY, until=(T0 + 5 * DAY).isoformat()).lead
    longer = act(lead, "snooze", T0 + 2 * DAY, until=(T0 + 8 * DAY).isoformat()).lead
    assert (longer.idle_since, longer.snoozed_until) == (T0 + 7 * DAY, T0 + 8 * DAY)


@pytest.mark.parametrize("until", [T0 + DAY - timedelta(seconds=1), T0 + 15 * DAY + DAY])
def test_a_snooze_in_the_past_or_over_fourteen_days_ahead_is_refused(until: datetime) -> None:
    with pytest.raises(Refused) as refused:
        act(accepted(), "snooze", T0 + DAY, until=until.isoformat())
    assert refused.value.reason is Reason.INVALID_SNOOZE


def test_work_on_a_lead_not_accepted_is_refused() -> None:
    message = InboundLead.model_validate(messages.inbound(received_at=T0.isoformat()))
    received = rules.receive(None, message, T0, WINDOWS, PROFILE).lead
    with pytest.raises(Refused) as refused:
        act(received, "log_activity", T0, kind="note", summary="Still active")
    assert refused.value.reason is Reason.INVALID_TRANSITION


def test_a_won_deal_waits_on_nothing_and_its_alerts_do_nothing() -> None:
    lead = accepted()
    won = act(lead, "won", T0 + DAY).lead
    change = deadlines.changes(lead, won, WINDOWS)
    assert change is not None and change.settled
    assert run(won, "deal_nudge", T0 + 30 * DAY).lead is won


def test_the_share_of_open_deals_idle_past_the_nudge() -> None:
    def fact(outcome: Outcome | None = None, idle: bool = False) -> LeadFacts:
        return LeadFacts(LeadType.MARKETING_QUALIFIED, T0, T0 + DAY, outcome, idle=idle)

    found = figures([fact(idle=True), fact(), fact(), fact(idle=True), fact(Outcome.WON)])
    assert (found.open_deals, found.idle_deals_share) == (4, 0.5)
    assert figures([fact(Outcome.WON)]).idle_deals_share is None
