"""The lead aggregate and every rule of shared/spec/lifecycle.md.

Each rule is a pure function of (lead, input, now) that returns a `Decision`
or raises `Refused`. Nothing here reads a clock, a database or a broker.
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from contracts.actions import (
    PARTNER_ROLES,
    Accept,
    AddContacts,
    Deal,
    Decline,
    Favorite,
    LogActivity,
    Lost,
    PartnerAction,
    Snooze,
    UndoDecline,
    Unfavorite,
    Update,
    Won,
)
from contracts.commands import AgeContactRequest, Expire, Remind
from contracts.common import Contact, DeclineReason
from contracts.events import (
    Activity,
    CustomerView,
    IdleStep,
    LeadSnapshot,
    MatchedOn,
    Offer,
    Outcome,
    PossibleDuplicate,
    Stage,
    Tab,
    UnroutableReason,
)
from contracts.inbound import (
    Consent,
    Customer,
    InboundLead,
    LeadType,
    Referrer,
    ReopenReason,
    Routing,
)
from contracts.notifications import Recipient, RecipientKind
from contracts.profiles import PartnerProfile
from contracts.topics import EventType, NotificationTemplate, Reason
from services.lifecycle.domain import matching
from services.lifecycle.domain.clock import to_millis
from services.lifecycle.domain.duplicates import LookAlike, LookAlikes, possible_duplicate
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.profiles import alert_contacts


@dataclass(frozen=True)
class Windows:
    """How long a partner has to answer, how long a contact request stays hot, how
    long before its deadline a partner is reminded, and how far back an open lead of
    the same partner makes a new one a possible duplicate."""

    response: timedelta = timedelta(days=14)
    contact_request: timedelta = timedelta(hours=72)
    reminders: tuple[timedelta, ...] = (timedelta(hours=72), timedelta(hours=24))
    duplicates: timedelta = timedelta(days=90)
    undo: timedelta = timedelta(days=7)
    """How long after its decline a partner may undo it."""
    reopen: timedelta = timedelta(days=30)
    """How long after a lead ended its referrer may reopen it."""
    deal_nudge: timedelta = timedelta(days=14)
    """How long an accepted deal may stay unmoved before its partner is nudged..."""
    deal_escalate: timedelta = timedelta(days=21)
    """...and before the partner's admins are told."""
    close_date_grace: timedelta = timedelta(days=7)
    """How long after its expected close date an open deal is flagged."""
    deal_auto_close: timedelta | None = None
    """How long unmoved before the service closes a deal as lost (never, when None)."""


class HistoryActor(BaseModel):
    """Who did something, as the history records it. The system is never a user."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["partner_user", "system", "referrer"]
    id: str | None = None
    role: str | None = None

    @field_validator("kind", mode="before")
    @classmethod
    def _stored_before_partner_user(cls, kind: object) -> object:
        return "partner_user" if kind == "user" else kind  # as stored before 2026-12


SYSTEM = HistoryActor(kind="system")


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: HistoryActor
    action: str
    from_stage: Stage | None
    to_stage: Stage


class Lead(BaseModel):
    """A lead as stored. Immutable: every rule returns a new one."""

    model_config = ConfigDict(frozen=True)

    lead_id: str
    partner_id: str
    lead_type: LeadType
    referrer: Referrer
    customer: CustomerView
    need: str
    campaign_id: str | None = None
    contact_requested: bool
    hot: bool
    hot_until: datetime | None
    received_at: datetime
    respond_by: datetime
    stage: Stage = Stage.RECEIVED
    outcome: Outcome | None = None
    deal: Deal | None = None
    contacts: tuple[Contact, ...] = ()
    favorite: bool = False
    decline_reason: DeclineReason | None = None
    closing_notes: str | None = None
    answered_at: datetime | None = None
    """When the partner accepted or declined it: its time to respond."""
    version: int = 1
    revision: int = 0
    """Bumped, without a new version, when its state is re-published (`leads state
    republish`): a change decided on the lead as it was then must be decided again,
    and so finds the re-published state unsent and publishes it first."""
    history: tuple[HistoryEntry, ...] = ()
    fingerprint: str
    """Hash of the inbound message's content, to tell a redelivery from a clash
    after the customer's contact data has been erased."""
    duplicate_of: str | None = None
    """Declined as a duplicate of this lead of the same partner."""
    referral_id: str | None = None
    """A re-offered lead's first lead."""
    offer: Offer | None = None
    possible_duplicate_of: PossibleDuplicate | None = None
    consent: Consent | None = None
    routing: Routing | None = None
    passed_over: tuple[str, ...] = ()
    """Partners that had this referral before, in order: never offered it again, never shown."""
    match_keys: tuple[str, ...] = ()
    """Its customer's keys (`matching`: hashed, scoped to the partner), kept while it is open."""
    source_key: str | None = None
    """Hashed (referrer, source_lead_id), when its sender named its own id for it."""
    reopens: int = 0
    """How often its referrer reopened it."""
    idle_since: datetime | None = None
    """An accepted deal: when it last moved, pushed on by the time it was snoozed."""
    idle_step: IdleStep | None = None
    snoozed_until: datetime | None = None
    close_date_flagged: date | None = None
    """The expected close date already flagged as passed (a new date is flagged anew)."""
    activities: tuple[Activity, ...] = ()
    subject_keys: tuple[str, ...] = ()
    """Its customer's keyed hashes (`privacy.SubjectKeys`), kept when a decline or an
    expiry erases their contact data, so that their erasure still reaches the lead
    and its copies; emptied by that erasure."""

    @property
    def ended_at(self) -> datetime | None:
        """When it was last archived (declined, expired, won or lost)."""
        ends = (e.at for e in reversed(self.history) if e.to_stage is Stage.ARCHIVED)
        return next(ends, None)

    @property
    def reoffered(self) -> bool:
        """Whether it went to another partner: then it can never come back to this one."""
        return any(entry.action == "reoffer" for entry in self.history[1:])

    @property
    def tab(self) -> Tab:
        return Tab.MARKETPLACE if self.lead_type is LeadType.CUSTOMER_INQUIRY else Tab.QUALIFIED

    def lookalike(self) -> LookAlike:
        """What a new lead of the same partner is compared with."""
        keys = frozenset(self.match_keys)
        return LookAlike(self.lead_id, self.partner_id, self.stage, self.received_at, keys)

    def snapshot(self) -> LeadSnapshot:
        # Every part is validated already: assembled as is, not validated again.
        values = {name: getattr(self, name) for name in _SNAPSHOT_FIELDS}
        return LeadSnapshot.model_construct(
            **values,
            contacts=list(self.contacts),
            activities=list(self.activities),
            tab=self.tab,
        )


_SNAPSHOT_FIELDS = tuple(set(LeadSnapshot.model_fields) - {"contacts", "activities", "tab"})


LeadCommand = Expire | AgeContactRequest | Remind
"""The scheduler's commands on a lead waiting for an answer (an accepted deal's are
`stale_deals`')."""


@dataclass(frozen=True)
class Notify:
    template: NotificationTemplate
    recipient: Recipient
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What a rule decided: the lead as it now stands, the fact to publish (if
    anything changed) and who to tell. No event and no notification: a no-op."""

    lead: Lead
    event: EventType | None = None
    notifications: tuple[Notify, ...] = ()
    reason: UnroutableReason | ReopenReason | None = None
    """With `lead.unroutable` or `lead.reopened`: why."""
    from_outcome: Outcome | None = None
    """With `lead.reopened`: how the lead had ended."""
    actor: HistoryActor | None = None
    """Who made the change, when its history does not say (the last entry's actor)."""
    request_id: str | None = None
    """With `lead.customer_erased`: the erasure request."""
    then: tuple["Decision", ...] = ()
    """What follows from it, in order: the lead passed on, the next partner's new
    lead, a duplicate flag."""

    @property
    def changed(self) -> bool:
        return self.event is not None


def fingerprint(message: InboundLead) -> str:
    absent: dict[str, Any] = {
        name: True for name in InboundLead.OPTIONAL_SINCE_V1 if getattr(message, name) is None
    }
    if message.consent is not None and message.consent.given_at is None:
        absent["consent"] = {"given_at"}  # added later: a lead sent again is the same
    content = message.model_dump(mode="json", exclude={"message_id": True, **absent})
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- new leads -------------------------------------------------------------------


def receive(
    existing: Lead | None,
    message: InboundLead,
    now: datetime,
    windows: Windows,
    profile: PartnerProfile | None,
    lookalikes: LookAlikes | None = None,
    source_owner: str | None = None,
    subject_keys: frozenset[str] = frozenset(),
) -> Decision:
    """A new lead, or the same lead delivered again. Only a partner with a
    business profile can receive leads: its alert contacts are told.

    `lookalikes`: stored leads sharing a match key with it; `source_owner`: the
    lead already holding its sender's `source_lead_id`, if any; `subject_keys`: its
    customer's keyed hashes."""
    content_hash = fingerprint(message)
    if existing is not None:
        if existing.fingerprint == content_hash:
            return Decision(existing)
        raise Refused(
            Reason.DUPLICATE_LEAD,
            f"lead {message.lead_id} already exists with different content; "
            "a lead id can be used for one lead only",
        )
    if source_owner is not None:
        raise Refused(
            Reason.DUPLICATE_LEAD,
            f"referrer {message.referrer.id} sent source lead {message.source_lead_id} "
            f"before, as lead {source_owner}: it is that lead",
        )
    if profile is None:
        raise Refused(
            Reason.PARTNER_PROFILE_MISSING,
            f"partner {message.partner_id} has no business profile; send the lead again "
            "once its profile is on partners.profiles",
        )
    received_at = to_millis(message.received_at or now)
    routing = message.routing
    lead = Lead(
        lead_id=message.lead_id,
        partner_id=message.partner_id,
        lead_type=message.lead_type,
        referrer=message.referrer,
        customer=CustomerView.model_validate(message.customer.model_dump()),
        need=message.need,
        campaign_id=message.campaign_id,
        contact_requested=message.contact_requested,
        **timing(received_at, message.contact_requested, now, windows),
        fingerprint=content_hash,
        consent=message.consent,
        routing=routing,
        offer=Offer(number=1, of=routing.max_offers) if routing else None,
        source_key=matching.source_key(message.referrer.id, message.source_lead_id)
        if message.source_lead_id
        else None,
        history=(arrival(now, message.referrer, "receive"),),
        subject_keys=tuple(sorted(subject_keys)),
    )
    return opened(lead, profile, lookalikes, now, windows)


def customer_keys(partner_id: str, customer: Customer | CustomerView) -> dict[str, MatchedOn]:
    """The customer's match keys at this partner (hashed) and what each is of."""
    c = customer
    keys = matching.match_keys(partner_id, c.email, c.phone, c.company_name, c.country)
    return {key: kind for kind, key in keys}


def arrival(at: datetime, referrer: Referrer, action: str) -> HistoryEntry:
    """The first entry of a lead's history: its referrer's, received (or re-offered)."""
    actor = HistoryActor(kind="referrer", id=referrer.id)
    return HistoryEntry(at=at, actor=actor, action=action, from_stage=None, to_stage=Stage.RECEIVED)


def timing(
    received_at: datetime, contact_requested: bool, now: datetime, windows: Windows
) -> dict[str, Any]:
    """A new lead's clock: its window to answer and, if the customer asked to be
    contacted, how long it stays hot."""
    hot_until = received_at + windows.contact_request if contact_requested else None
    return {
        "received_at": received_at,
        "respond_by": received_at + windows.response,
        "hot_until": hot_until,
        "hot": hot_until is not None and now < hot_until,
    }


def opened(
    lead: Lead,
    profile: PartnerProfile,
    lookalikes: LookAlikes | None,
    now: datetime,
    windows: Windows,
) -> Decision:
    """A lead new to its partner (received, or re-offered): its customer's match
    keys, a flag when it repeats an open lead of the same partner, and the
    partner's alert contacts told."""
    keys = customer_keys(lead.partner_id, lead.customer)
    since = now - windows.duplicates
    flag = possible_duplicate(lead.lead_id, lead.partner_id, keys, lookalikes or {}, since)
    lead = lead.model_copy(update={"match_keys": tuple(keys), "possible_duplicate_of": flag})
    notify = to_partner(lead, profile, NotificationTemplate.NEW_LEAD, lead_summary(lead))
    flagged = (Decision(lead, EventType.DUPLICATE_FLAGGED, actor=SYSTEM),) if flag else ()
    return Decision(lead, EventType.RECEIVED, notify, then=flagged)


# --- partner actions ---------------------------------------------------------------

_ALLOWED_IN: dict[str, frozenset[Stage]] = {
    "accept": frozenset({Stage.RECEIVED}),
    "decline": frozenset({Stage.RECEIVED}),
    "update": frozenset({Stage.ACCEPTED}),
    "log_activity": frozenset({Stage.ACCEPTED}),
    "snooze": frozenset({Stage.ACCEPTED}),
    "add_contacts": frozenset({Stage.ACCEPTED}),
    "won": frozenset({Stage.ACCEPTED}),
    "lost": frozenset({Stage.ACCEPTED}),
    "undo_decline": frozenset({Stage.ARCHIVED}),
    "favorite": frozenset({Stage.RECEIVED, Stage.ACCEPTED}),
    "unfavorite": frozenset({Stage.RECEIVED, Stage.ACCEPTED}),
}


def act(
    lead: Lead | None,
    action: PartnerAction,
    now: datetime,
    others: Mapping[str, Lead | None] | None = None,
    windows: Windows | None = None,
) -> Decision:
    """A partner user's action: role, ownership, the version the sender saw, stage,
    then the action itself. `others`: other leads it names (a decline's `duplicate_of`)."""
    if action.actor.role not in PARTNER_ROLES:
        raise Refused(
            Reason.FORBIDDEN,
            f"role {action.actor.role!r} may not act on leads; "
            f"allowed roles: {', '.join(sorted(PARTNER_ROLES))}",
        )
    if lead is None or lead.partner_id != action.partner_id:
        # Another partner's lead is reported exactly like a missing one.
        raise no_such_lead(action.partner_id, action.lead_id)
    if action.expected_version is not None and action.expected_version != lead.version:
        raise Refused(
            Reason.STALE_VERSION,
            f"lead {lead.lead_id} is at version {lead.version}, not {action.expected_version}; "
            "read it again and decide on what it now is",
        )
    if lead.stage is Stage.ARCHIVED and not isinstance(action, UndoDecline):
        raise Refused(
            Reason.LEAD_ARCHIVED,
            f"lead {lead.lead_id} is archived ({lead.outcome}); archived leads are read-only",
        )
    if lead.stage not in _ALLOWED_IN[action.action]:
        raise Refused(
            Reason.INVALID_TRANSITION,
            f"{action.action!r} is not allowed while the lead is {lead.stage}",
        )
    if isinstance(action, Decline) and action.duplicate_of is not None:
        original = (others or {}).get(action.duplicate_of)
        if original is None or original.partner_id != action.partner_id:
            raise no_such_lead(action.partner_id, action.duplicate_of)
    actor = HistoryActor(kind="partner_user", id=action.actor.user_id, role=action.actor.role)
    step = Step(now, actor, action.action)
    if isinstance(action, UndoDecline):
        return _undo_decline(lead, step, windows or Windows())
    decision: Decision = _APPLY[type(action)](lead, action, step)
    return decision


def no_such_lead(partner_id: str, lead_id: str) -> Refused:
    """The partner has no lead with this id: none at all, or another partner's."""
    return Refused(Reason.UNKNOWN_LEAD, f"partner {partner_id} has no lead {lead_id}")


@dataclass(frozen=True)
class Step:
    """When, by whom and as what action a change is recorded."""

    at: datetime
    actor: HistoryActor
    action: str

    def record(self, lead: Lead, **changes: Any) -> Lead:
        """The lead with `changes` applied, its version bumped and the step in its history."""
        to_stage = changes.get("stage", lead.stage)
        if to_stage is Stage.ARCHIVED:
            changes.setdefault("match_keys", ())  # only open leads are compared
        entry = HistoryEntry(
            at=self.at,
            actor=self.actor,
            action=self.action,
            from_stage=lead.stage,
            to_stage=to_stage,
        )
        return lead.model_copy(
            update={**changes, "version": lead.version + 1, "history": (*lead.history, entry)}
        )


def _accept(lead: Lead, action: Accept, step: Step) -> Decision:
    changed = step.record(
        lead,
        stage=Stage.ACCEPTED,
        answered_at=step.at,
        idle_since=step.at,
        deal=action.deal,
        contacts=_merge_contacts(lead.contacts, action.contacts),
    )
    return Decision(changed, EventType.ACCEPTED)


def _decline(lead: Lead, action: Decline, step: Step) -> Decision:
    changed = step.record(
        _archived(lead, Outcome.DECLINED),
        decline_reason=action.reason,
        duplicate_of=action.duplicate_of,
        closing_notes=action.notes,
        answered_at=step.at,
    )
    if action.duplicate_of is not None:
        # The partner has the customer's request in another lead: nothing to choose.
        return Decision(changed, EventType.DECLINED)
    # Told from the lead as it was: the contact data is erased from it now.
    notify = Notify(
        NotificationTemplate.CHOOSE_ANOTHER_PARTNER,
        Recipient(kind=RecipientKind.CUSTOMER, email=lead.customer.email),
        {
            "company_name": lead.customer.company_name,
            "contact_name": lead.customer.contact_name,
            "lead_type": lead.lead_type,
        },
    )
    return Decision(changed, EventType.DECLINED, (notify,))


UNDONE_DECLINE_WINDOW = timedelta(hours=72)
"""The least time to answer a lead whose decline was undone."""


def _undo_decline(lead: Lead, step: Step, windows: Windows) -> Decision:
    """The partner takes its decline back: the lead is received again, with what was
    left of its window to answer (72 hours at least); its contact data stays erased."""
    if lead.outcome is not Outcome.DECLINED or lead.answered_at is None:
        raise Refused(Reason.INVALID_TRANSITION, "only a declined lead's decline can be undone")
    if lead.reoffered:
        raise went_to_another_partner(lead)
    if step.at > lead.answered_at + windows.undo:
        raise Refused(
            Reason.UNDO_WINDOW_PASSED,
            f"lead {lead.lead_id} was declined more than {_iso_duration(windows.undo)} ago",
        )
    left = max(lead.respond_by - lead.answered_at, UNDONE_DECLINE_WINDOW)
    return reopened(lead, step, step.at + left)


def undoable_until(lead: Lead, windows: Windows) -> datetime | None:
    """Until when its partner may still take its decline back (`undo_decline`), if at all."""
    if lead.outcome is not Outcome.DECLINED or lead.answered_at is None or lead.reoffered:
        return None
    return lead.answered_at + windows.undo


def went_to_another_partner(lead: Lead) -> Refused:
    return Refused(
        Reason.LEAD_REOFFERED,
        f"lead {lead.lead_id} went to another partner since; it cannot come back to this one",
    )


def reopened(
    lead: Lead,
    step: Step,
    respond_by: datetime,
    reason: ReopenReason | None = None,
    **changes: Any,
) -> Decision:
    """A lead that had ended, received again: all but its ending kept, a new window to
    answer. Its deadlines follow from it (`deadlines.changes`)."""
    hot_until = changes.get("hot_until", lead.hot_until)
    lead_again = step.record(
        lead,
        stage=Stage.RECEIVED,
        outcome=None,
        decline_reason=None,
        duplicate_of=None,
        closing_notes=None,
        answered_at=None,
        respond_by=respond_by,
        hot=hot_until is not None and step.at < hot_until,
        **changes,
    )
    return Decision(lead_again, EventType.REOPENED, reason=reason, from_outcome=lead.outcome)


def _update(lead: Lead, action: Update, step: Step) -> Decision:
    assert lead.deal is not None  # accepted leads always have a deal
    given = {k: v for k, v in action.changes if v is not None}
    deal = lead.deal.model_copy(update=given)
    if deal == lead.deal:
        return Decision(lead)
    # Its value or close date moved: the deal moved.
    moves = (deal.value, deal.estimated_close_date) != (
        lead.deal.value,
        lead.deal.estimated_close_date,
    )
    changed = step.record(lead, deal=deal, **(_moved(step) if moves else {}))
    return Decision(changed, EventType.UPDATED)


def _add_contacts(lead: Lead, action: AddContacts, step: Step) -> Decision:
    contacts = _merge_contacts(lead.contacts, action.contacts)
    if contacts == lead.contacts:
        return Decision(lead)
    changed = step.record(lead, contacts=contacts, **_moved(step))
    return Decision(changed, EventType.CONTACTS_ADDED)


SNOOZE_AT_MOST = timedelta(days=14)
ACTIVITIES_KEPT = 50


def _log_activity(lead: Lead, action: LogActivity, step: Step) -> Decision:
    assert step.actor.id is not None  # a partner user's
    logged = Activity(at=step.at, kind=action.kind, summary=action.summary, user_id=step.actor.id)
    activities = (*lead.activities, logged)[-ACTIVITIES_KEPT:]
    changed = step.record(lead, activities=activities, **_moved(step))
    return Decision(changed, EventType.ACTIVITY_LOGGED)


def _snooze(lead: Lead, action: Snooze, step: Step) -> Decision:
    """The deal's idle clock stops until `until`: it counts on from where it was."""
    if not step.at < action.until <= step.at + SNOOZE_AT_MOST:
        raise Refused(
            Reason.INVALID_SNOOZE,
            f"until must be in the future and at most {SNOOZE_AT_MOST.days} days ahead",
        )
    assert lead.idle_since is not None  # set on accept
    paused_from = max(step.at, lead.snoozed_until or step.at)
    pushed = lead.idle_since + max(action.until - paused_from, timedelta(0))
    changed = step.record(lead, idle_since=pushed, snoozed_until=max(action.until, paused_from))
    return Decision(changed, EventType.SNOOZED)


def _moved(step: Step) -> dict[str, Any]:
    """The deal moved: its idle clock starts again, its idle alerts with it."""
    return {"idle_since": step.at, "idle_step": None, "snoozed_until": None}


def _won(lead: Lead, action: Won, step: Step) -> Decision:
    changed = step.record(
        lead, stage=Stage.ARCHIVED, outcome=Outcome.WON, closing_notes=action.notes
    )
    return Decision(changed, EventType.WON)


def _lost(lead: Lead, action: Lost, step: Step) -> Decision:
    changed = step.record(
        lead,
        stage=Stage.ARCHIVED,
        outcome=Outcome.LOST,
        decline_reason=action.reason,
        closing_notes=action.notes,
    )
    return Decision(changed, EventType.LOST)


def _set_favorite(value: bool, event: EventType) -> Any:
    def apply(lead: Lead, action: Favorite | Unfavorite, step: Step) -> Decision:
        if lead.favorite == value:
            return Decision(lead)
        return Decision(step.record(lead, favorite=value), event)

    return apply


_APPLY: dict[type, Any] = {
    Accept: _accept,
    Decline: _decline,
    Update: _update,
    AddContacts: _add_contacts,
    LogActivity: _log_activity,
    Snooze: _snooze,
    Won: _won,
    Lost: _lost,
    Favorite: _set_favorite(True, EventType.FAVORITED),
    Unfavorite: _set_favorite(False, EventType.UNFAVORITED),
}


def _merge_contacts(
    current: tuple[Contact, ...], added: list[Contact] | tuple[Contact, ...]
) -> tuple[Contact, ...]:
    """Append contacts whose e-mail (case-insensitive) is not there yet."""
    seen = {c.email.lower() for c in current}
    merged = list(current)
    for contact in added:
        if contact.email.lower() not in seen:
            seen.add(contact.email.lower())
            merged.append(contact)
    return tuple(merged)


def _archived(lead: Lead, outcome: Outcome) -> Lead:
    """Archive the lead and erase the customer's contact data; company, country
    and size stay for reporting."""
    customer = lead.customer.model_copy(update={"contact_name": None, "email": None, "phone": None})
    return lead.model_copy(
        update={
            "stage": Stage.ARCHIVED,
            "outcome": outcome,
            "customer": customer,
        }
    )


# --- system commands ---------------------------------------------------------------


def command(
    lead: Lead | None, cmd: LeadCommand, now: datetime, profile: PartnerProfile | None
) -> Decision:
    """A scheduler command. A late or early timer is not an error: it does nothing.
    `profile` is the lead's partner's, whose alert contacts are told."""
    if lead is None:
        raise Refused(Reason.UNKNOWN_LEAD, f"no lead {cmd.lead_id}")
    step = Step(now, SYSTEM, cmd.command)
    if isinstance(cmd, Expire):
        return _expire(lead, step)
    if isinstance(cmd, AgeContactRequest):
        return _age_contact_request(lead, step, profile)
    return _remind(lead, cmd, now, profile)


def _expire(lead: Lead, step: Step) -> Decision:
    if lead.stage is not Stage.RECEIVED or step.at < lead.respond_by:
        return Decision(lead)
    notify = Notify(
        NotificationTemplate.LEAD_EXPIRED,
        Recipient(kind=RecipientKind.REFERRER, id=lead.referrer.id, email=lead.referrer.email),
        {**lead_summary(lead), "referrer_kind": lead.referrer.kind},
    )
    return Decision(step.record(_archived(lead, Outcome.EXPIRED)), EventType.EXPIRED, (notify,))


def _age_contact_request(lead: Lead, step: Step, profile: PartnerProfile | None) -> Decision:
    # An archived lead is read-only: its flame no longer matters to anyone.
    due = lead.hot_until is not None and step.at >= lead.hot_until
    if not lead.hot or not due or lead.stage is Stage.ARCHIVED:
        return Decision(lead)
    notify = to_partner(
        lead, profile, NotificationTemplate.CONTACT_REQUEST_AGING, lead_summary(lead)
    )
    return Decision(step.record(lead, hot=False), EventType.CONTACT_REQUEST_AGED, notify)


def _remind(lead: Lead, cmd: Remind, now: datetime, profile: PartnerProfile | None) -> Decision:
    if lead.stage is not Stage.RECEIVED or now >= lead.respond_by:
        return Decision(lead)
    remaining = lead.respond_by - now
    notify = to_partner(
        lead,
        profile,
        NotificationTemplate.EXPIRY_REMINDER,
        {**lead_summary(lead), "remaining": _iso_duration(remaining)},
    )
    return Decision(lead, None, notify)


def to_partner(
    lead: Lead, profile: PartnerProfile | None, template: NotificationTemplate, data: dict[str, Any]
) -> tuple[Notify, ...]:
    """One notification per alert contact of the location serving the customer;
    the partner as a whole when its profile names nobody."""
    recipients = [
        Recipient(kind=RecipientKind.PARTNER, id=lead.partner_id, email=c.email, name=c.name)
        for c in alert_contacts(profile, lead.customer.country)
    ] or [Recipient(kind=RecipientKind.PARTNER, id=lead.partner_id)]
    return tuple(Notify(template, recipient, data) for recipient in recipients)


def lead_summary(lead: Lead) -> dict[str, Any]:
    """What a notification may say about a lead: no customer contact data."""
    return {
        "lead_type": lead.lead_type.value,
        "company_name": lead.customer.company_name,
        "country": lead.customer.country,
        "hot": lead.hot,
        "respond_by": lead.respond_by.isoformat(),
    }


def _iso_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return f"P{days}D" + (f"T{time}" if time else "") if days else f"PT{time or '0S'}"
