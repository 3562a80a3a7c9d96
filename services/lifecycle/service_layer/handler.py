"""Handle one inbound message: decode, load, decide, commit, exactly once."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.profiles import PartnerProfile
from contracts.topics import Reason, Topic
from services.lifecycle.domain import deadlines, profiles
from services.lifecycle.domain import lead as rules
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.lead import Decision, Lead, Windows
from services.lifecycle.service_layer.decoding import Malformed, decode
from services.lifecycle.service_layer.outgoing import Cause, for_decision, rejection
from services.lifecycle.service_layer.ports import (
    AlreadyProcessed,
    Change,
    LeadStore,
    ProfileUpdate,
    VersionConflict,
)

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 20

# Refusals that a later message can cure: the same message sent again must be
# handled then, so they are deduped by position, not by message_id.
_CURABLE = frozenset({Reason.PARTNER_PROFILE_MISSING})

Decide = Callable[[Lead | None, Any, datetime, PartnerProfile | None], Decision]


@dataclass(frozen=True)
class Delivery:
    """One Kafka record as the service received it."""

    topic: Topic
    topic_name: str
    """The topic's name on the broker (with the deployment's prefix)."""
    partition: int
    offset: int
    value: bytes

    @property
    def position_key(self) -> str:
        """Dedupe key for a message whose own id cannot be read."""
        return f"{self.topic.value}@{self.partition}:{self.offset}"


@dataclass(frozen=True)
class Handled:
    """What handling one message amounted to (for logs, metrics and tests)."""

    outcome: str
    """`applied`, `no_change`, `duplicate` or `rejected`."""
    reason: Reason | None = None


class LeadService:
    def __init__(self, store: LeadStore, clock: Clock, windows: Windows) -> None:
        self._store = store
        self._clock = clock
        self._windows = windows
        self._decide: dict[Topic, Decide] = {
            Topic.INBOUND: lambda lead, message, now, profile: rules.receive(
                lead, message, now, windows, profile
            ),
            Topic.PARTNER_ACTIONS: lambda lead, action, now, _: rules.act(lead, action, now),
            Topic.COMMANDS: rules.command,
        }

    async def handle(self, delivery: Delivery) -> Handled:
        try:
            message: Any = decode(delivery.topic, delivery.value)
        except Malformed as refusal:
            # Deduped by position, not by message_id: a corrected message sent
            # again under the same id must still be processed.
            return await self._reject(
                delivery, delivery.position_key, refusal, refusal.message_id, refusal.lead_id
            )
        key = _dedupe_key(delivery, message.message_id)
        if await self._store.is_processed(key):
            return Handled("duplicate")
        if isinstance(message, PartnerProfile):
            return await self._handle_profile(key, message)
        return await self._handle_message(delivery, key, message)

    async def _handle_profile(self, key: str, profile: PartnerProfile) -> Handled:
        for _ in range(MAX_CONFLICT_RETRIES):
            stored = await self._store.load_profile(profile.partner_id)
            newer = profiles.supersedes(profile, stored)
            update = ProfileUpdate(profile, stored.updated_at if stored else None)
            try:
                await self._store.commit(Change(key, profile=update if newer else None))
            except VersionConflict:
                continue
            except AlreadyProcessed:
                return Handled("duplicate")
            return Handled("applied" if newer else "no_change")
        raise VersionConflict(f"profile of {profile.partner_id} kept changing")

    async def _handle_message(self, delivery: Delivery, key: str, message: Any) -> Handled:
        cause = Cause(message.message_id, key)
        for _ in range(MAX_CONFLICT_RETRIES):
            lead = await self._store.load(message.lead_id)
            profile = await self._profile_for(delivery.topic, lead, message)
            now = self._clock.now()
            try:
                decision = self._decide[delivery.topic](lead, message, now, profile)
            except Refused as refusal:
                refused_key = delivery.position_key if refusal.reason in _CURABLE else key
                return await self._reject(
                    delivery, refused_key, refusal, message.message_id, message.lead_id
                )
            change = Change(
                dedupe_key=key,
                lead=decision.lead if decision.changed else None,
                expected_version=lead.version if lead else None,
                outgoing=tuple(for_decision(decision, cause, now)),
                deadlines=self._deadline_changes(lead, decision, delivery.topic, message),
            )
            if _is_idle_command(delivery.topic, change):
                # No marker: the scheduler sends an early or late timer again
                # under the same id, and by then it may be due.
                return Handled("no_change")
            try:
                await self._store.commit(change)
            except VersionConflict:
                log.info("version conflict, deciding again", extra={"lead_id": message.lead_id})
                continue
            except AlreadyProcessed:
                return Handled("duplicate")
            return Handled("applied" if change.outgoing else "no_change")
        raise VersionConflict(
            f"lead {message.lead_id} kept changing under {MAX_CONFLICT_RETRIES} tries"
        )

    async def _profile_for(
        self, topic: Topic, lead: Lead | None, message: Any
    ) -> PartnerProfile | None:
        """The partner profile a rule needs: to receive a new lead, and to alert
        the partner's contacts on a command. Partner actions need none."""
        if topic is Topic.INBOUND and lead is None:
            return await self._store.load_profile(message.partner_id)
        if topic is Topic.COMMANDS and lead is not None:
            return await self._store.load_profile(lead.partner_id)
        return None

    def _deadline_changes(
        self, before: Lead | None, decision: Decision, topic: Topic, message: Any
    ) -> deadlines.DeadlineChanges | None:
        if not decision.changed and topic is not Topic.COMMANDS:
            return None
        answered = message if topic is Topic.COMMANDS else None
        return deadlines.changes(before, decision.lead, self._windows, answered)

    async def _reject(
        self,
        delivery: Delivery,
        key: str,
        refusal: Refused,
        message_id: str | None,
        lead_id: str | None,
    ) -> Handled:
        now = self._clock.now()
        answer = rejection(
            delivery.topic_name, key, message_id, lead_id, refusal.reason, refusal.detail, now
        )
        try:
            await self._store.commit(Change(dedupe_key=key, outgoing=(answer,)))
        except AlreadyProcessed:
            return Handled("duplicate")
        return Handled("rejected", refusal.reason)


def _is_idle_command(topic: Topic, change: Change) -> bool:
    return topic is Topic.COMMANDS and not (change.lead or change.outgoing or change.deadlines)


def _dedupe_key(delivery: Delivery, message_id: str) -> str:
    # message ids are unique per sending system, so per topic.
    return f"{delivery.topic.value}:{message_id}"
