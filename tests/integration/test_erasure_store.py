"""A customer's erasure on a real MongoDB store: every lead of theirs at every
partner and every other copy the service keeps (held actions, dead letters, outbox
rows) lose their data; the request is answered once, its proof kept; a new lead of
theirs needs fresh consent."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.topics import EventType, Reason, Topic
from services.lifecycle.adapters.mongo import COLLECTIONS, MongoStore
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.service_layer.erasure import ErasureService
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.ports import OutboxRow
from tests import messages
from tests.integration.stored import outbox_rows
from tests.store_contract import SUBJECT_KEYS, consent_given_after

EMAIL, PHONE = "Ada.Lovelace@analytical.example", "+44 20 7946 0958"


def customer(**fields: str) -> dict[str, Any]:
    base = {"company_name": "Analytical", "contact_name": "Ada Lovelace", "country": "GB"}
    return {**base, "email": EMAIL, "phone": PHONE, **fields}


def erase_request(request_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "message_id": messages.new_id("e"),
        "request_id": request_id,
        "requested_at": datetime.now(UTC).isoformat(),
        **fields,
    }


@pytest.fixture
async def leads(store: MongoStore, clock: Clock) -> LeadService:
    """The lead service, keeping customers' keys, with the test partner's profile."""
    leads = LeadService(store, clock, Windows(), subject_keys=SUBJECT_KEYS)
    await leads.decide_and_commit_one(messages.delivery(Topic.PROFILES, messages.profile()))
    return leads


@pytest.fixture
def erasures(store: MongoStore, clock: Clock) -> ErasureService:
    return ErasureService(store, clock, SUBJECT_KEYS)


async def documents_holding(store: MongoStore, *texts: str) -> list[str]:
    """Where in the database any of the texts is still found (any case)."""
    found = []
    for name in COLLECTIONS:
        async for document in store.database[name].find():
            dumped = json.dumps(document, default=_readable).casefold()
            found += [f"{name}/{document['_id']}" for t in texts if t.casefold() in dumped]
    return found


def _readable(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def test_an_erasure_reaches_every_lead_and_copy_and_is_answered_once(
    store: MongoStore, clock: Clock, leads: LeadService
) -> None:
    erasures = ErasureService(store, clock, SUBJECT_KEYS, page_size=2)  # two pages
    partners = [messages.new_id("partner") for _ in range(3)]
    for partner in partners:
        await leads.decide_and_commit_one(
            messages.delivery(Topic.PROFILES, messages.profile(partner))
        )
    # One customer at three partners, written three ways; another customer untouched.
    sent = [
        messages.inbound(partner_id=p, customer=customer(email=e))
        for p, e in zip(partners, (EMAIL, EMAIL.upper(), EMAIL.lower()), strict=True)
    ]
    other = messages.inbound(partner_id=partners[0])
    for lead in (*sent, other):
        await leads.decide_and_commit_one(messages.delivery(Topic.INBOUND, lead))
    notes = f"Spoke to Ada Lovelace, {EMAIL}"
    deal = {**messages.DEAL, "notes": notes}
    early = messages.action(messages.new_id("lead"), "accept", partner_id=partners[0], deal=deal)
    held = await leads.decide_and_commit_one(messages.delivery(Topic.PARTNER_ACTIONS, early))
    assert held.outcome == "held"  # its lead has not come yet
    parked = messages.delivery(Topic.INBOUND, messages.inbound(customer=customer()))
    await leads.park(parked, RuntimeError("kept failing"))
    assert await documents_holding(store, EMAIL)  # the copies are there to erase

    handled = await erasures.decide_and_commit(
        [messages.delivery(Topic.PRIVACY_REQUESTS, erase_request("req-1", email=EMAIL.upper()))]
    )

    assert [h.outcome for h in handled.outcomes] == ["applied"]
    assert await documents_holding(store, EMAIL, "7946 0958", "Ada Lovelace") == []
    ids = [lead["lead_id"] for lead in sent]
    stored = await store.load_many([*ids, other["lead_id"]])
    assert all(stored[i].customer.email is None and stored[i].version == 2 for i in ids)
    assert stored[other["lead_id"]].customer.email == other["customer"]["email"]
    erased_type = EventType.CUSTOMER_ERASED.encode()
    erased_events = [
        json.loads(r.value or b"")
        for r in await outbox_rows(store)
        if on(Topic.EVENTS, r) and dict(r.headers).get("ce_type") == erased_type
    ]
    assert sorted(e["lead_id"] for e in erased_events) == sorted(ids)
    assert {e["request_id"] for e in erased_events} == {"req-1"}
    answers = await completions(store)
    assert [(a["leads"], a["partners"]) for a in answers] == [(3, 3)]

    # The same request again: answered again, alike; nothing else changes.
    again = erase_request("req-1", email=EMAIL)
    await erasures.decide_and_commit([messages.delivery(Topic.PRIVACY_REQUESTS, again)])
    assert {a["leads"] for a in await completions(store)} == {3}
    assert [lead.version for lead in (await store.load_many(ids)).values()] == [2, 2, 2]
    proof = await store.database["erasures"].find_one({"_id": "req-1"})
    assert proof is not None and (len(proof["lead_ids"]), len(proof["partner_ids"])) == (3, 3)


async def test_a_new_lead_of_an_erased_customer_needs_consent_given_after_it(
    store: MongoStore, leads: LeadService, erasures: ErasureService
) -> None:
    phone_only = messages.new_id("req")
    request = erase_request(phone_only, phone="+442079460958")
    await erasures.decide_and_commit([messages.delivery(Topic.PRIVACY_REQUESTS, request)])

    refused = await leads.decide_and_commit_one(
        messages.delivery(Topic.INBOUND, messages.inbound(customer=customer(email="x@y.example")))
    )
    proof = await store.erasure(phone_only)
    assert proof is not None
    consent = await consent_given_after(proof.erased_at)
    consented = messages.inbound(customer=customer(email="x@y.example"), consent=consent)
    taken = await leads.decide_and_commit_one(messages.delivery(Topic.INBOUND, consented))

    assert (refused.outcome, refused.reason) == ("rejected", Reason.ERASED_SUBJECT)
    assert taken.outcome == "applied"


async def test_a_request_without_an_international_phone_is_refused_without_quoting_it(
    store: MongoStore, erasures: ErasureService
) -> None:
    request = erase_request(messages.new_id("req"), phone="020 7946 0958")
    handled = await erasures.decide_and_commit([messages.delivery(Topic.PRIVACY_REQUESTS, request)])
    rejected = [r for r in await outbox_rows(store) if on(Topic.REJECTED, r)]
    assert (handled.outcomes[0].outcome, handled.outcomes[0].reason) == ("rejected", "malformed")
    assert len(rejected) == 1 and b"7946" not in (rejected[0].value or b"")


def on(topic: Topic, row: OutboxRow) -> bool:
    return row.topic.endswith(topic.value)  # after the deployment's prefix


async def completions(store: MongoStore) -> list[dict[str, Any]]:
    rows = await outbox_rows(store)
    return [json.loads(r.value or b"") for r in rows if on(Topic.PRIVACY_OUTCOMES, r)]


async def test_a_reopen_cannot_bring_an_erased_customer_back(
    store: MongoStore, leads: LeadService, erasures: ErasureService
) -> None:
    lead = messages.inbound(customer=customer())
    await leads.decide_and_commit_one(messages.delivery(Topic.INBOUND, lead))
    decline = messages.action(lead["lead_id"], "decline")
    await leads.decide_and_commit_one(messages.delivery(Topic.PARTNER_ACTIONS, decline))
    request = erase_request(messages.new_id("req"), email=EMAIL)
    await erasures.decide_and_commit([messages.delivery(Topic.PRIVACY_REQUESTS, request)])
    # Declined, its contact data was gone already: it is reached all the same, and
    # what was published of it before is redacted.
    assert (await completions(store))[0]["leads"] == 1
    assert await documents_holding(store, EMAIL) == []

    with_customer = messages.reopen(lead["lead_id"], customer=customer())
    refused = await leads.decide_and_commit_one(messages.delivery(Topic.INBOUND, with_customer))
    without = await leads.decide_and_commit_one(
        messages.delivery(Topic.INBOUND, messages.reopen(lead["lead_id"]))
    )

    assert (refused.outcome, refused.reason) == ("rejected", Reason.ERASED_SUBJECT)
    assert without.outcome == "applied"  # its contact data stays erased


async def test_a_lead_stored_before_leads_kept_keys_is_found_once_backfilled(
    store: MongoStore, leads: LeadService, erasures: ErasureService
) -> None:
    old, named = (messages.inbound(customer=customer()) for _ in range(2))
    for lead in (old, named):
        await leads.decide_and_commit_one(messages.delivery(Topic.INBOUND, lead))
    stored_before = {"_id": {"$in": [old["lead_id"], named["lead_id"]]}}
    await store.database["leads"].update_many(stored_before, {"$unset": {"subject_keys": ""}})

    by_id = erase_request(messages.new_id("req"), lead_id=named["lead_id"])
    await erasures.decide_and_commit([messages.delivery(Topic.PRIVACY_REQUESTS, by_id)])
    after_named = await store.load_many([old["lead_id"], named["lead_id"]])
    assert await store.backfill_subject_keys() == 1  # the other; the named one has them
    by_email = erase_request(messages.new_id("req"), email=EMAIL)
    await erasures.decide_and_commit([messages.delivery(Topic.PRIVACY_REQUESTS, by_email)])

    assert after_named[named["lead_id"]].customer.email is None
    assert after_named[old["lead_id"]].customer.email == EMAIL  # unseen without its keys
    assert (await store.load_many([old["lead_id"]]))[old["lead_id"]].customer.email is None
    assert await store.backfill_subject_keys() == 0


async def test_a_request_naming_only_an_unknown_lead_is_refused(
    store: MongoStore, erasures: ErasureService
) -> None:
    request = erase_request(messages.new_id("req"), lead_id="no-such-lead")
    handled = await erasures.decide_and_commit([messages.delivery(Topic.PRIVACY_REQUESTS, request)])
    assert (handled.outcomes[0].outcome, handled.outcomes[0].reason) == (
        "rejected",
        Reason.UNKNOWN_LEAD,
    )
    assert await completions(store) == []  # no answer claims an erasure
