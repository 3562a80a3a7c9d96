"""Decide a batch of inbound messages and commit it: decode, read, decide in order,
commit once.

Exactly once in effect: every message leaves a marker in the same transaction
as its effects, and a batch decided on a view that changed meanwhile commits
nothing and is decided again from fresh reads.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import timedelta

from contracts.actions import Decline
from contracts.commands import COMMANDS, Expire
from contracts.events import Stage
from contracts.inbound import InboundLead, ReopenLead
from contracts.profiles import PartnerProfile
from contracts.topics import Reason
from services.lifecycle.domain import matching, reoffer
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.lead import Lead, Windows, customer_keys, no_such_lead
from services.lifecycle.domain.privacy import SubjectKeys
from services.lifecycle.service_layer.batch import Answered, BatchPlan, refused
from services.lifecycle.service_layer.decoding import (
    Decoded,
    Malformed,
    decode,
    lead_id_of,
    readable_ids,
)
from services.lifecycle.service_layer.failures import where_it_failed
from services.lifecycle.service_layer.messages import (
    DUPLICATE,
    Committed,
    Delivery,
    Handled,
    Outcome,
    dedupe_key,
)
from services.lifecycle.service_layer.outgoing import derived_id
from services.lifecycle.service_layer.ports import (
    Change,
    DeadLetter,
    HeldAction,
    LeadStore,
    OutboxRow,
    Snapshot,
    VersionConflict,
    in_publishing_order,
)
from services.lifecycle.service_layer.tracing import UNTRACED, MessageTrace

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 20
RECENT_LEADS = 20_000
"""Leads kept in memory after a batch decided them, for the next messages of the same leads."""


class LeadService:
    def __init__(
        self,
        store: LeadStore,
        clock: Clock,
        windows: Windows,
        early_action_grace: timedelta = timedelta(minutes=10),
        subject_keys: SubjectKeys | None = None,
    ) -> None:
        self._store = store
        self._subject_keys = subject_keys
        self._clock = clock
        self._windows = windows
        self._grace = early_action_grace
        self._recent: OrderedDict[str, Lead] = OrderedDict()

    async def decide_and_commit_one(self, delivery: Delivery) -> Handled:
        """One message on its own (a batch of one)."""
        return (await self.decide_and_commit([delivery])).outcomes[0]

    async def decide_and_commit(
        self, deliveries: Sequence[Delivery], traces: Sequence[MessageTrace] = ()
    ) -> Committed:
        """Decide the records of one partition in order and commit them together."""
        messages = [_decoded(delivery) for delivery in deliveries]
        traced = list(traces) or [UNTRACED] * len(deliveries)
        for _ in range(MAX_CONFLICT_RETRIES):
            snapshot, remembered = await self._read(deliveries, messages)
            plan = BatchPlan(snapshot, self._clock.now(), self._windows, self._grace)
            for delivery, message, trace in zip(deliveries, messages, traced, strict=True):
                with trace.step("decide"):
                    plan.take(delivery, message, trace.carrier())
            if plan.change.empty:
                return Committed(plan.outcomes)
            started = time.time_ns()
            try:
                # A remembered lead the batch writes is checked by its version guard
                # in the transaction; one it only read is checked here.
                unwritten = remembered - plan.change.leads.keys()
                await self._still_current({i: snapshot.leads[i].version for i in unwritten})
                rows = await self._store.commit(plan.change)
            except VersionConflict as conflict:
                log.info("batch decided on a view that changed, deciding again: %s", conflict)
                self._forget(snapshot.leads)
                continue
            for trace in traced:
                trace.step_between("commit", started, time.time_ns())
            self._remember(write.lead for write in plan.change.leads.values())
            return Committed(plan.outcomes, in_publishing_order([*snapshot.unsent, *rows]))
        raise VersionConflict(f"the batch kept conflicting over {MAX_CONFLICT_RETRIES} tries")

    async def _read(
        self, deliveries: Sequence[Delivery], messages: Sequence[Decoded | Malformed]
    ) -> tuple[Snapshot, set[str]]:
        """Everything the batch is decided on, in two rounds of concurrent reads, and
        which of its leads were taken from memory rather than read."""
        keys = [k for d, m in zip(deliveries, messages, strict=True) for k in _keys(d, m)]
        lead_ids = sorted({i for m in messages if (i := lead_id_of(m))} | _named(messages))
        remembered = {i: self._recent[i] for i in lead_ids if i in self._recent}
        subjects = self._subjects(messages)
        processed, loaded, erased = await asyncio.gather(
            self._store.processed_among(keys),
            self._store.load_many([i for i in lead_ids if i not in remembered]),
            self._store.erased_among(sorted({k for keys in subjects.values() for k in keys})),
        )
        leads = remembered | loaded
        arriving = sorted(
            {m.lead_id for m in messages if isinstance(m, InboundLead) and m.lead_id not in leads}
        )
        # Unsent rows are read after the leads: a row committed with a version taken
        # above (read, or remembered from this replica's own commit) is then found
        # here or already sent, so none is published after a later row of its lead.
        passing = _passing_on(messages, leads)
        profiles, held, unsent, next_offers, lookalikes, sources = await asyncio.gather(
            self._store.load_profiles(_partners_needed(messages, leads, passing)),
            self._store.held_for(arriving),
            self._store.unsent_of(lead_ids),
            self._store.load_many([reoffer.next_offer_id(lead) for lead in passing]),
            self._store.lookalikes(_match_keys(messages, passing)),
            self._store.source_owners(_source_keys(messages)),
        )
        erased_at = {
            lead_id: max(erased[k] for k in found)
            for lead_id, keys in subjects.items()
            if (found := keys & erased.keys())
        }
        snapshot = Snapshot(
            processed,
            leads | next_offers,
            profiles,
            held,
            unsent,
            lookalikes,
            sources,
            erased_at,
            subjects,
        )
        return snapshot, set(remembered)

    def _subjects(self, messages: Sequence[Decoded | Malformed]) -> dict[str, frozenset[str]]:
        """The customers the batch's leads and reopens bring: one whose data was erased
        is not taken again without fresh consent."""
        if self._subject_keys is None:
            return {}
        keys = self._subject_keys
        return {
            m.lead_id: keys.of(m.customer.email, m.customer.phone, m.customer.country)
            for m in messages
            if isinstance(m, InboundLead | ReopenLead) and m.customer is not None
        }

    async def _still_current(self, versions: dict[str, int]) -> None:
        """Leads taken from memory are still stored at the versions decided on."""
        if versions and await self._store.versions_of(list(versions)) != versions:
            raise VersionConflict("a lead remembered here was changed elsewhere")

    def _forget(self, lead_ids: Iterable[str]) -> None:
        for lead_id in lead_ids:
            self._recent.pop(lead_id, None)

    def _remember(self, leads: Iterable[Lead]) -> None:
        for lead in leads:
            self._recent[lead.lead_id] = lead
            self._recent.move_to_end(lead.lead_id)
        while len(self._recent) > RECENT_LEADS:
            self._recent.popitem(last=False)

    async def park(self, delivery: Delivery, error: BaseException) -> Committed:
        """Park a message that keeps failing for no foreseen reason on the dead-letter
        topic, untouched, and answer it `internal_error`. Deduped by position, so
        that once replayed (at a new offset) it is handled anew."""
        now = self._clock.now()
        key = delivery.position_key
        message_id, lead_id = readable_ids(delivery.value)
        letter = DeadLetter(
            id=derived_id(key, "dead-letter"),
            topic_name=delivery.topic_name,
            partition=delivery.partition,
            offset=delivery.offset,
            key=delivery.key,
            value=delivery.value,
            headers=delivery.headers,
            error_class=type(error).__name__,
            error=where_it_failed(error),
            message_id=message_id,
            lead_id=lead_id,
            parked_at=now,
        )
        failed = Refused(Reason.INTERNAL_ERROR, letter.answer)
        answer, marker = refused(
            Answered(key, delivery.topic_name, message_id, lead_id), failed, now
        )
        change = Change(
            slot=delivery.slot, markers={key: marker}, outgoing=[answer], parked=[letter]
        )
        if await self._store.processed_among([key]):
            return Committed([DUPLICATE])
        return Committed(
            [Handled(Outcome.REJECTED, Reason.INTERNAL_ERROR)], await self._store.commit(change)
        )

    async def refuse_expired(self, held: HeldAction) -> list[OutboxRow]:
        """An action whose lead did not come within its grace: refused `unknown_lead`
        now, exactly as for a lead of another partner."""
        message = Answered(
            held.key,
            held.source_topic,
            held.action.get("message_id"),
            held.lead_id,
            held.partner_id,
        )
        refusal = no_such_lead(held.partner_id, held.lead_id)
        answer, marker = refused(message, refusal, self._clock.now())
        change = Change(
            slot="held", settled={held.key: marker}, outgoing=[answer], release=[held.key]
        )
        return await self._store.commit(change)


def _decoded(delivery: Delivery) -> Decoded | Malformed:
    try:
        return decode(delivery.topic, delivery.value)
    except Malformed as malformed:
        return malformed


def _keys(delivery: Delivery, message: Decoded | Malformed) -> tuple[str, ...]:
    """Where a message's marker may be: an unreadable one's by its position; a lead
    refused for a cause its sender can cure (no partner profile yet) also by its
    position, so that the same record delivered again is a duplicate."""
    if isinstance(message, Malformed):
        return (delivery.position_key,)
    key = dedupe_key(delivery.topic, message.message_id)
    return (key, delivery.position_key) if isinstance(message, InboundLead) else (key,)


def _partners_needed(
    messages: Sequence[Decoded | Malformed], leads: dict[str, Lead], passing: Sequence[Lead]
) -> list[str]:
    """Partner profiles the rules need: to receive a new lead, to alert the partner's
    contacts on a command or a reopen, to compare a profile with the stored one, and to pass a
    lead on to one of its candidates."""
    needed = {candidate for lead in passing for candidate in _candidates(lead)}
    for message in messages:
        if isinstance(message, InboundLead | PartnerProfile):
            needed.add(message.partner_id)
        if isinstance(message, InboundLead) and message.routing:
            needed.update(message.routing.candidates)  # for a decline held for it
        elif isinstance(message, COMMANDS | ReopenLead) and (lead := leads.get(message.lead_id)):
            needed.add(lead.partner_id)
    return sorted(needed)


def _named(messages: Sequence[Decoded | Malformed]) -> set[str]:
    """Other leads the messages name: the lead a decline says its lead repeats."""
    return {m.duplicate_of for m in messages if isinstance(m, Decline) and m.duplicate_of}


def _passing_on(messages: Sequence[Decoded | Malformed], leads: dict[str, Lead]) -> list[Lead]:
    """Leads sent with routing that a message may end (a decline, an expiry): their
    candidates' profiles, their next offer's id and its partners' lookalikes are read."""
    passing = {}
    for message in messages:
        lead = leads.get(message.lead_id) if isinstance(message, Decline | Expire) else None
        if lead is not None and lead.routing is not None and lead.stage is Stage.RECEIVED:
            passing[lead.lead_id] = lead
    return list(passing.values())


def _candidates(lead: Lead) -> list[str]:
    return lead.routing.candidates if lead.routing else []


def _match_keys(messages: Sequence[Decoded | Malformed], passing: Sequence[Lead]) -> list[str]:
    """The keys of every lead the batch may open: its new leads', and those a lead
    passed on would have at each of its candidates."""
    keys: set[str] = set()
    for message in messages:
        if isinstance(message, InboundLead):
            keys.update(customer_keys(message.partner_id, message.customer))
    for lead in passing:
        for partner in _candidates(lead):
            keys.update(customer_keys(partner, lead.customer))
    return sorted(keys)


def _source_keys(messages: Sequence[Decoded | Malformed]) -> list[str]:
    return sorted(
        {
            matching.source_key(m.referrer.id, m.source_lead_id)
            for m in messages
            if isinstance(m, InboundLead) and m.source_lead_id
        }
    )
