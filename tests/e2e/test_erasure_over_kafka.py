"""A customer's erasure end to end (`privacy.requests`): one customer with leads at
three partners, an accept held for a lead of theirs that has not come, and a lead
of theirs parked on the dead-letter topic. After one `erase_customer` their
e-mail, phone and name are in no stored document and in nothing published since;
the request sent again changes nothing, and a new lead of theirs needs their
consent, given after the erasure."""

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.topics import Topic
from services.dev_servers import Servers
from services.lifecycle.adapters.mongo import connect
from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.drivers import Outputs, ServiceProcess, Upstream, process_running, upstream_of
from tests.servers import isolated_settings

SUBSCRIBER = f"{uuid.uuid4().int % 10**8:08d}"
EMAIL = f"Ada.Lovelace@analytical-{uuid.uuid4().hex[:8]}.example"
PHONE = f"+49 30 {SUBSCRIBER[:4]} {SUBSCRIBER[4:]}"
NAME = f"Ada Lovelace-{uuid.uuid4().hex[:6]}"
"""The customer, unique to this run: found anywhere, it is a copy left behind."""
PHONE_DIGITS = re.compile(r"[ ()./-]*".join(f"30{SUBSCRIBER}"))
"""The phone's national digits however written: +49 30 …, 0049-30-…, 030 …"""
COMPANY = "Analytical Engines"
LEADS = 3


def customer(**overrides: Any) -> dict[str, Any]:
    return {
        "company_name": COMPANY,
        "contact_name": NAME,
        "email": EMAIL,
        "phone": PHONE,
        "country": "DE",
        "company_size": "50-249",
        **overrides,
    }


def found_in(text: str) -> list[str]:
    """What of the customer's data a text holds."""
    lowered = text.lower()
    return [
        what
        for what, held in (
            ("email", EMAIL.lower() in lowered),
            ("phone", PHONE_DIGITS.search(text) is not None),
            ("name", NAME.lower() in lowered),
        )
        if held
    ]


def as_text(value: Any) -> str:
    """Every key and value of a document as text, bytes (BSON binary too) decoded as
    UTF-8 as far as they go."""
    if isinstance(value, dict):
        return "\n".join(f"{as_text(k)}\n{as_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "\n".join(as_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="ignore")
    return str(value)


def record_text(record: Any) -> str:
    return as_text([record.key or b"", record.value or b"", list(record.headers or ())])


async def copies_in_store(settings: Settings) -> dict[str, list[str]]:
    """Per collection of the service's database, the documents holding the
    customer's data, and what of it."""
    client = connect(settings.mongodb_uri)
    try:
        db = client[settings.mongodb_database]
        copies: dict[str, list[str]] = {}
        for name in sorted(await db.list_collection_names()):
            async for document in db[name].find():
                if found := found_in(as_text(document)):
                    copies.setdefault(name, []).append(f"{document['_id']}: {found}")
        return copies
    finally:
        await client.close()


async def stored(settings: Settings, collection: str, query: dict[str, Any]) -> list[Any]:
    client = connect(settings.mongodb_uri)
    try:
        return await client[settings.mongodb_database][collection].find(query).to_list()
    finally:
        await client.close()


async def until_held(settings: Settings, lead_id: str, timeout: float = 30.0) -> None:
    """A held action publishes nothing to wait on: the store shows it."""
    deadline = time.monotonic() + timeout
    while not await stored(settings, "held_actions", {"lead_id": lead_id}):
        assert time.monotonic() < deadline, f"no action held for {lead_id}"
        await asyncio.sleep(0.1)


def value(record: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(record.value)
    return parsed


def on(topic: Topic, records: list[Any]) -> list[Any]:
    return [r for r in records if r.topic.endswith(topic.value)]


def completions(outputs: Outputs, request_id: str) -> list[Any]:
    records = on(Topic.PRIVACY_OUTCOMES, outputs.records)
    return [r for r in records if value(r)["request_id"] == request_id]


def erasures_of(outputs: Outputs, lead_id: str) -> list[dict[str, Any]]:
    return [e for e in outputs.events(lead_id) if e["type"] == "lead.customer_erased"]


def erase_customer(request_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "request": "erase_customer",
        "message_id": messages.new_id("e"),
        "request_id": request_id,
        "requested_at": datetime.now(UTC).isoformat(),
        **fields,
    }


@dataclass
class Erased:
    """The scenario, as it stood right after the erasure completed."""

    request: dict[str, Any]
    leads: dict[str, str]
    """Each lead's partner."""
    accepted: str
    completed: Any
    copies_before: dict[str, list[str]]
    copies_after: dict[str, list[str]]
    held_lead: str
    held_after: list[dict[str, Any]]
    published_after: list[Any]


@pytest.fixture(scope="module")
def service(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The service with its test fault armed: a lead whose id starts `poison-` is
    parked after quick retries. Actions wait for their lead long enough for the
    test to send it after the erasure (no scheduler runs to refuse them anyway)."""
    settings = isolated_settings(servers, "erase").model_copy(
        update={
            "retry_max_backoff": timedelta(seconds=0.2),
            "early_action_grace": timedelta(minutes=10),
        }
    )
    poison_file = tmp_path_factory.mktemp("erasure") / "poison"
    poison_file.touch()
    env = {"LEADS_TEST_POISON_FILE": str(poison_file)}
    with process_running(ServiceProcess(settings, module="tests.e2e.faults", env=env)) as running:
        yield running


@pytest.fixture(scope="module")
async def client(service: ServiceProcess) -> AsyncIterator[Upstream]:
    async with upstream_of(service) as upstream:
        yield upstream


@pytest.fixture(scope="module")
async def erased(client: Upstream) -> Erased:
    settings = client.settings
    third = messages.new_id("partner")
    await client.profile(messages.profile(third))
    # One customer written three ways: as the request names them, upper case with
    # dashes, and national (read as the lead's country's).
    sent = [
        messages.inbound(partner_id=messages.PARTNER, customer=customer()),
        messages.inbound(
            partner_id="partner-2",
            customer=customer(email=EMAIL.upper(), phone=PHONE.replace(" ", "-")),
        ),
        messages.inbound(partner_id=third, customer=customer(phone=f"030 {SUBSCRIBER}")),
    ]
    for lead in sent:
        await client.send(Topic.INBOUND, lead)
    leads = {str(lead["lead_id"]): str(lead["partner_id"]) for lead in sent}
    await client.until(
        lambda o: all("lead.received" in o.event_types(i) for i in leads), what="the leads in"
    )
    accepted = str(sent[0]["lead_id"])
    await client.send(Topic.PARTNER_ACTIONS, messages.action(accepted, "accept"))
    await client.until(lambda o: "lead.accepted" in o.event_types(accepted), what="accepted")

    # An accept for a lead that has not come, the customer its contact and in its notes.
    held_lead = messages.new_id("lead")
    deal = {**messages.DEAL, "notes": f"Call {EMAIL} or {PHONE} before the pilot"}
    contact = {"name": NAME, "email": EMAIL, "phone": PHONE}
    await client.send(
        Topic.PARTNER_ACTIONS, messages.action(held_lead, "accept", deal=deal, contacts=[contact])
    )
    poison = messages.inbound(lead_id=f"poison-{uuid.uuid4().hex[:8]}", customer=customer())
    await client.send(Topic.INBOUND, poison)
    await client.until(lambda o: bool(o.rejections(poison["message_id"])), what="poison parked")
    await until_held(settings, held_lead)

    copies_before = await copies_in_store(settings)
    before = {(r.topic, r.partition, r.offset) for r in (await client.settled()).records}

    request = erase_customer(messages.new_id("erasure"), email=EMAIL.lower(), phone=PHONE)
    await client.send(Topic.PRIVACY_REQUESTS, request, key=request["request_id"])
    outputs = await client.until(
        lambda o: bool(completions(o, request["request_id"])), what="the erasure completed"
    )
    [completed] = completions(outputs, request["request_id"])
    copies_after = await copies_in_store(settings)
    held_after = await stored(settings, "held_actions", {"lead_id": held_lead})
    published_after = [
        r
        for r in (await client.settled()).records
        if (r.topic, r.partition, r.offset) not in before
    ]
    return Erased(
        request,
        leads,
        accepted,
        completed,
        copies_before,
        copies_after,
        held_lead,
        held_after,
        published_after,
    )


async def test_every_lead_of_the_customer_at_every_partner_is_erased(
    erased: Erased, client: Upstream
) -> None:
    request_id = erased.request["request_id"]
    answer = value(erased.completed)
    assert (answer["type"], answer["leads"], answer["partners"]) == (
        "privacy.erasure_completed",
        LEADS,
        LEADS,
    )
    assert erased.completed.key == request_id.encode()
    requested_at = datetime.fromisoformat(erased.request["requested_at"])
    # The store keeps milliseconds.
    assert abs(datetime.fromisoformat(answer["requested_at"]) - requested_at) < timedelta(
        milliseconds=1
    )
    assert datetime.fromisoformat(answer["completed_at"]) >= requested_at

    outputs = await client.settled()
    for lead_id, partner in erased.leads.items():
        [event] = erasures_of(outputs, lead_id)
        assert event["request_id"] == request_id
        state = [s for s in outputs.values(Topic.STATE) if s["lead_id"] == lead_id][-1]
        assert state["version"] == event["version"]
        detail = (await client.api.get(f"/v1/leads/{lead_id}", partner)).json()
        for view in (state["customer"], detail["customer"]):
            assert (view["contact_name"], view["email"], view["phone"]) == (None, None, None)
            assert view["company_name"] == COMPANY  # the business is not the person
    deal = (await client.api.get(f"/v1/leads/{erased.accepted}")).json()
    assert (deal["stage"], deal["deal"]["notes"]) == ("accepted", messages.DEAL["notes"])

    [proof] = await stored(client.settings, "erasures", {"_id": request_id})
    assert (len(proof["lead_ids"]), len(proof["partner_ids"])) == (LEADS, LEADS)
    assert sorted(proof["lead_ids"]) == sorted(erased.leads)


async def test_no_stored_document_holds_the_customer_any_more(erased: Erased) -> None:
    # Each kind of copy was there before: the scan finds them where they are.
    for where in ("leads", "held_actions", "dead_letters", "outbox"):
        assert where in erased.copies_before, f"nothing in {where}: {erased.copies_before}"
    assert erased.copies_after == {}
    [held] = erased.held_after  # still waiting for its lead, without the customer
    assert held["action"]["deal"]["name"] == messages.DEAL["name"]


async def test_nothing_published_since_the_request_names_the_customer(erased: Erased) -> None:
    events = [value(r)["type"] for r in on(Topic.EVENTS, erased.published_after)]
    assert events.count("lead.customer_erased") == LEADS
    assert len(on(Topic.STATE, erased.published_after)) >= LEADS
    leaked = {
        f"{r.topic}[{r.partition}]@{r.offset}": found
        for r in erased.published_after
        if (found := found_in(record_text(r)))
    }
    assert leaked == {}


async def test_the_request_sent_again_is_answered_the_same_and_erases_nothing_more(
    erased: Erased, client: Upstream
) -> None:
    request_id = erased.request["request_id"]
    again = {**erased.request, "message_id": messages.new_id("e")}
    await client.send(Topic.PRIVACY_REQUESTS, again, key=request_id)
    await client.until(lambda o: len(completions(o, request_id)) > 1, what="answered again")
    # Another request for the customer: nothing of theirs is left to erase.
    later = erase_customer(messages.new_id("erasure"), email=EMAIL, phone=PHONE)
    await client.send(Topic.PRIVACY_REQUESTS, later, key=later["request_id"])
    await client.until(lambda o: bool(completions(o, later["request_id"])), what="answered")

    outputs = await client.settled()
    first, *answered_again = completions(outputs, request_id)
    for answer in answered_again:  # under the same id, with the same counts and times
        assert dict(answer.headers)["ce_id"] == dict(first.headers)["ce_id"]
        assert value(answer) == value(first)
    for lead_id in erased.leads:
        assert len({e["event_id"] for e in erasures_of(outputs, lead_id)}) == 1
    [nothing_left] = completions(outputs, later["request_id"])
    assert (value(nothing_left)["leads"], value(nothing_left)["partners"]) == (0, 0)


async def test_a_new_lead_of_the_customer_needs_their_consent_given_after_the_erasure(
    erased: Erased, client: Upstream
) -> None:
    # After the requests above: the consented lead holds the customer's data again.
    another = messages.new_id("partner")
    await client.profile(messages.profile(another))
    before_erasure = datetime.fromisoformat(erased.request["requested_at"]) - timedelta(days=1)
    refused = [
        messages.inbound(
            partner_id=another, customer=customer(email=EMAIL.lower(), phone="+49 89 1234567")
        ),
        messages.inbound(
            partner_id=another,
            customer=customer(),
            consent={"contact": True, "given_at": before_erasure.isoformat()},
        ),
    ]
    for lead in refused:
        await client.send(Topic.INBOUND, lead)
    outputs = await client.until(
        lambda o: all(o.rejections(lead["message_id"]) for lead in refused), what="refused"
    )
    for lead in refused:
        [rejection] = outputs.rejections(lead["message_id"])
        assert (rejection["reason"], rejection["lead_id"]) == ("erased_subject", lead["lead_id"])
        assert found_in(json.dumps(rejection)) == []
        assert outputs.event_types(lead["lead_id"]) == []

    consented = messages.inbound(
        partner_id=another,
        customer=customer(),
        consent={"contact": True, "given_at": datetime.now(UTC).isoformat()},
    )
    await client.send(Topic.INBOUND, consented)
    outputs = await client.until(
        lambda o: (
            "lead.received" in o.event_types(consented["lead_id"])
            or bool(o.rejections(consented["message_id"]))
        ),
        what="the consented lead answered",
    )
    assert outputs.rejections(consented["message_id"]) == []


async def test_the_lead_an_action_was_held_for_still_arrives_after_the_erasure(
    erased: Erased, client: Upstream, service: ServiceProcess
) -> None:
    # The held accept lost the customer's contact data: applied now, or refused, it
    # must not take its lead down with it.
    lead = messages.inbound(lead_id=erased.held_lead, partner_id=messages.PARTNER)
    await client.send(Topic.INBOUND, lead)
    outputs = await client.until(
        lambda o: bool(o.event_types(erased.held_lead) or o.rejections(lead["message_id"])),
        what="the held lead answered",
    )
    errors = [line for line in service.lines if '"level": "ERROR"' in line]
    assert outputs.rejections(lead["message_id"]) == [], errors[-1:]
    assert outputs.event_types(erased.held_lead)[0] == "lead.received"
