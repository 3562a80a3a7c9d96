"""A customer's erasure (`privacy.requests`): every lead holding their data, at any
partner, erased and published again without it; every other stored copy redacted;
the request's proof kept and its outcome published.

Idempotent and resumable: leads are erased a page per transaction, each page
recording how far the request got, so that a request delivered again (after a
crash, or sent twice) carries on from there, and one already completed is only
answered again.
"""

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from contracts.privacy import EraseCustomer, ErasureCompleted
from contracts.topics import Reason, Topic
from services.lifecycle.domain import matching, privacy
from services.lifecycle.domain.clock import Clock, to_millis
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.lead import Lead
from services.lifecycle.domain.privacy import Subject, SubjectKeys
from services.lifecycle.service_layer.batch import Answered, refused
from services.lifecycle.service_layer.decoding import Malformed, decode_request
from services.lifecycle.service_layer.messages import (
    DUPLICATE,
    Committed,
    Delivery,
    Handled,
    Outcome,
    dedupe_key,
)
from services.lifecycle.service_layer.outgoing import Cause, Outgoing, derived_id, for_decision
from services.lifecycle.service_layer.pipeline import BatchDecisions
from services.lifecycle.service_layer.ports import (
    AlreadyProcessed,
    Change,
    ErasureRecord,
    LeadWrite,
    Marker,
    OutboxRow,
    Publication,
    VersionConflict,
    in_publishing_order,
)
from services.lifecycle.service_layer.tracing import MessageTrace

log = logging.getLogger(__name__)

PAGE_SIZE = 200
"""Leads erased per transaction."""
MAX_CONFLICT_RETRIES = 20


class ErasureStore(Protocol):
    async def processed_among(self, keys: Sequence[str]) -> frozenset[str]: ...
    async def load_many(self, lead_ids: Sequence[str]) -> dict[str, Lead]: ...
    async def leads_of_subject(
        self, subject_keys: Sequence[str], received_by: datetime, limit: int
    ) -> list[Lead]: ...
    async def erasure(self, request_id: str) -> ErasureRecord | None: ...
    async def commit(self, change: Change) -> list[OutboxRow]: ...


class ErasureService:
    """Decides and commits privacy requests, one at a time (the `BatchDecisions` of
    `privacy.requests`)."""

    def __init__(
        self, store: ErasureStore, clock: Clock, keys: SubjectKeys, page_size: int = PAGE_SIZE
    ) -> None:
        self._store = store
        self._clock = clock
        self._keys = keys
        self._page_size = page_size

    async def decide_and_commit(
        self, deliveries: Sequence[Delivery], traces: Sequence[MessageTrace] = ()
    ) -> Committed:
        outcomes: list[Handled] = []
        rows: list[OutboxRow] = []
        for delivery in deliveries:
            handled, committed = await self._handle(delivery)
            outcomes.append(handled)
            rows += committed
        return Committed(outcomes, in_publishing_order(rows))

    async def _handle(self, delivery: Delivery) -> tuple[Handled, list[OutboxRow]]:
        try:
            request = decode_request(delivery.value)
        except Malformed as malformed:
            return await self._refuse(delivery, delivery.position_key, malformed, None)
        key = dedupe_key(delivery.topic, request.message_id)
        if await self._store.processed_among([key]):
            return DUPLICATE, []
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                self._check(request)
                return await self._erase(delivery, key, request)
            except Refused as refusal:  # a national phone, or an unknown lead named alone
                return await self._refuse(delivery, key, refusal, request)
            except AlreadyProcessed:
                return DUPLICATE, []  # another consumer of the partition answered it
            except VersionConflict as conflict:
                log.info("erasure decided on leads that changed, deciding again: %s", conflict)
        raise VersionConflict(f"the erasure kept conflicting over {MAX_CONFLICT_RETRIES} tries")

    @staticmethod
    def _check(request: EraseCustomer) -> None:
        if request.phone is not None and matching.e164(request.phone, "ZZ") is None:
            raise Malformed(
                "does not match the contract: phone: give it in international form "
                "(+ and the country code)",
                request.message_id,
                request.lead_id,
            )

    async def _named(self, request: EraseCustomer) -> list[Lead]:
        """The lead the request names, while it holds anything of the customer (found
        by id: it may have been stored before leads kept their customer's keys)."""
        if request.lead_id is None:
            return []
        named = (await self._store.load_many([request.lead_id])).get(request.lead_id)
        if named is None and request.email is None and request.phone is None:
            raise Refused(Reason.UNKNOWN_LEAD, f"no lead {request.lead_id}: name the customer")
        return [named] if named is not None and _holds_customer(named) else []

    async def _erase(
        self, delivery: Delivery, key: str, request: EraseCustomer
    ) -> tuple[Handled, list[OutboxRow]]:
        """Page by page until no lead holds the customer's data, the last page with
        the request's answer; a completed request is only answered again."""
        now = self._clock.now()
        named = await self._named(request)
        # The customer is who the request names, as it began: a lead's other e-mail or
        # phone (a shared switchboard) names nobody else to erase.
        keys = self._keys.of(request.email, request.phone).union(
            *(self._keys.of_lead(lead) for lead in named)
        )
        # To the millisecond, as stored: the answer given again is the same.
        requested_at = to_millis(request.requested_at)
        record = await self._store.erasure(request.request_id) or ErasureRecord(
            request.request_id, keys, requested_at, erased_at=to_millis(now)
        )
        record = replace(record, subject_keys=record.subject_keys | keys)  # resumed: as begun
        subject = Subject.of(record.subject_keys, (request.email, request.phone))
        subject = subject.with_texts_of(named)
        rows: list[OutboxRow] = []
        while True:
            leads = [] if record.completed_at else await self._next_page(record, named)
            named = []
            subject = subject.with_texts_of(leads)
            last = len(leads) < self._page_size
            change, record = self._page(delivery, key, request, subject, record, leads, last)
            rows += await self._store.commit(change)
            if last:
                return Handled(Outcome.APPLIED), rows

    async def _next_page(self, record: ErasureRecord, named: list[Lead]) -> list[Lead]:
        """Leads of the customer received before the erasure began: one received since
        came with their fresh consent."""
        keys = sorted(record.subject_keys)
        found = (
            await self._store.leads_of_subject(keys, record.erased_at, self._page_size)
            if keys
            else []
        )
        ids = {lead.lead_id for lead in found}
        return found + [lead for lead in named if lead.lead_id not in ids]

    def _page(
        self,
        delivery: Delivery,
        key: str,
        request: EraseCustomer,
        subject: Subject,
        record: ErasureRecord,
        leads: list[Lead],
        last: bool,
    ) -> tuple[Change, ErasureRecord]:
        now = self._clock.now()
        already_completed = record.completed_at is not None
        change = Change(slot=delivery.slot)
        for lead in leads:
            decision = privacy.erase(lead, subject, request.request_id, now)
            change.leads[lead.lead_id] = LeadWrite(decision.lead, lead.version)
            cause = Cause(request.message_id, f"{key}\x1f{lead.lead_id}")
            for position, message in enumerate(for_decision(decision, cause, now)):
                change.outgoing.append(Publication(message, (decision.lead.version, position)))
        record = record.grown([lead.lead_id for lead in leads], [lead.partner_id for lead in leads])
        if last:
            record = replace(record, completed_at=record.completed_at or to_millis(now))
            change.outgoing.append(Publication(_completed(record, now), (0, 0)))
            change.markers[key] = Marker(key, Outcome.APPLIED, request.message_id, request.lead_id)
        if not already_completed:
            lead_ids = tuple(lead.lead_id for lead in leads)
            change.erasure = replace(record, redact=subject, redact_lead_ids=lead_ids)
        return change, record

    async def _refuse(
        self, delivery: Delivery, key: str, refusal: Refused, request: EraseCustomer | None
    ) -> tuple[Handled, list[OutboxRow]]:
        message_id = request.message_id if request else getattr(refusal, "message_id", None)
        answered = Answered(key, delivery.topic_name, message_id, None)
        answer, marker = refused(answered, refusal, self._clock.now())
        change = Change(slot=delivery.slot, markers={key: marker}, outgoing=[answer])
        if await self._store.processed_among([key]):
            return DUPLICATE, []
        return Handled(Outcome.REJECTED, refusal.reason), await self._store.commit(change)


def _holds_customer(lead: Lead) -> bool:
    customer = lead.customer
    return bool(lead.subject_keys) or any((customer.contact_name, customer.email, customer.phone))


def _completed(record: ErasureRecord, now: datetime) -> Outgoing:
    """The request's answer: the same id however often it is given."""
    completed = ErasureCompleted(
        request_id=record.request_id,
        leads=len(record.lead_ids),
        partners=len(record.partner_ids),
        requested_at=record.requested_at,
        completed_at=record.completed_at or now,
    )
    return Outgoing(
        Topic.PRIVACY_OUTCOMES,
        record.request_id,
        derived_id(record.request_id, completed.type),
        completed.type,
        now,
        completed.model_dump_json().encode(),
    )


class WithErasures:
    """The service's decisions by topic: privacy requests go to the erasure service,
    everything else to the lead service (whose dead-letter policy both share)."""

    def __init__(self, leads: BatchDecisions, erasures: ErasureService) -> None:
        self._leads = leads
        self._erasures = erasures

    async def decide_and_commit(
        self, deliveries: Sequence[Delivery], traces: Sequence[MessageTrace] = ()
    ) -> Committed:
        decisions = self._erasures if deliveries[0].topic is Topic.PRIVACY_REQUESTS else self._leads
        return await decisions.decide_and_commit(deliveries, traces)

    async def park(self, delivery: Delivery, error: BaseException) -> Committed:
        return await self._leads.park(delivery, error)
