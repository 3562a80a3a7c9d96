"""A second chance from upstream: the referrer reopens a lead declined or expired by
mistake (or whose customer came back), within a window and at most twice.

The partner that had it gets it again with a fresh window to answer, and the
customer's contact data when the referrer sends it again.
"""

import dataclasses
from datetime import datetime

from contracts.events import CustomerView, Outcome
from contracts.inbound import ReopenLead
from contracts.profiles import PartnerProfile
from contracts.topics import NotificationTemplate, Reason
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.lead import (
    Decision,
    HistoryActor,
    Lead,
    Step,
    Windows,
    customer_keys,
    lead_summary,
    reopened,
    to_partner,
    went_to_another_partner,
)

MAX_REOPENS = 2

_REOPENABLE = frozenset({Outcome.DECLINED, Outcome.EXPIRED})


def reopen(
    lead: Lead | None,
    message: ReopenLead,
    now: datetime,
    windows: Windows,
    profile: PartnerProfile | None,
    subject_keys: frozenset[str] = frozenset(),
) -> Decision:
    """The lead received again, its partner's alert contacts told; or why not.
    `subject_keys`: the keyed hashes of the customer it brings back, if any."""
    if lead is None or lead.referrer.id != message.referrer_id:
        # Another referrer's lead is answered exactly like a missing one.
        raise Refused(
            Reason.UNKNOWN_LEAD, f"referrer {message.referrer_id} sent no lead {message.lead_id}"
        )
    _check_reopenable(lead, now, windows)
    actor = HistoryActor(kind="referrer", id=message.referrer_id)
    step = Step(now, actor, "reopen")
    changes: dict[str, object] = {"reopens": lead.reopens + 1}
    if message.customer is not None:
        customer = CustomerView.model_validate(message.customer.model_dump())
        changes |= {
            "customer": customer,
            "match_keys": tuple(customer_keys(lead.partner_id, customer)),
            "subject_keys": tuple(sorted(subject_keys.union(lead.subject_keys))),
        }
    if message.contact_requested:
        changes |= {"contact_requested": True, "hot_until": now + windows.contact_request}
    decision = reopened(lead, step, now + windows.response, message.reason, **changes)
    data = {**lead_summary(decision.lead), "reason": message.reason.value}
    notify = to_partner(decision.lead, profile, NotificationTemplate.LEAD_REOPENED, data)
    return dataclasses.replace(decision, notifications=notify)


def _check_reopenable(lead: Lead, now: datetime, windows: Windows) -> None:
    if lead.outcome not in _REOPENABLE:
        raise Refused(
            Reason.INVALID_TRANSITION,
            f"only a declined or expired lead can be reopened; lead {lead.lead_id} is "
            f"{lead.outcome or lead.stage}",
        )
    if lead.reoffered:
        raise went_to_another_partner(lead)
    if lead.reopens >= MAX_REOPENS:
        raise Refused(
            Reason.REOPEN_LIMIT_REACHED,
            f"lead {lead.lead_id} was reopened {lead.reopens} times; {MAX_REOPENS} at most",
        )
    ended = lead.ended_at
    if ended is not None and now > ended + windows.reopen:
        raise Refused(
            Reason.REOPEN_WINDOW_PASSED,
            f"lead {lead.lead_id} ended more than {windows.reopen.days} days ago",
        )
