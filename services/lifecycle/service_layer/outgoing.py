"""Outgoing messages as the outbox stores them: topic, key, CloudEvents headers, JSON value."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from contracts.commands import Command
from contracts.events import ActorKind, EventActor, LeadEvent, LeadSnapshot, LeadState
from contracts.notifications import NotificationRequested
from contracts.performance import PerformanceUpdated
from contracts.rejected import MessageRejected
from contracts.topics import EventType, Topic
from services.lifecycle.domain import stale_deals
from services.lifecycle.domain.ids import derived_uuid
from services.lifecycle.domain.lead import Decision, Lead, Notify

# Ids are derived from what caused the message, so a retried transaction or a
# replayed input produces the very same ids: consumers can dedupe on them.
_ID_NAMESPACE = uuid.UUID("8d6f7f0e-3b2a-4c39-9a53-6a1b2f0c5e11")


def derived_id(*parts: str) -> str:
    return derived_uuid(_ID_NAMESPACE, "\x1f".join(parts))


@dataclass(frozen=True)
class Outgoing:
    topic: Topic
    key: str
    id: str
    type: str
    time: datetime
    value: bytes | None
    """None: a tombstone."""

    def headers(self, source: str) -> list[tuple[str, bytes]]:
        """CloudEvents 1.0, Kafka binary mode. An attribute without a value is left
        out, never sent empty: the spec forbids an empty `subject`."""
        attributes = [
            ("ce_specversion", "1.0"),
            ("ce_id", self.id),
            ("ce_type", self.type),
            ("ce_source", source),
            ("ce_time", self.time.isoformat()),
            ("ce_subject", self.key),
            ("content-type", "application/json"),
        ]
        return [(name, value.encode()) for name, value in attributes if value]


def _outgoing(
    topic: Topic, key: str, id_: str, type_: str, time: datetime, model: BaseModel
) -> Outgoing:
    return Outgoing(topic, key, id_, type_, time, model.model_dump_json().encode())


@dataclass(frozen=True)
class Cause:
    """The input message behind what is published: its id, and its dedupe key
    (unique across topics), from which the published ids are derived."""

    message_id: str
    key: str


def for_decision(decision: Decision, cause: Cause, now: datetime) -> list[Outgoing]:
    """The event, the lead's new state and the notifications a decision publishes, in
    the order they happened."""
    lead = decision.lead
    messages = []
    if decision.event is not None:
        snapshot = lead.snapshot()
        messages.append(_event(decision, decision.event, snapshot, cause, now))
        messages.append(_state(lead, snapshot, cause, now))
    for index, notify in enumerate(decision.notifications):
        messages.append(_notification(lead, notify, cause, index, now))
    return messages


def _event(
    decision: Decision, type_: EventType, snapshot: LeadSnapshot, cause: Cause, now: datetime
) -> Outgoing:
    lead = decision.lead
    event = LeadEvent(
        event_id=derived_id(cause.key, type_),
        type=type_,
        lead_id=lead.lead_id,
        partner_id=lead.partner_id,
        occurred_at=now,
        version=lead.version,
        causation_id=cause.message_id,
        lead=snapshot,
        actor=_actor(decision),
        reason=decision.reason,
        reopen_count=lead.reopens if type_ is EventType.REOPENED else None,
        from_outcome=decision.from_outcome,
        request_id=decision.request_id,
        **(_idleness(lead, now) if type_ is EventType.DEAL_IDLE else {}),
    )
    return _outgoing(Topic.EVENTS, lead.lead_id, event.event_id, type_, now, event)


def _state(lead: Lead, snapshot: LeadSnapshot, cause: Cause, now: datetime) -> Outgoing:
    """`leads.state`, keyed by lead: compaction keeps each lead's latest."""
    state = LeadState.model_construct(**dict(snapshot), version=lead.version)
    # One cause may change a lead twice (declined, then passed on): the version tells.
    state_id = derived_id(cause.key, LeadState.type, lead.lead_id, str(lead.version))
    return _outgoing(Topic.STATE, lead.lead_id, state_id, LeadState.type, now, state)


def state_tombstone(lead: Lead, now: datetime) -> Outgoing:
    """The lead is gone for good: compaction drops its key from `leads.state`."""
    state_id = derived_id("purge", LeadState.type, lead.lead_id, str(lead.version))
    return Outgoing(Topic.STATE, lead.lead_id, state_id, LeadState.type, now, None)


def republished_state(lead: Lead, now: datetime) -> Outgoing:
    """The lead's state again (`leads state republish`): the same id for the same version."""
    return _state(lead, lead.snapshot(), Cause("", "republish"), now)


def _idleness(lead: Lead, now: datetime) -> dict[str, Any]:
    return {"days_idle": stale_deals.days_idle(lead, now), "step": lead.idle_step}


def _actor(decision: Decision) -> EventActor | None:
    """Who made the change: the decision's own actor, else its lead's last step's."""
    history = decision.lead.history
    actor = decision.actor or (history[-1].actor if history else None)
    return EventActor(kind=ActorKind(actor.kind), id=actor.id) if actor else None


def _notification(lead: Lead, notify: Notify, cause: Cause, index: int, now: datetime) -> Outgoing:
    notification = NotificationRequested(
        notification_id=derived_id(cause.key, notify.template, str(index)),
        template=notify.template,
        lead_id=lead.lead_id,
        partner_id=lead.partner_id,
        recipient=notify.recipient,
        causation_id=cause.message_id,
        data=notify.data,
    )
    return _outgoing(
        Topic.NOTIFICATIONS,
        lead.lead_id,
        notification.notification_id,
        notification.type,
        now,
        notification,
    )


def rejection(
    source_topic: str,
    dedupe_key: str,
    message_id: str | None,
    lead_id: str | None,
    refusal_reason: str,
    detail: str,
    now: datetime,
) -> Outgoing:
    rejected = MessageRejected.model_validate(
        {
            "message_id": message_id,
            "source_topic": source_topic,
            "lead_id": lead_id,
            "reason": refusal_reason,
            "detail": detail,
            "rejected_at": now,
        }
    )
    key = lead_id or message_id or ""
    return _outgoing(
        Topic.REJECTED, key, derived_id(dedupe_key, "rejected"), rejected.type, now, rejected
    )


def for_command(command: Command, now: datetime) -> Outgoing:
    """A scheduler command: its id is the deadline's, so re-sending it is harmless."""
    return _outgoing(
        Topic.COMMANDS,
        command.lead_id,
        command.message_id,
        f"command.{command.command}",
        now,
        command,
    )


def for_performance(update: PerformanceUpdated) -> Outgoing:
    """A partner's new figures, keyed by partner: its updates stay in order."""
    return _outgoing(
        Topic.PERFORMANCE,
        update.partner_id,
        update.event_id,
        update.type,
        update.occurred_at,
        update,
    )


def dead_letter_headers(
    original: Sequence[tuple[str, bytes]],
    *,
    letter_id: str,
    topic_name: str,
    partition: int,
    offset: int,
    error_class: str,
    error: str,
    parked_at: datetime,
) -> list[tuple[str, bytes]]:
    """A parked record keeps its own headers untouched; these say where it came
    from and why it is parked (no personal data: the error names a class and a place)."""
    return [
        *original,
        ("dlq_id", letter_id.encode()),
        ("dlq_original_topic", topic_name.encode()),
        ("dlq_original_partition", str(partition).encode()),
        ("dlq_original_offset", str(offset).encode()),
        ("dlq_error_class", error_class.encode()),
        ("dlq_error_message", error.encode()),
        ("dlq_parked_at", parked_at.isoformat().encode()),
    ]
