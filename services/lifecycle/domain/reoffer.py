"""Every lead finds a partner: one declined or let expire goes to the next candidate
its sender ranked, when the customer agreed to share it.

Applied to a decision that has just ended a lead (declined or expired): the
decision comes back with what follows, either the lead passed on (`lead.reoffered`
on it, a new lead for the next partner) or the reason nobody else gets it
(`lead.unroutable`). The partner that had it never learns who is next; the next
one never learns who had it.
"""

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from contracts.common import DeclineReason
from contracts.events import Offer, Outcome, Stage, UnroutableReason
from contracts.notifications import Recipient, RecipientKind
from contracts.profiles import PartnerProfile
from contracts.topics import EventType, NotificationTemplate
from services.lifecycle.domain.duplicates import LookAlikes
from services.lifecycle.domain.lead import (
    SYSTEM,
    Decision,
    Lead,
    Notify,
    Step,
    Windows,
    arrival,
    lead_summary,
    opened,
    timing,
)
from services.lifecycle.domain.profiles import serves

NOT_PASSED_ON = frozenset(
    {DeclineReason.SPAM_OR_ABUSE, DeclineReason.NOT_A_CUSTOMER, DeclineReason.DUPLICATE}
)
"""Declined as no real lead: nobody else should have it either."""

_ENDINGS = frozenset({Outcome.DECLINED, Outcome.EXPIRED})


@dataclass(frozen=True)
class Candidates:
    """What passing a lead on needs, read beforehand."""

    profiles: Mapping[str, PartnerProfile]
    leads: Mapping[str, Lead | None]
    """Leads by id: the next offer's id must be free."""
    lookalikes: LookAlikes | None = None
    """Open leads that may be the same customer's, the next partner's among them."""


def offer_id(referral_id: str, number: int) -> str:
    """The id of a referral's n-th offer: derived, so a decision made again makes the
    same lead; a long first id is hashed to stay within the contract's 64."""
    suffix = f":offer-{number}"
    if len(referral_id) + len(suffix) <= 64:
        return referral_id + suffix
    return "offer-" + hashlib.blake2b(referral_id.encode(), digest_size=16).hexdigest() + suffix


def next_offer_id(lead: Lead) -> str:
    """The id the lead's referral would next be offered under."""
    number = lead.offer.number + 1 if lead.offer else 2
    return offer_id(_referral(lead), number)


def pass_on(
    before: Lead, decision: Decision, at: datetime, windows: Windows, known: Candidates
) -> Decision:
    """`decision` with what follows when it ends a lead sent with routing; as it is
    otherwise (no routing asked for, an end that is not declined or expired, or a
    decline that says it was no real lead)."""
    closed = decision.lead
    ended_now = before.stage is not Stage.ARCHIVED and closed.outcome in _ENDINGS
    if not ended_now or closed.routing is None or closed.decline_reason in NOT_PASSED_ON:
        return decision
    reason, chosen = _next_partner(closed, known)
    if chosen is None:
        assert reason is not None
        return dataclasses.replace(decision, then=(*decision.then, _unroutable(closed, reason, at)))
    partner, profile = chosen
    offered = _offered(before, closed, partner, profile, at, windows, known)
    customer_told = _passed_to_another_partner(before, profile)
    kept = tuple(
        n
        for n in decision.notifications
        if n.template is not NotificationTemplate.CHOOSE_ANOTHER_PARTNER
    )
    return dataclasses.replace(
        decision,
        notifications=(*kept, customer_told),
        then=(*decision.then, _reoffered(closed, offered.lead, at), offered),
    )


def _next_partner(
    closed: Lead, known: Candidates
) -> tuple[UnroutableReason | None, tuple[str, PartnerProfile] | None]:
    """The first candidate that never had this referral, has a profile and serves the
    customer's country; or why there is none."""
    assert closed.routing is not None and closed.offer is not None
    if closed.consent is None or not closed.consent.share_with_other_partners:
        return UnroutableReason.CONSENT_MISSING, None
    if closed.offer.number >= closed.offer.of:
        return UnroutableReason.MAX_OFFERS, None
    if known.leads.get(next_offer_id(closed)) is not None:
        # The id is taken by a lead sent under it: no offer can be made under it.
        return UnroutableReason.NO_CANDIDATE, None
    had = {*closed.passed_over, closed.partner_id}
    for candidate in closed.routing.candidates:
        profile = known.profiles.get(candidate)
        if candidate not in had and profile and serves(profile, closed.customer.country):
            return None, (candidate, profile)
    return UnroutableReason.NO_CANDIDATE, None


def _referral(lead: Lead) -> str:
    return lead.referral_id or lead.lead_id


def _offered(
    before: Lead,
    closed: Lead,
    partner: str,
    profile: PartnerProfile,
    at: datetime,
    windows: Windows,
    known: Candidates,
) -> Decision:
    """The next partner's lead: the customer as sent (taken from before its contact
    data was erased), its own window and hot flag, no trace of who had it."""
    assert closed.offer is not None
    number = closed.offer.number + 1
    lead = Lead(
        lead_id=next_offer_id(closed),
        partner_id=partner,
        lead_type=before.lead_type,
        referrer=before.referrer,
        customer=before.customer,
        need=before.need,
        campaign_id=before.campaign_id,
        contact_requested=before.contact_requested,
        **timing(at, before.contact_requested, at, windows),
        fingerprint=hashlib.sha256(f"{before.fingerprint}:{number}".encode()).hexdigest(),
        referral_id=_referral(closed),
        offer=Offer(number=number, of=closed.offer.of),
        consent=before.consent,
        routing=before.routing,
        passed_over=(*closed.passed_over, closed.partner_id),
        history=(arrival(at, before.referrer, "reoffer"),),
    )
    return opened(lead, profile, known.lookalikes, at, windows)


def _reoffered(closed: Lead, offered: Lead, at: datetime) -> Decision:
    """On the ended lead: it went on. The referrer learns to whom; the event does not say."""
    assert offered.offer is not None
    lead = Step(at, SYSTEM, "reoffer").record(closed)
    data = {
        **lead_summary(closed),
        "offer": offered.offer.number,
        "of": offered.offer.of,
        "reoffered_lead_id": offered.lead_id,
        "reoffered_to_partner_id": offered.partner_id,
    }
    return Decision(lead, EventType.REOFFERED, (_to_referrer(closed, data),))


def _unroutable(closed: Lead, reason: UnroutableReason, at: datetime) -> Decision:
    lead = Step(at, SYSTEM, "unroutable").record(closed)
    data = {**lead_summary(closed), "reason": reason.value}
    notify = _to_referrer(closed, data, NotificationTemplate.LEAD_UNROUTABLE)
    return Decision(lead, EventType.UNROUTABLE, (notify,), reason=reason)


def _to_referrer(
    lead: Lead,
    data: dict[str, object],
    template: NotificationTemplate = NotificationTemplate.LEAD_REOFFERED,
) -> Notify:
    recipient = Recipient(
        kind=RecipientKind.REFERRER, id=lead.referrer.id, email=lead.referrer.email
    )
    return Notify(template, recipient, {**data, "referrer_kind": lead.referrer.kind})


def _passed_to_another_partner(before: Lead, profile: PartnerProfile) -> Notify:
    """To the customer, from the lead as it was before its contact data was erased."""
    return Notify(
        NotificationTemplate.PASSED_TO_ANOTHER_PARTNER,
        Recipient(kind=RecipientKind.CUSTOMER, email=before.customer.email),
        {
            "company_name": before.customer.company_name,
            "contact_name": before.customer.contact_name,
            "lead_type": before.lead_type,
            "partner_name": profile.name,
        },
    )
