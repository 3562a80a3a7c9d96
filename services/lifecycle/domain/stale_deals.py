"""Accepted deals do not go stale unseen: an idle deal nudges its partner, then its
admins; a passed close date is flagged; a deal left for long enough may be closed.

"Moved" (an update of value or close date, added contacts, logged work) restarts
a deal's idle clock, and a snooze pauses it (`lead._moved`, `lead._snooze`). The
scheduler emits these commands from the deal's deadlines; a command that comes
before its time, or after the deal moved, does nothing.
"""

from datetime import UTC, datetime, time, timedelta

from contracts.commands import AutoClose, ClosePassed, DealCommand, DealNudge
from contracts.common import DeclineReason
from contracts.events import IdleStep, Outcome, Stage
from contracts.notifications import Recipient, RecipientKind
from contracts.profiles import PartnerProfile
from contracts.topics import EventType, NotificationTemplate, Reason
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.lead import (
    SYSTEM,
    Decision,
    Lead,
    Notify,
    Step,
    Windows,
    lead_summary,
    to_partner,
)

ADMIN_ROLE = "mpn_partner_admin"
"""Who an escalation goes to: the partner's admins."""


def command(
    lead: Lead | None,
    cmd: DealCommand,
    now: datetime,
    windows: Windows,
    profile: PartnerProfile | None,
) -> Decision:
    if lead is None:
        raise Refused(Reason.UNKNOWN_LEAD, f"no lead {cmd.lead_id}")
    if lead.stage is not Stage.ACCEPTED or lead.idle_since is None:
        return Decision(lead)  # won, lost or reopened meanwhile: nothing to watch
    step = Step(now, SYSTEM, cmd.command)
    if isinstance(cmd, DealNudge):
        return _idle(lead, step, IdleStep.NUDGE, windows.deal_nudge, profile)
    if isinstance(cmd, ClosePassed):
        return _close_date_passed(lead, step, windows)
    if isinstance(cmd, AutoClose):
        return _auto_close(lead, step, windows)
    return _idle(lead, step, IdleStep.ESCALATE, windows.deal_escalate, profile)


def days_idle(lead: Lead, at: datetime) -> int:
    """Whole days the deal has not moved, as of `at`."""
    assert lead.idle_since is not None  # an accepted deal's
    return (at - lead.idle_since).days


def close_date_passes(lead: Lead, windows: Windows) -> datetime | None:
    """When the deal's expected close date counts as passed, unless already flagged."""
    if lead.deal is None or lead.close_date_flagged == lead.deal.estimated_close_date:
        return None
    closes = datetime.combine(lead.deal.estimated_close_date, time.min, UTC)
    return closes + windows.close_date_grace


def _idle(
    lead: Lead,
    step: Step,
    reached: IdleStep,
    after: timedelta,
    profile: PartnerProfile | None,
) -> Decision:
    assert lead.idle_since is not None
    already = lead.idle_step is IdleStep.ESCALATE or lead.idle_step is reached
    if already or step.at < lead.idle_since + after:
        return Decision(lead)
    changed = step.record(lead, idle_step=reached)
    data = {**lead_summary(lead), "days_idle": days_idle(lead, step.at), "step": reached.value}
    if reached is IdleStep.NUDGE:
        told = to_partner(lead, profile, NotificationTemplate.DEAL_IDLE, data)
    else:
        admins = Recipient(kind=RecipientKind.PARTNER, id=lead.partner_id, role=ADMIN_ROLE)
        told = (Notify(NotificationTemplate.DEAL_IDLE, admins, data),)
    return Decision(changed, EventType.DEAL_IDLE, told)


def _close_date_passed(lead: Lead, step: Step, windows: Windows) -> Decision:
    passes = close_date_passes(lead, windows)
    if passes is None or step.at < passes:
        return Decision(lead)
    assert lead.deal is not None
    changed = step.record(lead, close_date_flagged=lead.deal.estimated_close_date)
    return Decision(changed, EventType.CLOSE_DATE_PASSED)


def _auto_close(lead: Lead, step: Step, windows: Windows) -> Decision:
    assert lead.idle_since is not None
    after = windows.deal_auto_close
    if after is None or step.at < lead.idle_since + after:
        return Decision(lead)
    changed = step.record(
        lead,
        stage=Stage.ARCHIVED,
        outcome=Outcome.LOST,
        decline_reason=DeclineReason.NO_UPDATE,
    )
    return Decision(changed, EventType.LOST)
