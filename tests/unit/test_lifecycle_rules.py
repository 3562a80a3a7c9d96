"""Every row of shared/spec/lifecycle.md, allowed and refused, on the pure domain."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.actions import PARTNER_ACTION
from contracts.commands import COMMAND
from contracts.events import Outcome, Stage, Tab
from contracts.inbound import InboundLead
from contracts.profiles import PartnerProfile
from contracts.topics import EventType, NotificationTemplate, Reason
from services.lifecycle.domain import lead as rules
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.lead import Decision, Lead, LeadCommand, Windows
from tests import messages

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
WINDOWS = Windows()
PROFILE = PartnerProfile.model_validate(messages.profile())


def receive(at: datetime = T0, **overrides: Any) -> Lead:
    message = InboundLead.model_validate(messages.inbound(received_at=at.isoformat(), **overrides))
    return rules.receive(None, message, at, WINDOWS, PROFILE).lead


def act(lead: Lead, name: str, at: datetime = T0, **fields: Any) -> Decision:
    return rules.act(
        lead, PARTNER_ACTION.validate_python(messages.action(lead.lead_id, name, **fields)), at
    )


def cmd(lead: Lead | None, name: str, at: datetime, lead_id: str = "x", **fields: Any) -> Decision:
    message = COMMAND.validate_python(
        messages.command(lead.lead_id if lead else lead_id, name, **fields)
    )
    assert isinstance(message, LeadCommand)
    return rules.command(lead, message, at, PROFILE)


def accepted(**overrides: Any) -> Lead:
    return act(receive(**overrides), "accept").lead


def refusal(call: Any) -> Reason:
    with pytest.raises(Refused) as refused:
        call()
    return refused.value.reason


# --- new lead ----------------------------------------------------------------------


def test_new_lead_is_received_with_deadlines_and_tells_the_partner() -> None:
    message = InboundLead.model_validate(messages.inbound(contact_requested=True))
    decision = rules.receive(None, message, T0, WINDOWS, PROFILE)
    lead = decision.lead
    assert (lead.stage, lead.version, lead.tab) == (Stage.RECEIVED, 1, Tab.MARKETPLACE)
    assert lead.respond_by == T0 + timedelta(days=14)
    assert (lead.hot, lead.hot_until) == (True, T0 + timedelta(hours=72))
    assert decision.event is EventType.RECEIVED
    [notify] = decision.notifications
    assert notify.template is NotificationTemplate.NEW_LEAD
    assert (notify.recipient.kind, notify.recipient.id) == ("partner", lead.partner_id)
    assert lead.history[0].actor.kind == "referrer"


def test_windows_come_from_settings_not_constants() -> None:
    message = InboundLead.model_validate(messages.inbound(contact_requested=True))
    short = Windows(response=timedelta(seconds=5), contact_request=timedelta(seconds=2))
    lead = rules.receive(None, message, T0, short, PROFILE).lead
    assert (lead.respond_by, lead.hot_until) == (
        T0 + timedelta(seconds=5),
        T0 + timedelta(seconds=2),
    )


def test_lead_without_contact_request_is_not_hot() -> None:
    lead = receive()
    assert (lead.hot, lead.hot_until) == (False, None)


@pytest.mark.parametrize(
    ("lead_type", "tab"),
    [
        ("customer_inquiry", Tab.MARKETPLACE),
        ("marketing_qualified", Tab.QUALIFIED),
        ("sales_qualified", Tab.QUALIFIED),
    ],
)
def test_tab_follows_lead_type(lead_type: str, tab: Tab) -> None:
    assert receive(lead_type=lead_type).tab is tab


def test_same_lead_again_with_same_content_changes_nothing() -> None:
    raw = messages.inbound()
    first = rules.receive(None, InboundLead.model_validate(raw), T0, WINDOWS, PROFILE)
    again = InboundLead.model_validate({**raw, "message_id": "another-delivery"})
    decision = rules.receive(first.lead, again, T0 + timedelta(hours=1), WINDOWS, PROFILE)
    assert decision.lead == first.lead
    assert (decision.event, decision.notifications) == (None, ())


def test_same_lead_id_with_other_content_is_a_duplicate_lead() -> None:
    raw = messages.inbound()
    lead = rules.receive(None, InboundLead.model_validate(raw), T0, WINDOWS, PROFILE).lead
    clash = InboundLead.model_validate({**raw, "need": "Something else entirely"})
    assert (
        refusal(lambda: rules.receive(lead, clash, T0, WINDOWS, PROFILE)) is Reason.DUPLICATE_LEAD
    )


def test_same_content_is_recognised_after_contact_data_was_erased() -> None:
    raw = messages.inbound()
    lead = rules.receive(None, InboundLead.model_validate(raw), T0, WINDOWS, PROFILE).lead
    declined = act(lead, "decline").lead
    again = rules.receive(declined, InboundLead.model_validate(raw), T0, WINDOWS, PROFILE)
    assert again.event is None


# --- received stage ----------------------------------------------------------------


def test_accept_stores_the_deal_and_contacts() -> None:
    contacts = [{"name": "Lin", "email": "lin@contoso.example"}]
    decision = act(receive(), "accept", contacts=contacts)
    lead = decision.lead
    assert (lead.stage, lead.version, decision.event) == (Stage.ACCEPTED, 2, EventType.ACCEPTED)
    assert lead.deal is not None and str(lead.deal.value.amount) == "125000.50"
    assert [c.email for c in lead.contacts] == ["lin@contoso.example"]
    entry = lead.history[-1]
    assert (entry.action, entry.from_stage, entry.to_stage) == ("accept", "received", "accepted")
    assert (entry.actor.kind, entry.actor.id, entry.actor.role) == (
        "partner_user",
        "user-1",
        "referrals_admin",
    )


def test_decline_archives_erases_contact_data_and_tells_the_customer() -> None:
    lead = receive()
    decision = act(lead, "decline", reason="timeline_too_short", notes="Too soon")
    after = decision.lead
    assert (after.stage, after.outcome, after.decline_reason) == (
        Stage.ARCHIVED,
        Outcome.DECLINED,
        "timeline_too_short",
    )
    assert (after.customer.contact_name, after.customer.email, after.customer.phone) == (
        None,
        None,
        None,
    )
    assert (after.customer.company_name, after.customer.country) == ("Fabrikam", "DE")
    assert after.customer.company_size == "50-249"
    [notify] = decision.notifications
    assert notify.template is NotificationTemplate.CHOOSE_ANOTHER_PARTNER
    assert (notify.recipient.kind, notify.recipient.email) == ("customer", lead.customer.email)


@pytest.mark.parametrize("name", ["update", "add_contacts", "won", "lost"])
def test_deal_actions_on_a_received_lead_are_invalid_transitions(name: str) -> None:
    assert refusal(lambda: act(receive(), name, **_fields(name))) is Reason.INVALID_TRANSITION


# --- expiry ------------------------------------------------------------------------


def test_expire_when_due_archives_erases_and_tells_the_referrer() -> None:
    lead = receive()
    decision = cmd(lead, "expire", lead.respond_by)
    after = decision.lead
    assert (after.stage, after.outcome, decision.event) == (
        Stage.ARCHIVED,
        Outcome.EXPIRED,
        EventType.EXPIRED,
    )
    assert after.customer.email is None and after.customer.contact_name is None
    [notify] = decision.notifications
    assert notify.template is NotificationTemplate.LEAD_EXPIRED
    assert (notify.recipient.kind, notify.recipient.id) == ("referrer", "ms-1")
    assert after.history[-1].actor.kind == "system"


def test_expire_before_the_deadline_does_nothing() -> None:
    lead = receive()
    decision = cmd(lead, "expire", lead.respond_by - timedelta(seconds=1))
    assert decision.lead == lead and not decision.changed and not decision.notifications


@pytest.mark.parametrize("stage", ["accepted", "archived"])
def test_expire_on_an_answered_lead_does_nothing(stage: str) -> None:
    lead = accepted() if stage == "accepted" else act(receive(), "decline").lead
    decision = cmd(lead, "expire", lead.respond_by + timedelta(days=1))
    assert decision.lead == lead and not decision.changed and not decision.notifications


def test_command_for_an_unknown_lead_is_refused() -> None:
    assert refusal(lambda: cmd(None, "expire", T0, lead_id="nope")) is Reason.UNKNOWN_LEAD


# --- accepted stage ----------------------------------------------------------------


def test_update_changes_only_the_given_deal_fields() -> None:
    decision = act(accepted(), "update", changes={"notes": "New notes", "crm_id": "CRM-7"})
    deal = decision.lead.deal
    assert decision.event is EventType.UPDATED and decision.lead.version == 3
    assert deal is not None
    assert (deal.notes, deal.crm_id, deal.name) == ("New notes", "CRM-7", "Fabrikam ERP")


def test_update_to_the_same_values_is_a_no_op() -> None:
    lead = accepted()
    decision = act(lead, "update", changes={"name": "Fabrikam ERP"})
    assert decision.lead == lead and not decision.changed


def test_add_contacts_appends_deduplicated_by_email() -> None:
    lead = act(receive(), "accept", contacts=[{"name": "Lin", "email": "lin@contoso.example"}]).lead
    decision = act(
        lead,
        "add_contacts",
        contacts=[
            {"name": "Lin again", "email": "LIN@contoso.example"},
            {"name": "Max", "email": "max@contoso.example"},
            {"name": "Max twice", "email": "max@contoso.example"},
        ],
    )
    assert decision.event is EventType.CONTACTS_ADDED
    assert [c.name for c in decision.lead.contacts] == ["Lin", "Max"]


def test_add_contacts_already_there_is_a_no_op() -> None:
    lead = act(receive(), "accept", contacts=[{"name": "Lin", "email": "lin@contoso.example"}]).lead
    decision = act(lead, "add_contacts", contacts=[{"name": "Lin", "email": "lin@contoso.example"}])
    assert not decision.changed


@pytest.mark.parametrize(
    ("name", "outcome", "event"), [("won", "won", "lead.won"), ("lost", "lost", "lead.lost")]
)
def test_won_and_lost_archive_with_their_outcome(name: str, outcome: str, event: str) -> None:
    decision = act(accepted(), name)
    assert (decision.lead.stage, decision.lead.outcome, decision.event) == (
        "archived",
        outcome,
        event,
    )


def test_lost_keeps_its_reason() -> None:
    assert (
        act(accepted(), "lost", reason="chose_another_vendor").lead.decline_reason
        == "chose_another_vendor"
    )


@pytest.mark.parametrize("name", ["accept", "decline"])
def test_accept_or_decline_on_an_accepted_lead_is_an_invalid_transition(name: str) -> None:
    assert refusal(lambda: act(accepted(), name)) is Reason.INVALID_TRANSITION


# --- favorites ---------------------------------------------------------------------


@pytest.mark.parametrize("make", [receive, accepted])
def test_favorite_then_unfavorite(make: Any) -> None:
    lead = make()
    favored = act(lead, "favorite")
    assert (favored.lead.favorite, favored.event) == (True, EventType.FAVORITED)
    again = act(favored.lead, "favorite")
    assert again.lead == favored.lead and not again.changed
    cleared = act(favored.lead, "unfavorite")
    assert (cleared.lead.favorite, cleared.event) == (False, EventType.UNFAVORITED)
    assert not act(cleared.lead, "unfavorite").changed


# --- contact request aging and reminders -------------------------------------------


def test_hot_lead_cools_down_at_its_mark_and_tells_the_partner() -> None:
    lead = receive(contact_requested=True)
    assert lead.hot_until is not None
    early = cmd(lead, "age_contact_request", lead.hot_until - timedelta(seconds=1))
    assert not early.changed and not early.notifications
    decision = cmd(lead, "age_contact_request", lead.hot_until)
    assert (decision.lead.hot, decision.event) == (False, EventType.CONTACT_REQUEST_AGED)
    assert decision.notifications[0].template is NotificationTemplate.CONTACT_REQUEST_AGING
    assert not cmd(decision.lead, "age_contact_request", lead.hot_until).changed


def test_aging_a_lead_that_is_not_hot_does_nothing() -> None:
    lead = receive()
    decision = cmd(lead, "age_contact_request", T0 + timedelta(days=5))
    assert not decision.changed and not decision.notifications


def test_remind_before_the_deadline_tells_the_partner_the_time_left() -> None:
    lead = receive()
    decision = cmd(lead, "remind", lead.respond_by - timedelta(hours=24))
    assert decision.lead == lead and not decision.changed
    [notify] = decision.notifications
    assert notify.template is NotificationTemplate.EXPIRY_REMINDER
    assert notify.data["remaining"] == "P1D"


@pytest.mark.parametrize("when", ["after_deadline", "accepted"])
def test_remind_when_no_longer_relevant_does_nothing(when: str) -> None:
    lead = accepted() if when == "accepted" else receive()
    at = lead.respond_by + timedelta(seconds=1) if when == "after_deadline" else T0
    decision = cmd(lead, "remind", at)
    assert not decision.changed and not decision.notifications


# --- refusals common to all partner actions ----------------------------------------


ALL_ACTIONS = [
    "accept",
    "decline",
    "update",
    "add_contacts",
    "won",
    "lost",
    "favorite",
    "unfavorite",
]


def _fields(name: str) -> dict[str, Any]:
    """The fields an action needs beyond the common ones."""
    needed: dict[str, dict[str, Any]] = {
        "update": {"changes": {"notes": "x"}},
        "add_contacts": {"contacts": [{"name": "A", "email": "a@b.example"}]},
    }
    return needed.get(name, {})


@pytest.mark.parametrize("name", ALL_ACTIONS)
@pytest.mark.parametrize("outcome", ["declined", "expired", "won", "lost"])
def test_every_action_on_an_archived_lead_is_refused(name: str, outcome: str) -> None:
    archived = {
        "declined": lambda: act(receive(), "decline").lead,
        "expired": lambda: cmd(receive(), "expire", T0 + timedelta(days=15)).lead,
        "won": lambda: act(accepted(), "won").lead,
        "lost": lambda: act(accepted(), "lost").lead,
    }[outcome]()
    assert refusal(lambda: act(archived, name, **_fields(name))) is Reason.LEAD_ARCHIVED


@pytest.mark.parametrize("name", ALL_ACTIONS)
def test_a_role_other_than_the_two_is_forbidden(name: str) -> None:
    actor = {"user_id": "u-9", "role": "co_sell_viewer"}
    assert refusal(lambda: act(receive(), name, actor=actor, **_fields(name))) is Reason.FORBIDDEN


@pytest.mark.parametrize("role", ["mpn_partner_admin", "referrals_admin"])
def test_both_partner_roles_may_act(role: str) -> None:
    decision = act(receive(), "favorite", actor={"user_id": "u-1", "role": role})
    assert decision.changed


@pytest.mark.parametrize("name", ALL_ACTIONS)
def test_another_partners_lead_looks_like_no_lead(name: str) -> None:
    lead = receive()
    other = refusal(lambda: act(lead, name, partner_id="partner-2", **_fields(name)))
    missing = refusal(
        lambda: rules.act(
            None, PARTNER_ACTION.validate_python(messages.action("nope", name, **_fields(name))), T0
        )
    )
    assert other is missing is Reason.UNKNOWN_LEAD


def test_refusal_details_never_echo_customer_data() -> None:
    lead = receive()
    calls: list[Callable[[], Decision]] = [
        lambda: act(lead, "won"),
        lambda: act(lead, "favorite", partner_id="partner-2"),
        lambda: act(act(lead, "decline").lead, "favorite"),
    ]
    for call in calls:
        with pytest.raises(Refused) as refused:
            call()
        assert (
            "Grace" not in refused.value.detail and "fabrikam.example" not in refused.value.detail
        )


def test_an_action_on_an_old_version_is_refused_stale_and_changes_nothing() -> None:
    lead = receive()
    favorited = act(lead, "favorite").lead
    assert favorited.version == lead.version + 1
    stale = refusal(lambda: act(favorited, "accept", expected_version=lead.version))
    assert stale is Reason.STALE_VERSION
    current = act(favorited, "accept", expected_version=favorited.version)
    assert current.event is EventType.ACCEPTED


def test_the_version_check_does_not_tell_another_partner_the_leads_version() -> None:
    lead = receive()
    refused = refusal(lambda: act(lead, "accept", partner_id="partner-2", expected_version=99))
    assert refused is Reason.UNKNOWN_LEAD
