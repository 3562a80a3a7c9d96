"""Second chances: a partner undoes its decline, a referrer reopens a lead that ended;
every change says who made it. The lead service on the in-memory store."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.topics import Topic
from services.lifecycle.adapters.memory import InMemoryStore
from services.lifecycle.domain.clock import FixedClock
from services.lifecycle.domain.lead import Lead, Windows
from services.lifecycle.domain.reoffer import offer_id
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.messages import Committed
from services.lifecycle.service_layer.ports import in_publishing_order
from tests import messages
from tests.messages import delivery
from tests.store_contract import Record, act

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WINDOWS = Windows()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def store(clock: FixedClock) -> InMemoryStore:
    return InMemoryStore(clock)


@pytest.fixture
async def service(store: InMemoryStore, clock: FixedClock) -> LeadService:
    service = LeadService(store, clock, WINDOWS)
    for partner in (messages.PARTNER, "partner-b"):
        profile = messages.profile(partner, updated_at=T0 - timedelta(days=1))
        await handled(service, (Topic.PROFILES, profile))
    return service


async def handled(service: LeadService, *records: Record) -> Committed:
    return await service.decide_and_commit([delivery(topic, value) for topic, value in records])


async def outcome(service: LeadService, record: Record) -> tuple[str, str | None]:
    [handled_one] = (await handled(service, record)).outcomes
    return handled_one.outcome, handled_one.reason


async def stored(store: InMemoryStore, lead_id: str) -> Lead:
    lead = await store.load(lead_id)
    assert lead is not None
    return lead


async def last_event(store: InMemoryStore, lead_id: str) -> dict[str, Any]:
    rows = in_publishing_order(await store.unsent_of([lead_id]))
    events: list[dict[str, Any]] = [
        json.loads(r.value or b"")
        for r in rows
        if r.lead_id == lead_id and b'"event_id"' in (r.value or b"")
    ]
    return events[-1]


def reopen(lead_id: str, **fields: Any) -> Record:
    return Topic.INBOUND, messages.reopen(lead_id, **fields)


async def declined(service: LeadService, lead_id: str, **inbound: Any) -> None:
    await handled(service, (Topic.INBOUND, messages.inbound(lead_id=lead_id, **inbound)))
    await handled(service, act(lead_id, "decline"))


# --- undo a decline ---------------------------------------------------------------------


async def test_an_undone_decline_leaves_the_lead_received_with_what_was_left_of_its_window(
    service: LeadService, store: InMemoryStore, clock: FixedClock
) -> None:
    await handled(service, (Topic.INBOUND, messages.inbound(lead_id="undo")))
    clock.advance(timedelta(days=4))
    await handled(service, act("undo", "decline", notes="Wrong lead"))
    clock.advance(timedelta(days=2))

    assert await outcome(service, act("undo", "undo_decline")) == ("applied", None)
    lead = await stored(store, "undo")
    assert (lead.stage, lead.outcome, lead.decline_reason, lead.closing_notes) == (
        "received",
        None,
        None,
        None,
    )
    assert lead.respond_by == clock.now() + timedelta(days=10)  # 14 days less the 4 it took
    assert lead.customer.email is None  # erased at the decline, and not restored
    event = await last_event(store, "undo")
    assert (event["type"], event["from_outcome"], event["actor"]["kind"]) == (
        "lead.reopened",
        "declined",
        "partner_user",
    )


async def test_an_undone_late_decline_still_gets_72_hours(
    service: LeadService, store: InMemoryStore, clock: FixedClock
) -> None:
    await handled(service, (Topic.INBOUND, messages.inbound(lead_id="late")))
    clock.advance(timedelta(days=13, hours=20))
    await handled(service, act("late", "decline"))
    await handled(service, act("late", "undo_decline"))
    assert (await stored(store, "late")).respond_by == clock.now() + timedelta(hours=72)


async def test_a_decline_cannot_be_undone_after_the_window(
    service: LeadService, clock: FixedClock
) -> None:
    await declined(service, "too-late")
    clock.advance(WINDOWS.undo + timedelta(seconds=1))
    assert await outcome(service, act("too-late", "undo_decline")) == (
        "rejected",
        "undo_window_passed",
    )


async def test_a_decline_cannot_be_undone_once_the_lead_went_to_another_partner(
    service: LeadService,
) -> None:
    consent = {"contact": True, "share_with_other_partners": True}
    routing = {"candidates": ["partner-b"]}
    await declined(service, "gone", consent=consent, routing=routing)
    assert await outcome(service, act("gone", "undo_decline")) == ("rejected", "lead_reoffered")
    assert await outcome(service, reopen("gone")) == ("rejected", "lead_reoffered")
    assert await outcome(service, reopen(offer_id("gone", 2))) == ("rejected", "invalid_transition")


async def test_only_a_declined_lead_can_have_its_decline_undone(service: LeadService) -> None:
    await handled(service, (Topic.INBOUND, messages.inbound(lead_id="open")))
    assert await outcome(service, act("open", "undo_decline")) == (
        "rejected",
        "invalid_transition",
    )


async def test_an_undo_delivered_again_changes_nothing(
    service: LeadService, store: InMemoryStore
) -> None:
    await declined(service, "twice")
    undo = act("twice", "undo_decline")
    assert await outcome(service, undo) == ("applied", None)
    version = (await stored(store, "twice")).version
    assert await outcome(service, undo) == ("duplicate", None)
    assert (await stored(store, "twice")).version == version


# --- reopen by the referrer --------------------------------------------------------------


async def test_a_referrer_reopens_an_expired_lead_with_a_fresh_window_and_the_customer_again(
    service: LeadService, store: InMemoryStore, clock: FixedClock
) -> None:
    received = (T0 - timedelta(days=15)).isoformat()
    await handled(service, (Topic.INBOUND, messages.inbound(lead_id="exp", received_at=received)))
    await handled(service, (Topic.COMMANDS, messages.command("exp", "expire")))
    customer = messages.inbound()["customer"]

    again = reopen("exp", reason="customer_reengaged", customer=customer, contact_requested=True)
    assert await outcome(service, again) == ("applied", None)
    lead = await stored(store, "exp")
    assert (lead.stage, lead.outcome, lead.reopens) == ("received", None, 1)
    assert lead.respond_by == clock.now() + WINDOWS.response
    assert lead.customer.email == customer["email"] and lead.match_keys
    assert lead.hot and lead.hot_until == clock.now() + WINDOWS.contact_request
    event = await last_event(store, "exp")
    assert {k: event[k] for k in ("type", "reason", "reopen_count", "from_outcome")} == {
        "type": "lead.reopened",
        "reason": "customer_reengaged",
        "reopen_count": 1,
        "from_outcome": "expired",
    }
    assert event["actor"] == {"kind": "referrer", "id": "ms-1"}


async def test_a_lead_is_reopened_twice_at_most(service: LeadService) -> None:
    await declined(service, "thrice")
    for _ in range(2):
        assert await outcome(service, reopen("thrice")) == ("applied", None)
        await handled(service, act("thrice", "decline"))
    assert await outcome(service, reopen("thrice")) == ("rejected", "reopen_limit_reached")


async def test_a_lead_cannot_be_reopened_after_the_window(
    service: LeadService, clock: FixedClock
) -> None:
    await declined(service, "old")
    clock.advance(WINDOWS.reopen + timedelta(seconds=1))
    assert await outcome(service, reopen("old")) == ("rejected", "reopen_window_passed")


async def test_only_the_leads_referrer_may_reopen_it_and_others_learn_nothing(
    service: LeadService,
) -> None:
    await declined(service, "theirs")
    assert await outcome(service, reopen("theirs", referrer_id="someone-else")) == (
        "rejected",
        "unknown_lead",
    )
    assert await outcome(service, reopen("no-such-lead")) == ("rejected", "unknown_lead")


async def test_an_open_or_won_lead_is_not_reopened(service: LeadService) -> None:
    await handled(service, (Topic.INBOUND, messages.inbound(lead_id="busy")))
    assert await outcome(service, reopen("busy")) == ("rejected", "invalid_transition")
    await handled(service, act("busy", "accept"), act("busy", "won"))
    assert await outcome(service, reopen("busy")) == ("rejected", "invalid_transition")


async def test_a_reopen_delivered_again_changes_nothing(
    service: LeadService, store: InMemoryStore
) -> None:
    await declined(service, "again")
    message = reopen("again")
    assert await outcome(service, message) == ("applied", None)
    assert await outcome(service, message) == ("duplicate", None)
    assert (await stored(store, "again")).reopens == 1


# --- who did it ---------------------------------------------------------------------------


async def test_every_event_says_who_made_the_change_and_the_system_is_never_a_user(
    service: LeadService, store: InMemoryStore
) -> None:
    overdue = (T0 - timedelta(days=15)).isoformat()
    await handled(service, (Topic.INBOUND, messages.inbound(lead_id="who", received_at=overdue)))
    assert (await last_event(store, "who"))["actor"] == {"kind": "referrer", "id": "ms-1"}
    await handled(service, (Topic.COMMANDS, messages.command("who", "expire")))
    assert (await last_event(store, "who"))["actor"] == {"kind": "system", "id": None}
    await handled(service, (Topic.INBOUND, messages.inbound(lead_id="who-2")))
    await handled(service, act("who-2", "accept"))
    actor = (await last_event(store, "who-2"))["actor"]
    assert actor == {"kind": "partner_user", "id": messages.ADMIN["user_id"]}
    history = (await stored(store, "who")).history
    assert [(e.action, e.actor.kind) for e in history] == [
        ("receive", "referrer"),
        ("expire", "system"),
    ]
