"""Profile ordering and who of a partner's team is alerted about a lead."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.commands import COMMAND
from contracts.inbound import InboundLead
from contracts.profiles import PartnerProfile
from contracts.topics import Reason
from services.lifecycle.domain import lead as rules
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.lead import LeadCommand, Windows
from services.lifecycle.domain.profiles import alert_contacts, supersedes
from tests import messages
from tests.messages import location

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def profile(*locations: dict[str, Any], updated_at: datetime = T0) -> PartnerProfile:
    return PartnerProfile.model_validate(
        messages.profile(locations=list(locations), updated_at=updated_at)
    )


TEAMS = profile(
    location("berlin", "DE", "berlin@p.example", "sales@p.example"),
    location("munich", "DE", "munich@p.example", "SALES@p.example"),
    location("paris", "FR", "paris@p.example"),
)


def emails(found: tuple[Any, ...]) -> list[str]:
    return [c.email for c in found]


def test_only_a_newer_profile_supersedes_the_stored_one() -> None:
    stored = profile(updated_at=T0)
    assert supersedes(profile(updated_at=T0 + timedelta(seconds=1)), stored)
    assert not supersedes(profile(updated_at=T0), stored)
    assert not supersedes(profile(updated_at=T0 - timedelta(days=1)), stored)
    assert supersedes(stored, None)


def test_the_locations_in_the_customers_country_are_alerted_each_address_once() -> None:
    assert emails(alert_contacts(TEAMS, "DE")) == [
        "berlin@p.example",
        "sales@p.example",
        "munich@p.example",
    ]
    assert emails(alert_contacts(TEAMS, "FR")) == ["paris@p.example"]


def test_a_country_no_location_serves_alerts_every_contact() -> None:
    assert emails(alert_contacts(TEAMS, "US")) == [
        "berlin@p.example",
        "sales@p.example",
        "munich@p.example",
        "paris@p.example",
    ]


def test_a_serving_location_without_contacts_falls_back_to_every_contact() -> None:
    teams = profile(location("vienna", "AT"), location("paris", "FR", "paris@p.example"))
    assert emails(alert_contacts(teams, "AT")) == ["paris@p.example"]


def receive(partner: PartnerProfile | None, **fields: Any) -> rules.Decision:
    message = InboundLead.model_validate(messages.inbound(received_at=T0.isoformat(), **fields))
    return rules.receive(None, message, T0, Windows(), partner)


def test_a_lead_for_a_partner_without_a_profile_is_refused() -> None:
    with pytest.raises(Refused) as refused:
        receive(None)
    assert refused.value.reason is Reason.PARTNER_PROFILE_MISSING
    assert messages.PARTNER in refused.value.detail


def test_a_new_lead_alerts_each_contact_of_the_serving_location_once() -> None:
    decision = receive(TEAMS, customer={**messages.inbound()["customer"], "country": "FR"})
    recipients = [n.recipient for n in decision.notifications]
    assert [(r.kind, r.id, r.email) for r in recipients] == [
        ("partner", messages.PARTNER, "paris@p.example")
    ]


def test_reminders_and_cool_downs_go_to_the_same_contacts() -> None:
    lead = receive(TEAMS, contact_requested=True).lead
    assert lead.hot_until is not None
    for name, at in (
        ("remind", lead.respond_by - timedelta(days=1)),
        ("age_contact_request", lead.hot_until),
    ):
        command = COMMAND.validate_python(messages.command(lead.lead_id, name))
        assert isinstance(command, LeadCommand)
        decision = rules.command(lead, command, at, TEAMS)
        assert [n.recipient.email for n in decision.notifications] == [
            "berlin@p.example",
            "sales@p.example",
            "munich@p.example",
        ], name


def test_a_profile_naming_nobody_alerts_the_partner_as_a_whole() -> None:
    decision = receive(profile())
    [notify] = decision.notifications
    assert (notify.recipient.id, notify.recipient.email) == (messages.PARTNER, None)


def test_profile_times_are_compared_to_the_millisecond_they_are_stored_at() -> None:
    stored = profile(updated_at=T0 + timedelta(microseconds=123000))
    again = profile(updated_at=T0 + timedelta(microseconds=123456))
    assert not supersedes(again, stored)
