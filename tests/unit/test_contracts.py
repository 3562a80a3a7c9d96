"""Contract validation: good messages pass, bad ones fail with readable, data-free details."""

import json
from typing import Any

import pytest

from contracts.commands import Remind
from contracts.inbound import InboundLead
from contracts.topics import Reason, Topic
from services.lifecycle.service_layer.decoding import Malformed, decode
from tests import messages


def malformed(topic: Topic, value: Any) -> Malformed:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    with pytest.raises(Malformed) as refused:
        decode(topic, raw)
    assert refused.value.reason is Reason.MALFORMED
    return refused.value


def test_a_good_lead_decodes_with_times_in_utc() -> None:
    lead = decode(
        Topic.INBOUND,
        json.dumps(messages.inbound(received_at="2026-11-01T10:00:00+02:00")).encode(),
    )
    assert isinstance(lead, InboundLead)
    assert lead.received_at is not None
    assert lead.received_at.isoformat() == "2026-11-01T08:00:00+00:00"


def test_unknown_optional_fields_are_tolerated() -> None:
    decode(Topic.INBOUND, json.dumps(messages.inbound(priority="high")).encode())


@pytest.mark.parametrize(
    "action",
    [
        messages.action(
            "l-1", "accept", contacts=[{"name": "Lin", "email": "lin@contoso.example"}]
        ),
        messages.action("l-1", "decline"),
        messages.action("l-1", "update", changes={"value": {"amount": "1", "currency": "USD"}}),
        messages.action(
            "l-1", "add_contacts", contacts=[{"name": "Lin", "email": "lin@contoso.example"}]
        ),
        messages.action("l-1", "won"),
        messages.action("l-1", "lost", reason="other"),
        messages.action("l-1", "favorite"),
        messages.action("l-1", "unfavorite"),
    ],
)
def test_every_partner_action_decodes_to_its_own_type(action: dict[str, Any]) -> None:
    decoded = decode(Topic.PARTNER_ACTIONS, json.dumps(action).encode())
    assert getattr(decoded, "action", None) == action["action"]


@pytest.mark.parametrize("name", ["expire", "age_contact_request", "remind"])
def test_every_command_decodes(name: str) -> None:
    decoded = decode(Topic.COMMANDS, json.dumps(messages.command("l-1", name)).encode())
    assert getattr(decoded, "command", None) == name


def test_remind_remaining_is_an_iso_duration() -> None:
    decoded = decode(
        Topic.COMMANDS, json.dumps(messages.command("l-1", "remind", remaining="PT72H")).encode()
    )
    assert isinstance(decoded, Remind)
    assert decoded.remaining.total_seconds() == 72 * 3600


def test_not_json_is_malformed() -> None:
    refused = malformed(Topic.INBOUND, b"{not json")
    assert "not UTF-8 JSON" in refused.detail and refused.message_id is None


def test_not_utf8_is_malformed() -> None:
    assert "not UTF-8 JSON" in malformed(Topic.INBOUND, b"\xff\xfe").detail


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lead_id": "has spaces"}, "lead_id"),
        ({"lead_id": "x" * 65}, "lead_id"),
        ({"partner_id": ""}, "partner_id"),
        ({"lead_type": "hot_tip"}, "lead_type"),
        ({"need": "x" * 4001}, "need"),
        ({"received_at": "2026-11-01T10:00:00"}, "received_at"),
        ({"received_at": "0001-01-01T00:00:00+01:00"}, "received_at"),  # before year 1 in UTC
    ],
)
def test_bad_lead_fields_are_named(change: dict[str, Any], field: str) -> None:
    refused = malformed(Topic.INBOUND, messages.inbound(**change))
    assert field in refused.detail


@pytest.mark.parametrize(
    ("customer", "field"),
    [
        ({"email": "not-an-email"}, "customer.email"),
        ({"country": "de"}, "customer.country"),
        ({"country": "XX"}, "customer.country"),
        ({"company_name": ""}, "customer.company_name"),
    ],
)
def test_bad_customer_fields_are_named_without_echoing_values(
    customer: dict[str, Any], field: str
) -> None:
    base = messages.inbound()
    refused = malformed(Topic.INBOUND, {**base, "customer": {**base["customer"], **customer}})
    assert field in refused.detail
    assert "Grace" not in refused.detail and "not-an-email" not in refused.detail


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("0", "EUR"),
        ("-5", "EUR"),
        ("10000000000000", "EUR"),
        ("1.23456", "EUR"),
        (100, "EUR"),
        ("100", "eur"),
        ("100", "EURO"),
        ("100", "ABC"),
    ],
)
def test_bad_money_is_malformed(amount: Any, currency: str) -> None:
    deal = {**messages.DEAL, "value": {"amount": amount, "currency": currency}}
    refused = malformed(Topic.PARTNER_ACTIONS, messages.action("l-1", "accept", deal=deal))
    assert "deal.value" in refused.detail


def test_update_without_changes_is_malformed() -> None:
    assert (
        "at least one"
        in malformed(Topic.PARTNER_ACTIONS, messages.action("l-1", "update", changes={})).detail
    )


def test_add_contacts_needs_a_contact() -> None:
    refused = malformed(Topic.PARTNER_ACTIONS, messages.action("l-1", "add_contacts", contacts=[]))
    assert "contacts" in refused.detail


def test_unknown_action_is_malformed_and_keeps_the_ids() -> None:
    refused = malformed(Topic.PARTNER_ACTIONS, messages.action("l-1", "teleport"))
    assert "action" in refused.detail
    assert (refused.lead_id, refused.message_id is not None) == ("l-1", True)


def test_bad_decline_reason_is_malformed() -> None:
    assert (
        "reason"
        in malformed(Topic.PARTNER_ACTIONS, messages.action("l-1", "decline", reason="meh")).detail
    )


def test_many_errors_are_summarised() -> None:
    refused = malformed(Topic.INBOUND, {"message_id": "m-1"})
    assert "more" in refused.detail and len(refused.detail) < 600


def test_a_json_array_is_malformed() -> None:
    assert "does not match the contract" in malformed(Topic.COMMANDS, [1, 2]).detail
