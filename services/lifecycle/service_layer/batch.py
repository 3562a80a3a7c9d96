"""Decide a batch of messages in memory, in order, as if handled one by one.

Several messages for one lead fold onto that lead in sequence; what they add up
to is one `Change`, committed in one transaction. No I/O here: the batch is
decided on a `Snapshot` read beforehand, and every assumption taken from it is
checked again inside the transaction (versions, markers, held actions).
"""

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from contracts.actions import PARTNER_ACTION, PartnerAction
from contracts.commands import COMMANDS, Command, DealCommand
from contracts.inbound import InboundLead, ReopenLead
from contracts.profiles import PartnerProfile
from contracts.topics import Reason
from services.lifecycle.domain import (
    badges,
    deadlines,
    matching,
    privacy,
    profiles,
    reoffer,
    reopen,
    stale_deals,
)
from services.lifecycle.domain import lead as rules
from services.lifecycle.domain.duplicates import OPEN, PER_KEY, LookAlike
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.lead import Decision, Lead, Windows
from services.lifecycle.service_layer.decoding import Decoded, Malformed, lead_id_of
from services.lifecycle.service_layer.messages import (
    DUPLICATE,
    Delivery,
    Handled,
    Outcome,
    dedupe_key,
)
from services.lifecycle.service_layer.outgoing import Cause, for_decision, rejection
from services.lifecycle.service_layer.ports import (
    Change,
    HeldAction,
    LeadWrite,
    Marker,
    ProfileUpdate,
    Publication,
    Snapshot,
)

Headers = tuple[tuple[str, bytes], ...]

REDACTED_AWAY = Refused(
    Reason.MALFORMED,
    "the action waited for its lead and a customer's erasure took data it needed "
    "out of it; send it again without it",
)
"""A held action that a customer's erasure left invalid: refused when its lead comes."""

# Refusals that a later message can cure: the same message sent again must be
# handled then, so they are deduped by position, not by message_id.
_CURABLE = frozenset({Reason.PARTNER_PROFILE_MISSING})


@dataclass
class BatchPlan:
    """The working state of one batch: the leads as they stand after each message."""

    snapshot: Snapshot
    now: datetime
    windows: Windows
    early_action_grace: timedelta
    change: Change = field(default_factory=Change)
    outcomes: list[Handled] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._leads: dict[str, Lead | None] = dict(self.snapshot.leads)
        self._profiles = dict(self.snapshot.profiles)
        self._held = {lead_id: list(held) for lead_id, held in self.snapshot.held.items()}
        self._done = set(self.snapshot.processed)
        self._stored_held = {h.key for held in self.snapshot.held.values() for h in held}
        self._trace: Headers = ()
        self._sources = dict(self.snapshot.sources)
        self._lookalikes: dict[str, dict[str, LookAlike]] = {}
        for lookalike in self.snapshot.lookalikes:
            self._index(lookalike)

    def take(
        self, delivery: Delivery, message: Decoded | Malformed, trace: Headers = ()
    ) -> Handled:
        """Decide one message, in its turn; what it publishes carries its `trace`."""
        self.change.slot = self.change.slot or delivery.slot
        self._trace = trace
        handled = self._decide(delivery, message)
        self.outcomes.append(handled)
        return handled

    def _decide(self, delivery: Delivery, message: Decoded | Malformed) -> Handled:
        if isinstance(message, Malformed):
            # Deduped by position, not by message_id: a corrected message sent
            # again under the same id must still be processed.
            return self._refuse(delivery.position_key, delivery, message, message.message_id)
        key = dedupe_key(delivery.topic, message.message_id)
        if key in self._done:
            return DUPLICATE
        match message:
            case PartnerProfile():
                return self._profile(key, message)
            case InboundLead():
                return self._receive(key, delivery, message)
            case ReopenLead():
                return self._reopen(key, delivery, message)
            case _ if isinstance(message, COMMANDS):
                return self._command(key, delivery, message)
            case _:
                return self._act(key, delivery, message)

    # --- each kind of message ----------------------------------------------------------

    def _profile(self, key: str, profile: PartnerProfile) -> Handled:
        stored = self._profiles.get(profile.partner_id)
        newer = profiles.supersedes(profile, stored)
        if newer:
            first = self.change.profiles.get(profile.partner_id)
            original = first.replaces if first else (stored.updated_at if stored else None)
            self.change.profiles[profile.partner_id] = ProfileUpdate(profile, original)
            self._profiles[profile.partner_id] = profile
        outcome = Outcome.APPLIED if newer else Outcome.NO_CHANGE
        self._mark(Marker(key, outcome, profile.message_id, partner_id=profile.partner_id))
        return Handled(outcome)

    def _receive(self, key: str, delivery: Delivery, message: InboundLead) -> Handled:
        before = self._leads.get(message.lead_id)
        profile = self._profiles.get(message.partner_id)
        owner = self._sources.get(_source_key(message) or "")
        try:
            if before is None and (erased := self.snapshot.erased.get(message.lead_id)):
                privacy.refuse_unless_consented(erased, message.consent, self.now)
            decision = rules.receive(
                before,
                message,
                self.now,
                self.windows,
                profile,
                self._lookalikes,
                owner if owner != message.lead_id else None,
                self.snapshot.subjects.get(message.lead_id, frozenset()),
            )
        except Refused as refusal:
            refused_key = delivery.position_key if refusal.reason in _CURABLE else key
            return self._refuse(refused_key, delivery, refusal, message.message_id, message)
        handled = self._record(key, message.message_id, before, decision)
        if before is None:
            self._settle_held(decision.lead)
        return handled

    def _reopen(self, key: str, delivery: Delivery, message: ReopenLead) -> Handled:
        lead = self._leads.get(message.lead_id)
        profile = self._profiles.get(lead.partner_id) if lead else None
        try:
            if message.customer and (erased := self.snapshot.erased.get(message.lead_id)):
                privacy.refuse_unless_consented(erased, None, self.now)  # a reopen has none
            keys = self.snapshot.subjects.get(message.lead_id, frozenset())
            decision = reopen.reopen(lead, message, self.now, self.windows, profile, keys)
        except Refused as refusal:
            return self._refuse(key, delivery, refusal, message.message_id, message)
        return self._record(key, message.message_id, lead, decision)

    def _act(self, key: str, delivery: Delivery, action: PartnerAction) -> Handled:
        lead = self._leads.get(action.lead_id)
        try:
            decision = rules.act(lead, action, self.now, self._leads, self.windows)
        except Refused as refusal:
            if lead is None or lead.partner_id != action.partner_id:
                # Perhaps its lead is still on its way: wait for it, the same way
                # whether or not another partner has a lead with this id.
                return self._hold(key, delivery, action, lead)
            return self._refuse(key, delivery, refusal, action.message_id, action)
        return self._record(key, action.message_id, lead, decision, partner_id=action.partner_id)

    def _command(self, key: str, delivery: Delivery, command: Command) -> Handled:
        lead = self._leads.get(command.lead_id)
        profile = self._profiles.get(lead.partner_id) if lead else None
        try:
            if isinstance(command, DealCommand):
                decision = stale_deals.command(lead, command, self.now, self.windows, profile)
            else:
                decision = rules.command(lead, command, self.now, profile)
        except Refused as refusal:
            return self._refuse(key, delivery, refusal, command.message_id, command)
        assert lead is not None  # a command for no lead is refused
        nothing = not (decision.changed or decision.notifications)
        if nothing and deadlines.changes(lead, lead, self.windows, command) is None:
            # No marker: the scheduler sends an early or late timer again under
            # the same id, and by then it may be due.
            return Handled(Outcome.NO_CHANGE)
        return self._record(key, command.message_id, lead, decision, answered=command)

    # --- held actions --------------------------------------------------------------------

    def _hold(
        self, key: str, delivery: Delivery, action: PartnerAction, lead: Lead | None
    ) -> Handled:
        held = HeldAction(
            key=key,
            lead_id=action.lead_id,
            partner_id=action.partner_id,
            action=action.model_dump(mode="json"),
            held_at=self.now,
            expires_at=self.now + self.early_action_grace,
            arrival=(delivery.partition, delivery.offset),
            source_topic=delivery.topic_name,
        )
        self.change.hold[key] = held
        self._held.setdefault(action.lead_id, []).append(held)
        if lead is None and action.lead_id not in self.change.claims:
            self.change.claims.append(action.lead_id)
        marker = Marker(key, Outcome.HELD, action.message_id, action.lead_id, action.partner_id)
        self._mark(marker)
        return Handled(Outcome.HELD)

    def _settle_held(self, lead: Lead) -> None:
        """The lead has arrived: its partner's held actions are applied in the order
        they came (or refused, if they waited past their grace). Other partners'
        actions on this id stay held until their grace ends, as for no lead at all."""
        held = self._held.pop(lead.lead_id, [])
        self.change.arrivals[lead.lead_id] = frozenset(
            h.key for h in held if h.key not in self.change.hold
        )
        for action in held:
            if action.partner_id != lead.partner_id:
                self._held.setdefault(lead.lead_id, []).append(action)
                continue
            self._release(action)
            if action.expires_at <= self.now:
                self._settle(action, rules.no_such_lead(action.partner_id, action.lead_id), None)
            else:
                self._apply_held(action)

    def _apply_held(self, held: HeldAction) -> None:
        try:
            action: PartnerAction = PARTNER_ACTION.validate_python(held.action)
        except ValidationError:
            self._settle(held, REDACTED_AWAY, None)
            return
        lead = self._leads.get(held.lead_id)
        try:
            decision = rules.act(lead, action, self.now, self._leads, self.windows)
        except Refused as refusal:
            self._settle(held, refusal, action)
            return
        self._record(held.key, action.message_id, lead, decision, partner_id=held.partner_id)

    def _release(self, held: HeldAction) -> None:
        if self.change.hold.pop(held.key, None) is None:
            self.change.release.append(held.key)

    def _settle(self, held: HeldAction, refusal: Refused, action: PartnerAction | None) -> None:
        message_id = action.message_id if action else held.action.get("message_id")
        self._reject(
            held.key, held.source_topic, held.lead_id, refusal, message_id, held.partner_id
        )

    # --- what a decision commits -------------------------------------------------------

    def _record(
        self,
        key: str,
        message_id: str,
        before: Lead | None,
        decision: Decision,
        partner_id: str | None = None,
        answered: Command | None = None,
    ) -> Handled:
        if before is not None:
            candidates = reoffer.Candidates(self._profiles, self._leads, self._lookalikes)
            decision = reoffer.pass_on(before, decision, self.now, self.windows, candidates)
        lead = decision.lead
        self._apply(decision, before, Cause(message_id, key), itertools.count(), answered)
        outcome = (
            Outcome.APPLIED if decision.changed or decision.notifications else Outcome.NO_CHANGE
        )
        self._mark(
            Marker(
                key,
                outcome,
                message_id,
                lead.lead_id,
                partner_id or lead.partner_id,
                event=decision.event.value if decision.event else None,
                version=lead.version,
            )
        )
        return Handled(outcome)

    def _apply(
        self,
        decision: Decision,
        before: Lead | None,
        cause: Cause,
        positions: Iterator[int],
        answered: Command | None = None,
    ) -> None:
        """One decision on its lead as it stood (`before`), then each that follows
        from it on its own lead."""
        lead = decision.lead
        if decision.changed:
            self._leads[lead.lead_id] = lead
            self._write(before, lead)
        for message in for_decision(decision, cause, self.now):
            order = (lead.version, next(positions))
            self.change.outgoing.append(Publication(message, order, self._trace))
        changes = self._deadline_changes(before, decision, answered)
        if changes is not None:
            self.change.deadlines.append(changes)
        for then in decision.then:
            self._apply(then, self._leads.get(then.lead.lead_id), cause, positions)

    def _write(self, before: Lead | None, lead: Lead) -> None:
        first = self.change.leads.get(lead.lead_id)
        loaded = self.snapshot.leads.get(lead.lead_id)
        expected = first.expected_version if first else (loaded.version if loaded else None)
        self.change.leads[lead.lead_id] = LeadWrite(lead, expected)
        tally = self.change.tallies.setdefault(lead.partner_id, Counter())
        tally.update(badges.moves(before, lead))
        if before is None and lead.source_key:
            self._sources[lead.source_key] = lead.lead_id
        for key in before.match_keys if before else ():
            self._lookalikes.get(key, {}).pop(lead.lead_id, None)
        if lead.stage in OPEN:
            self._index(lead.lookalike())

    def _index(self, lookalike: LookAlike) -> None:
        for key in lookalike.match_keys:
            same = self._lookalikes.setdefault(key, {})
            same[lookalike.lead_id] = lookalike
            if len(same) > PER_KEY:
                oldest = min(same.values(), key=lambda la: (la.received_at, la.lead_id))
                del same[oldest.lead_id]

    def _deadline_changes(
        self, before: Lead | None, decision: Decision, answered: Command | None
    ) -> deadlines.DeadlineChanges | None:
        if not decision.changed and answered is None:
            return None
        return deadlines.changes(before, decision.lead, self.windows, answered)

    def _refuse(
        self,
        key: str,
        delivery: Delivery,
        refusal: Refused,
        message_id: str | None,
        message: Decoded | None = None,
    ) -> Handled:
        if key in self._done:
            return DUPLICATE
        lead_id = lead_id_of(message) or lead_id_of(refusal)
        partner_id = getattr(message, "partner_id", None)  # a command names none
        return self._reject(key, delivery.topic_name, lead_id, refusal, message_id, partner_id)

    def _reject(
        self,
        key: str,
        source_topic: str,
        lead_id: str | None,
        refusal: Refused,
        message_id: str | None,
        partner_id: str | None,
    ) -> Handled:
        lead = self._leads.get(lead_id) if lead_id else None
        answer, marker = refused(
            Answered(key, source_topic, message_id, lead_id, partner_id),
            refusal,
            self.now,
            order=(lead.version if lead else 0, 0),
            trace=self._trace,
        )
        self.change.outgoing.append(answer)
        self._mark(marker)
        return Handled(Outcome.REJECTED, refusal.reason)

    def _mark(self, marker: Marker) -> None:
        # A held action's marker is stored already: settling it updates its outcome.
        stored = marker.key in self._stored_held
        (self.change.settled if stored else self.change.markers)[marker.key] = marker
        self._done.add(marker.key)


@dataclass(frozen=True)
class Answered:
    """The message a refusal answers: its dedupe key and the ids it is told by."""

    key: str
    source_topic: str
    """The topic's name on the broker, quoted back to the sender."""
    message_id: str | None
    lead_id: str | None
    partner_id: str | None = None


def refused(
    message: Answered,
    refusal: Refused,
    now: datetime,
    order: tuple[int, int] = (0, 0),
    trace: Headers = (),
) -> tuple[Publication, Marker]:
    """A refusal's answer on leads.rejected, and the marker that remembers it."""
    answer = rejection(
        message.source_topic,
        message.key,
        message.message_id,
        message.lead_id,
        refusal.reason,
        refusal.detail,
        now,
    )
    marker = Marker(
        message.key,
        Outcome.REJECTED,
        message.message_id,
        message.lead_id,
        message.partner_id,
        reason=refusal.reason,
        detail=refusal.detail,
    )
    return Publication(answer, order, trace), marker


def _source_key(message: InboundLead) -> str | None:
    if message.source_lead_id is None:
        return None
    return matching.source_key(message.referrer.id, message.source_lead_id)
