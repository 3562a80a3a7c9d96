"""Every lead finds a partner, and two leads of one customer are flagged: the lead
service with the real rules on the in-memory store, batch by batch."""

import json
from datetime import timedelta
from typing import Any

import pytest

from contracts.topics import Topic
from services.lifecycle.adapters.memory import InMemoryStore
from services.lifecycle.domain.duplicates import PER_KEY
from services.lifecycle.domain.reoffer import offer_id
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.ports import in_publishing_order
from tests import messages
from tests.store_contract import CLOCK, Record, act, handled, serving

A, B, C, D = messages.PARTNER, "partner-b", "partner-c", "partner-d"
SHARED = {"contact": True, "share_with_other_partners": True}


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore(CLOCK)


@pytest.fixture
async def service(store: InMemoryStore) -> LeadService:
    service = await serving(store)
    for partner in (B, C, D):
        await handled(service, profile(partner))
    return service


def profile(partner: str, **fields: Any) -> Record:
    return Topic.PROFILES, messages.profile(partner_id=partner, **fields)


def routed(lead_id: str, candidates: list[str], max_offers: int = 3, **fields: Any) -> Record:
    routing = {"candidates": candidates, "max_offers": max_offers}
    fields.setdefault("consent", SHARED)
    return Topic.INBOUND, messages.inbound(lead_id=lead_id, routing=routing, **fields)


def decline(lead_id: str, partner: str = A, reason: str = "budget_not_adequate") -> Record:
    return act(lead_id, "decline", partner_id=partner, reason=reason)


async def published(store: InMemoryStore, lead_id: str) -> list[dict[str, Any]]:
    """Everything committed for the lead so far, events and notifications, in order."""
    rows = in_publishing_order(await store.unsent_of([lead_id]))
    return [json.loads(row.value or b"") for row in rows if row.lead_id == lead_id]


async def events(store: InMemoryStore, lead_id: str) -> list[str]:
    return [m["type"] for m in await published(store, lead_id) if "event_id" in m]


async def told(store: InMemoryStore, lead_id: str) -> list[tuple[str, str]]:
    """(template, recipient kind) of the lead's notifications."""
    found = await published(store, lead_id)
    return [(m["template"], m["recipient"]["kind"]) for m in found if "template" in m]


# --- re-offer ---------------------------------------------------------------------------


async def test_a_declined_lead_goes_to_the_next_candidate_as_offer_2_of_3(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, routed("lead-r", [A, B, C]))
    await handled(service, decline("lead-r"))

    second = await store.load(offer_id("lead-r", 2))
    assert second is not None and second.partner_id == B
    snapshot = second.snapshot()
    assert (snapshot.referral_id, snapshot.offer and snapshot.offer.number) == ("lead-r", 2)
    assert snapshot.customer.email is not None  # the next partner gets the contact data
    assert await events(store, second.lead_id) == ["lead.received"]
    assert ("new_lead", "partner") in await told(store, second.lead_id)

    assert await events(store, "lead-r") == ["lead.received", "lead.declined", "lead.reoffered"]
    notified = await told(store, "lead-r")
    assert ("passed_to_another_partner", "customer") in notified
    assert ("lead_reoffered", "referrer") in notified
    assert ("choose_another_partner", "customer") not in notified


async def test_no_partner_learns_who_else_had_the_lead(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, routed("lead-s", [A, B]))
    await handled(service, decline("lead-s"))

    old_partner_sees = [m for m in await published(store, "lead-s") if "event_id" in m]
    assert B not in json.dumps(old_partner_sees)
    new_partner_sees = [m for m in await published(store, offer_id("lead-s", 2))]
    assert A not in json.dumps(new_partner_sees)
    customer_notice = next(
        m
        for m in await published(store, "lead-s")
        if m.get("template") == "passed_to_another_partner"
    )
    assert customer_notice["data"]["partner_name"] == f"{B} Ltd"


async def test_the_lead_goes_on_down_the_list_never_back_and_stops_at_max_offers(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, routed("lead-m", [A, B, C, D], max_offers=3))
    await handled(service, decline("lead-m"))
    await handled(service, decline(offer_id("lead-m", 2), partner=B))
    third = await store.load(offer_id("lead-m", 3))
    assert third is not None and (third.partner_id, third.offer and third.offer.number) == (C, 3)

    await handled(service, decline(third.lead_id, partner=C))
    assert await store.load(offer_id("lead-m", 4)) is None
    assert (await events(store, third.lead_id))[-1] == "lead.unroutable"
    last = (await published(store, third.lead_id))[-3:]
    assert [m.get("reason") for m in last if m.get("type") == "lead.unroutable"] == ["max_offers"]
    assert ("lead_unroutable", "referrer") in await told(store, third.lead_id)


async def test_with_no_one_left_the_lead_is_unroutable_no_candidate(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, routed("lead-n", [B, A], max_offers=5))
    await handled(service, decline("lead-n"))
    await handled(service, decline(offer_id("lead-n", 2), partner=B))
    assert await store.load(offer_id("lead-n", 3)) is None  # never back to A
    unroutable = [m for m in await published(store, offer_id("lead-n", 2)) if "reason" in m]
    assert [m["reason"] for m in unroutable if m["type"] == "lead.unroutable"] == ["no_candidate"]


async def test_an_expired_lead_is_re_offered_with_its_own_window(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, routed("lead-e", [A, B], received_at=messages.overdue()))
    await handled(service, (Topic.COMMANDS, messages.command("lead-e", "expire")))

    second = await store.load(offer_id("lead-e", 2))
    assert second is not None and second.partner_id == B
    assert second.respond_by - second.received_at == timedelta(days=14)
    assert second.respond_by > CLOCK.now() + timedelta(days=13)
    assert await events(store, "lead-e") == ["lead.received", "lead.expired", "lead.reoffered"]


async def test_without_consent_the_lead_is_unroutable_and_the_customer_asked_to_choose(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, routed("lead-c", [A, B], consent={"contact": True}))
    await handled(service, decline("lead-c"))
    assert await store.load(offer_id("lead-c", 2)) is None
    reasons = [m.get("reason") for m in await published(store, "lead-c")]
    assert "consent_missing" in reasons
    assert ("choose_another_partner", "customer") in await told(store, "lead-c")


async def test_candidates_without_a_profile_or_outside_the_country_are_skipped(
    service: LeadService, store: InMemoryStore
) -> None:
    later = CLOCK.now() + timedelta(seconds=1)  # supersedes the profile C has
    await handled(service, profile(C, preferences={"countries": ["FR"]}, updated_at=later))
    await handled(service, routed("lead-k", [A, "partner-unknown", C, D]))
    await handled(service, decline("lead-k"))
    second = await store.load(offer_id("lead-k", 2))
    assert second is not None and second.partner_id == D


@pytest.mark.parametrize("reason", ["spam_or_abuse", "not_a_customer", "duplicate"])
async def test_a_lead_declined_as_no_real_lead_goes_nowhere(
    service: LeadService, store: InMemoryStore, reason: str
) -> None:
    await handled(service, routed("lead-x", [A, B]))
    await handled(service, decline("lead-x", reason=reason))
    assert await store.load(offer_id("lead-x", 2)) is None
    assert await events(store, "lead-x") == ["lead.received", "lead.declined"]


async def test_the_decline_delivered_again_makes_no_second_offer(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, routed("lead-d", [A, B, C]))
    declined = decline("lead-d")
    first = await handled(service, declined)
    again = await handled(service, declined, declined)
    assert [h.outcome for h in [*first.outcomes, *again.outcomes]] == [
        "applied",
        "duplicate",
        "duplicate",
    ]
    assert await store.load(offer_id("lead-d", 3)) is None
    assert (await events(store, "lead-d")).count("lead.reoffered") == 1


async def test_a_lead_declined_in_the_batch_it_arrived_in_is_re_offered(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, routed("lead-b", [A, B]), decline("lead-b"))
    second = await store.load(offer_id("lead-b", 2))
    assert second is not None and second.partner_id == B


async def test_a_lead_without_routing_ends_as_before(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, (Topic.INBOUND, messages.inbound(lead_id="lead-v1")))
    await handled(service, decline("lead-v1"))
    assert await events(store, "lead-v1") == ["lead.received", "lead.declined"]
    assert ("choose_another_partner", "customer") in await told(store, "lead-v1")


# --- duplicates -------------------------------------------------------------------------


def same_customer(lead_id: str, partner: str = A, **customer: Any) -> Record:
    fields = {
        "company_name": "Alpine Ski GmbH",
        "contact_name": "Ada",
        "email": "ada@alpine-ski.example",
        "phone": "+43 1 5551234",
        "country": "AT",
        **customer,
    }
    message = messages.inbound(lead_id=lead_id, partner_id=partner, customer=fields)
    return Topic.INBOUND, message


async def flag(store: InMemoryStore, lead_id: str) -> tuple[str, list[str]] | None:
    lead = await store.load(lead_id)
    assert lead is not None
    found = lead.possible_duplicate_of
    return (found.lead_id, [str(k) for k in found.matched_on]) if found else None


async def test_the_same_e_mail_in_another_case_flags_the_second_lead(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, same_customer("dup-1", phone=None))
    await handled(service, same_customer("dup-2", email=" ADA@Alpine-Ski.example", phone=None))
    assert await flag(store, "dup-2") == ("dup-1", ["company_domain", "email"])
    assert await flag(store, "dup-1") is None
    assert await events(store, "dup-2") == ["lead.received", "lead.duplicate_flagged"]


async def test_the_same_phone_in_another_format_flags_the_lead(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, same_customer("ph-1"))
    await handled(
        service, same_customer("ph-2", email="other@elsewhere.example", phone="01 5551234")
    )
    assert await flag(store, "ph-2") == ("ph-1", ["phone"])


async def test_two_of_one_customer_in_one_batch_are_flagged(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, same_customer("bat-1"), same_customer("bat-2"))
    assert await flag(store, "bat-2") == ("bat-1", ["company_domain", "email", "phone"])


async def test_another_partners_lead_is_never_linked(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, same_customer("own-1", partner=B))
    await handled(service, same_customer("own-2"))
    assert await flag(store, "own-2") is None


async def test_only_open_leads_within_the_window_are_compared(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, same_customer("closed-1"))
    await handled(service, decline("closed-1"))
    await handled(service, same_customer("closed-2"))
    assert await flag(store, "closed-2") is None  # the first is archived

    old = messages.inbound(
        lead_id="old-1",
        received_at=(CLOCK.now() - timedelta(days=91)).isoformat(),
        customer=same_customer("x", email="old@old-customer.example")[1]["customer"],
    )
    await handled(service, (Topic.INBOUND, old))
    await handled(service, same_customer("old-2", email="old@old-customer.example", phone=None))
    assert await flag(store, "old-2") is None  # received 91 days ago: outside the window


async def test_archiving_drops_the_match_keys(service: LeadService, store: InMemoryStore) -> None:
    await handled(service, same_customer("keys-1"))
    lead = await store.load("keys-1")
    assert lead is not None and lead.match_keys
    await handled(service, decline("keys-1"))
    archived = await store.load("keys-1")
    assert archived is not None and archived.match_keys == ()


async def test_the_same_source_lead_again_is_that_lead(
    service: LeadService, store: InMemoryStore
) -> None:
    first = messages.inbound(lead_id="src-1", source_lead_id="crm-42")
    second = messages.inbound(lead_id="src-2", source_lead_id="crm-42")
    other_referrer = messages.inbound(
        lead_id="src-3",
        source_lead_id="crm-42",
        referrer={"kind": "partner", "id": "referrer-2"},
    )
    await handled(service, (Topic.INBOUND, first))
    committed = await handled(service, (Topic.INBOUND, second), (Topic.INBOUND, other_referrer))

    assert [(h.outcome, h.reason) for h in committed.outcomes] == [
        ("rejected", "duplicate_lead"),
        ("applied", None),
    ]
    assert await store.load("src-2") is None
    [answer] = [json.loads(r.value or b"") for r in committed.rows if r.topic.endswith("rejected")]
    assert "src-1" in answer["detail"]


async def test_the_same_source_lead_twice_in_one_batch_is_one_lead(
    service: LeadService, store: InMemoryStore
) -> None:
    first = messages.inbound(lead_id="one-1", source_lead_id="crm-7")
    second = messages.inbound(lead_id="one-2", source_lead_id="crm-7")
    committed = await handled(service, (Topic.INBOUND, first), (Topic.INBOUND, second))
    assert [h.outcome for h in committed.outcomes] == ["applied", "rejected"]


async def test_declining_as_a_duplicate_names_an_own_lead_only(
    service: LeadService, store: InMemoryStore
) -> None:
    await handled(service, same_customer("mine-1"), same_customer("mine-2"))
    await handled(service, same_customer("theirs", partner=B))

    refused = await handled(
        service, act("mine-2", "decline", reason="duplicate", duplicate_of="theirs")
    )
    missing = await handled(
        service, act("mine-2", "decline", reason="duplicate", duplicate_of="no-such-lead")
    )
    assert [h.reason for h in [*refused.outcomes, *missing.outcomes]] == ["unknown_lead"] * 2
    # Another partner's lead is answered exactly as one that does not exist.
    details = {
        json.loads(row.value or b"")["detail"]
        for row in missing.rows
        if row.topic.endswith("rejected")
    }
    assert {d.replace("theirs", "X").replace("no-such-lead", "X") for d in details} == {
        f"partner {A} has no lead X"
    }

    declined = await handled(
        service, act("mine-2", "decline", reason="duplicate", duplicate_of="mine-1")
    )
    assert [h.outcome for h in declined.outcomes] == ["applied"]
    lead = await store.load("mine-2")
    assert lead is not None and lead.snapshot().duplicate_of == "mine-1"
    # The customer's request is still open with the partner: not asked to choose another.
    assert [t for t, _ in await told(store, "mine-2") if t != "new_lead"] == []


async def test_a_customer_on_many_open_leads_is_flagged_against_the_newest(
    service: LeadService, store: InMemoryStore
) -> None:
    count = 3 * PER_KEY + 5  # more than are read for the new lead's three keys
    many = []
    for n in range(count):
        received = (CLOCK.now() - timedelta(minutes=count - n)).isoformat()
        topic, message = same_customer(f"many-{n:02}")
        many.append((topic, {**message, "received_at": received}))
    await handled(service, *many)
    newest = await store.load(f"many-{count - 1:02}")
    assert newest is not None
    read = await store.lookalikes([newest.match_keys[0]])
    assert len(read) == PER_KEY and newest.lookalike() in read

    await handled(service, same_customer("many-last"))
    assert await flag(store, "many-last") == (newest.lead_id, ["company_domain", "email", "phone"])
