"""A lead's whole life, as upstream systems and partners see it: only Kafka topics."""

import time
from datetime import timedelta
from typing import Any

from contracts.topics import Topic
from tests import messages
from tests.e2e.drivers import Outputs, ServiceProcess, Upstream, scheduler_running


async def received(upstream: Upstream, **overrides: Any) -> str:
    lead = messages.inbound(**overrides)
    await upstream.send(Topic.INBOUND, lead)
    await upstream.until(
        lambda o: "lead.received" in o.event_types(lead["lead_id"]), what="lead.received"
    )
    return str(lead["lead_id"])


async def test_accept_update_add_contacts_won(upstream: Upstream) -> None:
    lead_id = await received(upstream)
    contacts = [{"name": "Max", "email": "max@contoso.example"}]
    steps = [
        messages.action(lead_id, "accept"),
        messages.action(
            lead_id, "update", changes={"value": {"amount": "99000", "currency": "USD"}}
        ),
        messages.action(lead_id, "add_contacts", contacts=contacts),
        messages.action(lead_id, "won", notes="Signed"),
    ]
    for step in steps:
        await upstream.send(Topic.PARTNER_ACTIONS, step)
    outputs = await upstream.until(lambda o: "lead.won" in o.event_types(lead_id), what="lead.won")
    events = outputs.events(lead_id)
    assert [e["type"] for e in events] == [
        "lead.received",
        "lead.accepted",
        "lead.updated",
        "lead.contacts_added",
        "lead.won",
    ]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["causation_id"] for e in events[1:]] == [s["message_id"] for s in steps]
    final = events[-1]["lead"]
    assert (final["stage"], final["outcome"]) == ("archived", "won")
    assert final["deal"]["value"] == {"amount": "99000", "currency": "USD"}
    assert [c["email"] for c in final["contacts"]] == ["max@contoso.example"]
    assert [n["template"] for n in outputs.notifications(lead_id)] == ["new_lead"]


async def test_decline_tells_the_customer_and_erases_contact_data(upstream: Upstream) -> None:
    customer = {**messages.inbound()["customer"], "email": "grace@fabrikam.example"}
    lead_id = await received(upstream, lead_type="marketing_qualified", customer=customer)
    await upstream.send(
        Topic.PARTNER_ACTIONS, messages.action(lead_id, "decline", reason="not_a_customer")
    )
    outputs = await upstream.until(
        lambda o: any(n["template"] == "choose_another_partner" for n in o.notifications(lead_id)),
        what="choose_another_partner",
    )
    declined = outputs.events(lead_id)[-1]
    assert declined["type"] == "lead.declined"
    customer = declined["lead"]["customer"]
    assert (customer["contact_name"], customer["email"], customer["phone"]) == (None, None, None)
    assert (customer["company_name"], customer["country"]) == ("Fabrikam", "DE")
    assert declined["lead"]["decline_reason"] == "not_a_customer"
    notice = next(
        n for n in outputs.notifications(lead_id) if n["template"] == "choose_another_partner"
    )
    assert notice["recipient"] == {
        "kind": "customer",
        "id": None,
        "email": "grace@fabrikam.example",
        "name": None,
        "role": None,
    }


async def test_expire_after_the_deadline_tells_the_referrer(upstream: Upstream) -> None:
    lead_id = await received(upstream, received_at=messages.overdue())
    await upstream.send(Topic.COMMANDS, messages.command(lead_id, "expire"))
    outputs = await upstream.until(
        lambda o: "lead.expired" in o.event_types(lead_id), what="lead.expired"
    )
    expired = outputs.events(lead_id)[-1]["lead"]
    assert (expired["stage"], expired["outcome"], expired["customer"]["email"]) == (
        "archived",
        "expired",
        None,
    )
    [told] = [n for n in outputs.notifications(lead_id) if n["template"] == "lead_expired"]
    assert told["recipient"]["kind"] == "referrer" and told["recipient"]["id"] == "ms-1"


async def test_expire_before_the_deadline_does_nothing(upstream: Upstream) -> None:
    lead_id = await received(upstream)
    await upstream.send(Topic.COMMANDS, messages.command(lead_id, "expire"))
    # A reminder on the same key lands after the early expiry on the same partition.
    await upstream.send(Topic.COMMANDS, messages.command(lead_id, "remind"))
    outputs = await upstream.until(
        lambda o: any(n["template"] == "expiry_reminder" for n in o.notifications(lead_id)),
        what="expiry_reminder",
    )
    assert outputs.event_types(lead_id) == ["lead.received"]


async def test_the_same_message_twice_has_one_effect(upstream: Upstream) -> None:
    lead = messages.inbound()
    lead_id = lead["lead_id"]
    await upstream.send(Topic.INBOUND, lead)
    await upstream.send(Topic.INBOUND, lead)
    accept = messages.action(lead_id, "accept")
    await upstream.until(lambda o: "lead.received" in o.event_types(lead_id))
    await upstream.send(Topic.PARTNER_ACTIONS, accept)
    await upstream.send(Topic.PARTNER_ACTIONS, accept)
    await upstream.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "favorite"))
    outputs = await upstream.until(lambda o: "lead.favorited" in o.event_types(lead_id))
    assert outputs.event_types(lead_id) == ["lead.received", "lead.accepted", "lead.favorited"]
    assert len(outputs.notifications(lead_id)) == 1
    assert outputs.rejections(accept["message_id"]) == []


async def test_same_lead_id_with_other_content_is_refused(upstream: Upstream) -> None:
    lead_id = await received(upstream)
    clash = messages.inbound(lead_id=lead_id, need="A different need")
    await upstream.send(Topic.INBOUND, clash)
    outputs = await upstream.until(lambda o: bool(o.rejections(clash["message_id"])))
    assert outputs.rejections(clash["message_id"])[0]["reason"] == "duplicate_lead"


async def test_malformed_json_is_answered_and_the_consumer_keeps_going(upstream: Upstream) -> None:
    await upstream.send(Topic.PARTNER_ACTIONS, b'{"action": "accept", oops', key="whatever")
    lead_id = await received(upstream)  # the next message is still handled
    outputs = await upstream.until(
        lambda o: any("not UTF-8 JSON" in r["detail"] for r in o.values(Topic.REJECTED))
    )
    [rejected] = [r for r in outputs.values(Topic.REJECTED) if "not UTF-8 JSON" in r["detail"]]
    assert rejected["reason"] == "malformed"
    assert rejected["source_topic"].endswith("leads.partner-actions")
    assert "lead.received" in outputs.event_types(lead_id)


async def test_schema_invalid_message_is_answered_without_personal_data(upstream: Upstream) -> None:
    bad = messages.inbound()
    bad["customer"]["email"] = "grace-at-fabrikam"
    await upstream.send(Topic.INBOUND, bad)
    outputs = await upstream.until(lambda o: bool(o.rejections(bad["message_id"])))
    [rejected] = outputs.rejections(bad["message_id"])
    assert (rejected["reason"], rejected["lead_id"]) == ("malformed", bad["lead_id"])
    assert "customer.email" in rejected["detail"]
    assert "grace" not in rejected["detail"].lower()
    assert outputs.events(bad["lead_id"]) == []


async def test_an_action_before_its_lead_waits_for_it_and_is_applied_in_order(
    upstream: Upstream,
) -> None:
    lead = messages.inbound()
    accept = messages.action(lead["lead_id"], "accept")
    won = messages.action(lead["lead_id"], "won")
    await upstream.send(Topic.PARTNER_ACTIONS, accept)
    await upstream.send(Topic.PARTNER_ACTIONS, won)
    await upstream.send(Topic.INBOUND, lead)
    outputs = await upstream.until(
        lambda o: "lead.won" in o.event_types(lead["lead_id"]), what="lead.won"
    )
    events = outputs.events(lead["lead_id"])
    assert [e["type"] for e in events] == ["lead.received", "lead.accepted", "lead.won"]
    assert [e["causation_id"] for e in events[1:]] == [accept["message_id"], won["message_id"]]
    assert outputs.rejections(accept["message_id"]) == outputs.rejections(won["message_id"]) == []


async def test_another_partners_lead_is_answered_like_no_lead_when_the_grace_ends(
    running_service: ServiceProcess, upstream: Upstream
) -> None:
    lead_id = await received(upstream)
    snoop = messages.action(lead_id, "decline", partner_id="partner-2")
    nothing = messages.action(messages.new_id("lead"), "decline", partner_id="partner-2")
    sent = time.monotonic()
    await upstream.send(Topic.PARTNER_ACTIONS, snoop)
    await upstream.send(Topic.PARTNER_ACTIONS, nothing)
    sweeping = running_service.settings.model_copy(
        update={"sweep_interval": timedelta(seconds=0.5)}
    )
    with scheduler_running(sweeping):
        outputs = await upstream.until(
            lambda o: bool(
                o.rejections(snoop["message_id"]) and o.rejections(nothing["message_id"])
            ),
            what="both refused",
        )
    answered = time.monotonic() - sent
    [other] = outputs.rejections(snoop["message_id"])
    [none] = outputs.rejections(nothing["message_id"])
    assert other["reason"] == none["reason"] == "unknown_lead"
    # Held for the grace, then answered in the same sweep: no hint which one exists.
    assert answered >= running_service.settings.early_action_grace.total_seconds()
    assert other["detail"].replace(lead_id, "L") == none["detail"].replace(none["lead_id"], "L")
    assert outputs.event_types(lead_id) == ["lead.received"]


async def test_a_forbidden_role_is_refused(upstream: Upstream) -> None:
    lead_id = await received(upstream)
    action = messages.action(lead_id, "accept", actor={"user_id": "u-2", "role": "sales_viewer"})
    await upstream.send(Topic.PARTNER_ACTIONS, action)
    outputs = await upstream.until(lambda o: bool(o.rejections(action["message_id"])))
    assert outputs.rejections(action["message_id"])[0]["reason"] == "forbidden"
    assert outputs.event_types(lead_id) == ["lead.received"]


async def test_an_action_on_an_archived_lead_is_refused(upstream: Upstream) -> None:
    lead_id = await received(upstream)
    await upstream.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "decline"))
    late = messages.action(lead_id, "accept")
    await upstream.send(Topic.PARTNER_ACTIONS, late)
    outputs: Outputs = await upstream.until(lambda o: bool(o.rejections(late["message_id"])))
    rejected = outputs.rejections(late["message_id"])[0]
    assert (rejected["reason"], rejected["lead_id"]) == ("lead_archived", lead_id)
    assert outputs.event_types(lead_id) == ["lead.received", "lead.declined"]


async def test_published_messages_carry_cloudevents_headers(upstream: Upstream) -> None:
    lead_id = await received(upstream)
    record = next(r for r in upstream.outputs.records if r.key == lead_id.encode())
    headers = dict(record.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_subject"] == lead_id.encode()
    assert headers["ce_source"] == upstream.settings.event_source.encode()
    assert headers["content-type"] == b"application/json"
    assert {"ce_id", "ce_type", "ce_time"} <= set(headers)


async def test_without_tracing_configured_nothing_is_added_to_what_is_published(
    upstream: Upstream,
) -> None:
    lead = messages.inbound()
    traced = [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    await upstream.send(Topic.INBOUND, lead, headers=traced)
    outputs = await upstream.until(
        lambda o: "lead.received" in o.event_types(lead["lead_id"]), what="lead.received"
    )
    published = [r for r in outputs.records if r.key == lead["lead_id"].encode()]
    assert published and all(
        not {"traceparent", "ce_traceparent"} & {name for name, _ in r.headers} for r in published
    )
