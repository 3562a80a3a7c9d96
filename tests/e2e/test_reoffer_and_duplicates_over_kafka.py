"""A lead's journey past several partners, and two leads of one customer, through
the running service on Kafka and MongoDB."""

from collections.abc import Callable
from typing import Any

from contracts.topics import Topic
from services.lifecycle.domain.reoffer import offer_id
from tests import messages
from tests.e2e.drivers import Outputs, Upstream

SHARED = {"contact": True, "share_with_other_partners": True}


async def partners(upstream: Upstream, count: int) -> list[str]:
    """Partners of this test's own, each with a profile serving Germany."""
    found = [messages.new_id("partner") for _ in range(count)]
    for partner in found:
        await upstream.profile(messages.profile(partner))
    return found


async def sent(upstream: Upstream, partner: str, **fields: Any) -> str:
    lead = messages.inbound(partner_id=partner, **fields)
    await upstream.send(Topic.INBOUND, lead)
    await upstream.until(
        lambda o: "lead.received" in o.event_types(lead["lead_id"]), what="lead.received"
    )
    return str(lead["lead_id"])


def decline(lead_id: str, partner: str, **fields: Any) -> dict[str, Any]:
    return messages.action(lead_id, "decline", partner_id=partner, **fields)


def has_events(lead_id: str) -> Callable[[Outputs], bool]:
    return lambda outputs: bool(outputs.events(lead_id))


def refused(message_id: str) -> Callable[[Outputs], bool]:
    return lambda outputs: bool(outputs.rejections(message_id))


def reasons(outputs: Outputs, lead_id: str) -> list[str]:
    return [e["reason"] for e in outputs.events(lead_id) if e["type"] == "lead.unroutable"]


async def test_declined_leads_go_down_the_list_never_back_and_stop_at_max_offers(
    upstream: Upstream,
) -> None:
    a, b, c, d = await partners(upstream, 4)
    first = await sent(
        upstream, a, consent=SHARED, routing={"candidates": [b, a, c, d], "max_offers": 3}
    )
    chain = [first, offer_id(first, 2), offer_id(first, 3)]
    for lead_id, partner, next_id in zip(chain, (a, b, c), [*chain[1:], None], strict=True):
        the_decline = decline(lead_id, partner)
        await upstream.send(Topic.PARTNER_ACTIONS, the_decline)
        if next_id is not None:
            await upstream.until(has_events(next_id), what=next_id)
        # Delivered again: no second offer. An action behind it on the same partition,
        # refused as the lead is archived, tells that it was handled.
        await upstream.send(Topic.PARTNER_ACTIONS, the_decline)
        behind = messages.action(lead_id, "favorite", partner_id=partner)
        await upstream.send(Topic.PARTNER_ACTIONS, behind)
        await upstream.until(refused(behind["message_id"]), what="the action behind it")

    outputs = await upstream.until(lambda o: bool(reasons(o, chain[-1])), what="unroutable")
    assert reasons(outputs, chain[-1]) == ["max_offers"]
    outputs = await upstream.settled()
    assert [outputs.events(i)[0]["partner_id"] for i in chain] == [a, b, c]
    offers = [outputs.events(i)[0]["lead"]["offer"] for i in chain]
    assert offers == [{"number": n, "of": 3} for n in (1, 2, 3)]
    for lead_id in chain[:2]:
        assert outputs.event_types(lead_id).count("lead.reoffered") == 1
        templates = [n["template"] for n in outputs.notifications(lead_id)]
        assert "passed_to_another_partner" in templates
        assert "choose_another_partner" not in templates
    assert not [e for e in outputs.values(Topic.EVENTS) if e["partner_id"] == d]
    # What the second partner saw never names the first.
    assert a not in str(outputs.events(chain[1])) + str(outputs.notifications(chain[1]))


async def test_an_expired_lead_is_offered_to_the_next_candidate(upstream: Upstream) -> None:
    a, b = await partners(upstream, 2)
    first = await sent(
        upstream,
        a,
        received_at=messages.overdue(),
        consent=SHARED,
        routing={"candidates": [b]},
    )
    await upstream.send(Topic.COMMANDS, messages.command(first, "expire"))
    outputs = await upstream.until(
        lambda o: "lead.received" in o.event_types(offer_id(first, 2)), what="the second offer"
    )
    assert outputs.event_types(first)[-2:] == ["lead.expired", "lead.reoffered"]
    assert outputs.events(offer_id(first, 2))[0]["partner_id"] == b


async def test_without_consent_the_lead_is_unroutable(upstream: Upstream) -> None:
    a, b = await partners(upstream, 2)
    first = await sent(upstream, a, routing={"candidates": [b]})
    await upstream.send(Topic.PARTNER_ACTIONS, decline(first, a))
    outputs = await upstream.until(lambda o: bool(reasons(o, first)), what="unroutable")
    assert reasons(outputs, first) == ["consent_missing"]
    templates = [n["template"] for n in outputs.notifications(first)]
    assert {"lead_unroutable", "choose_another_partner"} <= set(templates)


async def test_a_second_lead_of_one_customer_is_flagged_and_declined_as_its_duplicate(
    upstream: Upstream,
) -> None:
    [partner] = await partners(upstream, 1)
    customer = {**messages.inbound()["customer"], "phone": "+49 30 9876543"}
    first = await sent(upstream, partner, customer=customer)
    again = {**customer, "email": customer["email"].upper(), "phone": "030 98765-43"}
    second = await sent(upstream, partner, customer=again)

    outputs = await upstream.until(
        lambda o: "lead.duplicate_flagged" in o.event_types(second), what="the flag"
    )
    flagged = outputs.events(second)[-1]["lead"]["possible_duplicate_of"]
    assert flagged == {"lead_id": first, "matched_on": ["company_domain", "email", "phone"]}
    response = await upstream.api.get(f"/v1/leads/{second}", partner)
    assert response.json()["possible_duplicate_of"]["lead_id"] == first

    await upstream.send(
        Topic.PARTNER_ACTIONS, decline(second, partner, reason="duplicate", duplicate_of=first)
    )
    outputs = await upstream.until(
        lambda o: "lead.declined" in o.event_types(second), what="the decline"
    )
    declined = outputs.events(second)[-1]["lead"]
    assert (declined["decline_reason"], declined["duplicate_of"]) == ("duplicate", first)


async def test_another_partners_lead_of_the_same_customer_is_never_linked(
    upstream: Upstream,
) -> None:
    mine, theirs = await partners(upstream, 2)
    customer = messages.inbound()["customer"]
    await sent(upstream, theirs, customer=customer)
    own = await sent(upstream, mine, customer=customer)
    outputs = await upstream.settled()
    assert outputs.event_types(own) == ["lead.received"]
    assert outputs.events(own)[0]["lead"]["possible_duplicate_of"] is None
