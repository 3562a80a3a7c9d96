"""Which deadlines a lead gets, when it drops them, and the ids their commands carry."""

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.actions import PARTNER_ACTION
from contracts.commands import COMMAND, Remind
from contracts.inbound import InboundLead
from contracts.profiles import PartnerProfile
from services.lifecycle.domain import deadlines
from services.lifecycle.domain import lead as rules
from services.lifecycle.domain.deadlines import Deadline
from services.lifecycle.domain.lead import Lead, LeadCommand, Windows
from tests import messages

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
WINDOWS = Windows()
PROFILE = PartnerProfile.model_validate(messages.profile())
HOURS = timedelta(hours=1)


def receive(windows: Windows = WINDOWS, **overrides: Any) -> Lead:
    fields = {"received_at": T0.isoformat(), **overrides}
    message = InboundLead.model_validate(messages.inbound(**fields))
    return rules.receive(None, message, T0, windows, PROFILE).lead


def schedule(lead: Lead, windows: Windows = WINDOWS) -> list[tuple[str, datetime, Any]]:
    return [(d.command, d.due_at, d.remaining) for d in deadlines.deadlines_of(lead, windows)]


def test_a_new_lead_waits_on_its_expiry_two_reminders_and_its_cool_down() -> None:
    lead = receive(contact_requested=True)
    respond_by = T0 + timedelta(days=14)
    assert schedule(lead) == [
        ("expire", respond_by, None),
        ("remind", respond_by - 72 * HOURS, 72 * HOURS),
        ("remind", respond_by - 24 * HOURS, 24 * HOURS),
        ("age_contact_request", T0 + 72 * HOURS, None),
    ]


def test_a_lead_without_a_contact_request_has_no_cool_down() -> None:
    assert [c for c, _, _ in schedule(receive())] == ["expire", "remind", "remind"]


def test_reminders_come_from_the_configured_offsets_latest_first_without_repeats() -> None:
    windows = Windows(reminders=(timedelta(hours=1), timedelta(days=2), timedelta(hours=1)))
    reminders = [
        (due, left) for c, due, left in schedule(receive(windows), windows) if c == "remind"
    ]
    respond_by = T0 + timedelta(days=14)
    assert reminders == [
        (respond_by - timedelta(days=2), timedelta(days=2)),
        (respond_by - HOURS, HOURS),
    ]


def test_a_reminder_that_would_fall_before_the_lead_arrived_is_not_scheduled() -> None:
    windows = Windows(response=timedelta(hours=48))
    assert schedule(receive(windows), windows) == [
        ("expire", T0 + 48 * HOURS, None),
        ("remind", T0 + 24 * HOURS, 24 * HOURS),
    ]


def test_a_lead_received_after_its_window_is_due_at_once_and_not_hot() -> None:
    lead = receive(received_at=(T0 - timedelta(days=15)).isoformat(), contact_requested=True)
    assert schedule(lead)[0] == ("expire", T0 - timedelta(days=1), None)
    assert "age_contact_request" not in [c for c, _, _ in schedule(lead)]


# --- command ids ---------------------------------------------------------------------


def test_command_ids_are_the_same_for_the_same_lead_command_and_due_time() -> None:
    first = Deadline("lead-1", "expire", T0)
    assert first.command_id == Deadline("lead-1", "expire", T0).command_id
    others = {
        Deadline("lead-2", "expire", T0),
        Deadline("lead-1", "remind", T0, remaining=HOURS),
        Deadline("lead-1", "expire", T0 + timedelta(milliseconds=1)),
    }
    assert first.command_id not in {d.command_id for d in others}
    assert len({d.command_id for d in others}) == 3


def test_a_deadline_becomes_a_valid_command_under_its_id() -> None:
    reminder = Deadline("lead-1", "remind", T0, remaining=24 * HOURS)
    command = reminder.to_command()
    assert isinstance(command, Remind)
    assert (command.message_id, command.lead_id, command.due_at, command.remaining) == (
        reminder.command_id,
        "lead-1",
        T0,
        24 * HOURS,
    )
    assert COMMAND.validate_json(command.model_dump_json()) == command


# --- dropping deadlines --------------------------------------------------------------


def after(lead: Lead, action: str) -> Lead:
    message = PARTNER_ACTION.validate_python(messages.action(lead.lead_id, action))
    return rules.act(lead, message, T0 + HOURS).lead


def test_a_new_lead_adds_its_deadlines() -> None:
    lead = receive(contact_requested=True)
    change = deadlines.changes(None, lead, WINDOWS)
    assert change is not None
    assert change.add == deadlines.deadlines_of(lead, WINDOWS)
    assert (change.drop_commands, change.drop_ids) == (frozenset(), ())


def test_accepting_drops_expiry_and_reminders_but_a_hot_lead_still_cools_down() -> None:
    lead = receive(contact_requested=True)
    change = deadlines.changes(lead, after(lead, "accept"), WINDOWS)
    assert change is not None
    assert change.drop_commands == {"expire", "remind"}


def test_declining_a_hot_lead_drops_every_deadline() -> None:
    lead = receive(contact_requested=True)
    change = deadlines.changes(lead, after(lead, "decline"), WINDOWS)
    assert change is not None
    assert change.drop_commands == {"expire", "remind", "age_contact_request"}


def test_a_change_that_leaves_the_lead_waiting_drops_nothing() -> None:
    lead = receive(contact_requested=True)
    assert deadlines.changes(lead, after(lead, "favorite"), WINDOWS) is None


def test_a_handled_reminder_drops_that_reminder_only() -> None:
    lead = receive()
    reminder = next(d for d in deadlines.deadlines_of(lead, WINDOWS) if d.command == "remind")
    change = deadlines.changes(lead, lead, WINDOWS, reminder.to_command())
    assert change is not None
    assert (change.drop_ids, change.drop_commands) == ((reminder.command_id,), frozenset())


def test_an_early_expiry_drops_nothing_so_it_is_emitted_again() -> None:
    lead = receive()
    expiry = Deadline(lead.lead_id, "expire", lead.respond_by).to_command()
    assert isinstance(expiry, LeadCommand)
    early = rules.command(lead, expiry, lead.respond_by - timedelta(seconds=1), PROFILE)
    assert deadlines.changes(lead, early.lead, WINDOWS, expiry) is None
