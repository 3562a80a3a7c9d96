"""A batch decided in memory on a hand-built view (`BatchPlan.take`): what each message
amounts to, and what the batch would commit and publish. No store, no I/O."""

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.actions import PARTNER_ACTION
from contracts.profiles import PartnerProfile
from contracts.topics import Topic
from services.lifecycle.domain.lead import Lead
from services.lifecycle.service_layer.batch import BatchPlan
from services.lifecycle.service_layer.decoding import decode
from services.lifecycle.service_layer.messages import Handled
from services.lifecycle.service_layer.ports import HeldAction, Snapshot
from tests import messages
from tests.messages import delivery
from tests.store_contract import Record, act, arrival, key_of
from tests.unit.test_lifecycle_rules import PROFILE, T0, WINDOWS, accepted, receive

GRACE = timedelta(minutes=10)
NOW = T0 + timedelta(hours=1)


def plan(
    *leads: Lead,
    processed: Sequence[str] = (),
    profiles: Sequence[PartnerProfile] = (PROFILE,),
    held: Sequence[HeldAction] = (),
    now: datetime = NOW,
) -> BatchPlan:
    """A batch about to be decided on a view holding these leads, profiles and actions."""
    waiting: dict[str, list[HeldAction]] = {}
    for action in held:
        waiting.setdefault(action.lead_id, []).append(action)
    view = Snapshot(
        frozenset(processed),
        {lead.lead_id: lead for lead in leads},
        {profile.partner_id: profile for profile in profiles},
        waiting,
    )
    return BatchPlan(view, now, WINDOWS, GRACE)


def take(batch: BatchPlan, record: Record, offset: int | None = None) -> Handled:
    topic, value = record
    received = delivery(topic, value, offset)
    return batch.take(received, decode(topic, received.value))


def published(batch: BatchPlan) -> list[str]:
    """The types of what the batch publishes, in order."""
    return [publication.message.type for publication in batch.change.outgoing]


def reasons(batch: BatchPlan) -> list[str]:
    rejected = [p.message for p in batch.change.outgoing if p.message.topic is Topic.REJECTED]
    return [json.loads(message.value or b"")["reason"] for message in rejected]


def held_earlier(record: Record, offset: int, expires_at: datetime = NOW + GRACE) -> HeldAction:
    """An action held before this batch, waiting for its lead."""
    _, value = record
    action = PARTNER_ACTION.validate_python(value)
    return HeldAction(
        key=key_of(record),
        lead_id=action.lead_id,
        partner_id=action.partner_id,
        action=action.model_dump(mode="json"),
        held_at=expires_at - GRACE,
        expires_at=expires_at,
        arrival=(0, offset),
        source_topic=Topic.PARTNER_ACTIONS.value,
    )


def outcomes(handled: Sequence[Handled]) -> list[str]:
    return [h.outcome for h in handled]


# --- several messages of one lead --------------------------------------------------


def test_several_messages_of_one_lead_fold_in_order_into_one_write() -> None:
    batch = plan(receive(lead_id="folded"))
    steps = [
        act("folded", "accept"),
        act("folded", "favorite"),
        act("folded", "update", changes={"notes": "call back"}),
        act("folded", "accept"),  # accepted already
        act("folded", "won"),
    ]
    handled = [take(batch, step) for step in steps]

    assert outcomes(handled) == ["applied"] * 3 + ["rejected", "applied"]
    assert handled[3].reason == "invalid_transition"
    [write] = batch.change.leads.values()
    assert (write.expected_version, write.lead.version, write.lead.outcome) == (1, 5, "won")
    assert write.lead.deal is not None and write.lead.deal.notes == "call back"
    # Each event is followed by the lead's state as it then stood.
    assert published(batch) == [
        "lead.accepted",
        "lead.state",
        "lead.favorited",
        "lead.state",
        "lead.updated",
        "lead.state",
        "message.rejected",
        "lead.won",
        "lead.state",
    ]
    states = [p.message for p in batch.change.outgoing if p.message.topic is Topic.STATE]
    assert [json.loads(state.value or b"")["version"] for state in states] == [2, 3, 4, 5]
    assert {state.key for state in states} == {write.lead.lead_id}


def test_a_message_twice_in_one_batch_is_applied_once() -> None:
    batch = plan(receive(lead_id="twice"))
    favorite = act("twice", "favorite")
    assert outcomes([take(batch, favorite), take(batch, favorite)]) == ["applied", "duplicate"]
    assert published(batch) == ["lead.favorited", "lead.state"]


def test_a_message_handled_in_an_earlier_batch_is_a_duplicate_and_commits_nothing() -> None:
    favorite = act("earlier", "favorite")
    batch = plan(receive(lead_id="earlier"), processed=[key_of(favorite)])
    assert take(batch, favorite).outcome == "duplicate"
    assert batch.change.empty


# --- actions that come before their lead -------------------------------------------


def test_an_action_before_its_lead_is_held_for_its_grace_and_claims_the_lead_id() -> None:
    batch = plan()
    accept = act("early", "accept")
    assert take(batch, accept).outcome == "held"
    assert batch.change.hold[key_of(accept)].expires_at == NOW + GRACE
    assert batch.change.claims == ["early"]
    assert published(batch) == []


def test_held_actions_are_applied_in_the_order_they_came_when_their_lead_arrives() -> None:
    accept, update = act("late", "accept"), act("late", "update", changes={"notes": "n"})
    batch = plan(held=[held_earlier(accept, 1), held_earlier(update, 2)])
    assert take(batch, arrival("late")).outcome == "applied"

    assert published(batch) == [
        "lead.received",
        "lead.state",
        "notification.requested",  # to the partner's alert contact
        "lead.accepted",
        "lead.state",
        "lead.updated",
        "lead.state",
    ]
    settled = batch.change.settled
    assert [settled[key_of(r)].outcome for r in (accept, update)] == ["applied", "applied"]
    assert batch.change.release == [key_of(accept), key_of(update)]
    assert batch.change.arrivals == {"late": {key_of(accept), key_of(update)}}
    assert batch.change.leads["late"].lead.version == 3


def test_a_held_action_past_its_grace_is_refused_unknown_lead_when_its_lead_arrives() -> None:
    accept = act("slow", "accept")
    batch = plan(held=[held_earlier(accept, 1, expires_at=NOW - timedelta(seconds=1))])
    take(batch, arrival("slow"))

    assert batch.change.settled[key_of(accept)].reason == "unknown_lead"
    assert reasons(batch) == ["unknown_lead"]
    assert batch.change.leads["slow"].lead.stage == "received"


def test_another_partners_action_on_an_arriving_lead_stays_held_until_its_grace_ends() -> None:
    theirs = act("mine", "accept", partner_id="partner-2")
    batch = plan(held=[held_earlier(theirs, 1)])
    take(batch, arrival("mine"))

    assert batch.change.release == [] and batch.change.settled == {}
    assert batch.change.arrivals == {"mine": {key_of(theirs)}}
    assert batch.change.leads["mine"].lead.stage == "received"


def test_an_action_and_then_its_lead_in_one_batch_apply_as_if_the_lead_came_first() -> None:
    batch = plan()
    accept = act("both", "accept")
    handled = [take(batch, accept), take(batch, arrival("both"))]

    assert outcomes(handled) == ["held", "applied"]
    assert batch.change.markers[key_of(accept)].outcome == "applied"
    assert (batch.change.hold, batch.change.release) == ({}, [])
    assert batch.change.leads["both"].lead.stage == "accepted"


# --- refusals a later message can cure ---------------------------------------------


def test_a_lead_refused_for_want_of_a_profile_is_answered_once_and_handled_when_sent_later() -> (
    None
):
    lead = arrival("no-profile")
    refused = plan(profiles=())
    assert take(refused, lead, offset=7).reason == "partner_profile_missing"
    [position] = refused.change.markers  # by its place on the topic, not by its id
    assert position != key_of(lead)

    # Delivered again after a crash: answered already.
    again = plan(processed=[position], profiles=())
    assert take(again, lead, offset=7).outcome == "duplicate"
    # Sent again once the partner has a profile: a new record, handled.
    later = plan(processed=[position])
    assert take(later, lead, offset=8).outcome == "applied"
    assert published(later)[0] == "lead.received"


# --- timers and profiles that change nothing ---------------------------------------


def command(lead: Lead, name: str, **fields: Any) -> Record:
    return Topic.COMMANDS, messages.command(lead.lead_id, name, **fields)


@pytest.mark.parametrize(
    ("lead", "at"),
    [(accepted(lead_id="answered"), NOW), (receive(lead_id="not-due"), NOW)],
    ids=["answered", "not-due-yet"],
)
def test_an_expiry_for_a_lead_answered_or_not_yet_due_changes_nothing_and_is_not_marked(
    lead: Lead, at: datetime
) -> None:
    """Unmarked, the scheduler's next emission of the same timer still counts."""
    batch = plan(lead, now=at)
    assert take(batch, command(lead, "expire")).outcome == "no_change"
    assert batch.change.empty


def test_an_expiry_once_due_archives_an_unanswered_lead_and_tells_the_referrer() -> None:
    lead = receive(lead_id="unanswered")
    batch = plan(lead, now=lead.respond_by)
    assert take(batch, command(lead, "expire")).outcome == "applied"
    assert published(batch) == ["lead.expired", "lead.state", "notification.requested"]
    assert batch.change.leads["unanswered"].lead.outcome == "expired"


def test_a_profile_older_than_the_stored_one_changes_nothing() -> None:
    stale = (Topic.PROFILES, messages.profile(updated_at=PROFILE.updated_at - timedelta(days=1)))
    batch = plan()
    assert take(batch, stale).outcome == "no_change"
    assert batch.change.profiles == {}


def test_two_newer_profiles_in_one_batch_replace_the_stored_one_once() -> None:
    batch = plan()
    newer = [PROFILE.updated_at + timedelta(hours=h) for h in (1, 2)]
    for at in newer:
        take(batch, (Topic.PROFILES, messages.profile(updated_at=at)))
    [update] = batch.change.profiles.values()
    assert (update.profile.updated_at, update.replaces) == (newer[1], PROFILE.updated_at)
