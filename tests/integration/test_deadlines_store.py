"""Deadlines stored with their lead in one transaction, and swept from MongoDB, on a real server."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.commands import COMMAND
from contracts.topics import Topic
from services.lifecycle.adapters.deadlines import MongoDueDeadlines
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.domain.clock import FixedClock
from services.lifecycle.domain.deadlines import Deadline
from services.lifecycle.domain.lead import Windows
from services.lifecycle.service_layer.lead_service import LeadService
from tests import messages
from tests.integration.stored import outbox_rows
from tests.messages import delivery

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
WINDOWS = Windows(
    response=timedelta(hours=10),
    contact_request=timedelta(hours=3),
    reminders=(timedelta(hours=4), timedelta(hours=1)),
)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def windows() -> Windows:
    return WINDOWS


@pytest.fixture
def due(store: MongoStore) -> MongoDueDeadlines:
    return MongoDueDeadlines(store.database)


async def handle(service: LeadService, topic: Topic, value: dict[str, Any]) -> str:
    return (await service.decide_and_commit_one(delivery(topic, value))).outcome


async def due_at(due: MongoDueDeadlines, now: datetime) -> list[tuple[str, str, datetime]]:
    return [(d.lead_id, d.command, d.due_at) for d, _ in await due.due(now, 100)]


async def test_a_received_lead_is_due_for_each_command_at_its_time(
    service: LeadService, due: MongoDueDeadlines
) -> None:
    await handle(service, Topic.INBOUND, messages.inbound("hot", contact_requested=True))
    await handle(service, Topic.INBOUND, messages.inbound("cold"))
    assert await due_at(due, T0 + timedelta(hours=2, minutes=59)) == []
    found = await due_at(due, T0 + timedelta(hours=6))
    assert found[0] == ("hot", "age_contact_request", T0 + timedelta(hours=3))
    assert sorted(found[1:]) == [
        ("cold", "remind", T0 + timedelta(hours=6)),
        ("hot", "remind", T0 + timedelta(hours=6)),
    ]
    assert await due.count_due(T0 + timedelta(hours=10)) == 2  # leads with something due


async def test_answering_a_lead_settles_its_deadlines_in_the_same_transaction(
    service: LeadService, due: MongoDueDeadlines
) -> None:
    await handle(service, Topic.INBOUND, messages.inbound("answered", contact_requested=True))
    await handle(service, Topic.PARTNER_ACTIONS, messages.action("answered", "accept"))
    later = T0 + timedelta(days=1)
    assert await due_at(due, later) == [
        ("answered", "age_contact_request", T0 + timedelta(hours=3))
    ]
    await handle(service, Topic.PARTNER_ACTIONS, messages.action("answered", "won"))
    assert await due_at(due, later) == []


async def test_an_early_expiry_is_not_marked_done_and_applies_once_due(
    service: LeadService, due: MongoDueDeadlines, clock: FixedClock
) -> None:
    await handle(service, Topic.INBOUND, messages.inbound("patient"))
    expiry = Deadline("patient", "expire", T0 + timedelta(hours=10)).to_command()
    command = COMMAND.dump_python(expiry, mode="json")
    assert await handle(service, Topic.COMMANDS, command) == "no_change"
    clock.advance(timedelta(hours=10))
    assert await handle(service, Topic.COMMANDS, command) == "applied"
    assert await handle(service, Topic.COMMANDS, command) == "duplicate"
    assert await due_at(due, T0 + timedelta(days=1)) == []


async def test_a_reminder_handled_twice_notifies_once_and_is_settled(
    service: LeadService, due: MongoDueDeadlines, store: MongoStore, clock: FixedClock
) -> None:
    await handle(service, Topic.INBOUND, messages.inbound("nudged"))
    clock.advance(timedelta(hours=6))
    [(reminder, _)] = await due.due(clock.now(), 10)
    command = COMMAND.dump_python(reminder.to_command(), mode="json")
    outcomes = [await handle(service, Topic.COMMANDS, command) for _ in range(2)]
    assert outcomes == ["applied", "duplicate"]
    templates = [row.value or b"" for row in await outbox_rows(store, "nudged")]
    assert sum(b'"expiry_reminder"' in value for value in templates) == 1
    assert [d.command for d, _ in await due.due(T0 + timedelta(hours=10), 10)] == [
        "remind",
        "expire",
    ]


async def test_an_emitted_deadline_waits_for_its_next_emission(
    service: LeadService, due: MongoDueDeadlines
) -> None:
    await handle(service, Topic.INBOUND, messages.inbound("late"))
    now = T0 + timedelta(hours=10)
    [(expiry, emissions)] = [(d, n) for d, n in await due.due(now, 10) if d.command == "expire"]
    assert emissions == 0
    await due.postpone([(expiry, now + timedelta(minutes=5))])
    assert "expire" not in [d.command for d, _ in await due.due(now, 10)]
    again = await due.due(now + timedelta(minutes=5), 10)
    assert (expiry, 1) in again


async def test_the_due_query_walks_the_due_index(
    service: LeadService, due: MongoDueDeadlines
) -> None:
    await handle(service, Topic.INBOUND, messages.inbound("planned"))
    plan = await due.explain_due(T0, 100)
    assert "due" in str(plan["queryPlanner"]["winningPlan"])


async def test_a_reopened_lead_is_due_to_expire_again_and_expires_if_left_unanswered(
    service: LeadService, due: MongoDueDeadlines, clock: FixedClock, store: MongoStore
) -> None:
    await handle(service, Topic.INBOUND, messages.inbound("again"))
    clock.advance(timedelta(hours=10))
    [(expiry, _)] = [(d, n) for d, n in await due.due(clock.now(), 10) if d.command == "expire"]
    command = COMMAND.dump_python(expiry.to_command(), mode="json")
    assert await handle(service, Topic.COMMANDS, command) == "applied"
    assert await due_at(due, clock.now() + timedelta(days=30)) == []

    clock.advance(timedelta(hours=1))
    reopen = messages.reopen("again", reason="expired_in_error")
    assert await handle(service, Topic.INBOUND, reopen) == "applied"
    reopened_at = clock.now()
    assert ("again", "expire", reopened_at + WINDOWS.response) in await due_at(
        due, reopened_at + WINDOWS.response
    )

    clock.advance(WINDOWS.response)
    [(second, _)] = [(d, n) for d, n in await due.due(clock.now(), 10) if d.command == "expire"]
    again = COMMAND.dump_python(second.to_command(), mode="json")
    assert await handle(service, Topic.COMMANDS, again) == "applied"
    lead = await store.load("again")
    assert lead is not None and (lead.outcome, lead.reopens) == ("expired", 1)
    assert await due_at(due, clock.now() + timedelta(days=30)) == []


async def fire(service: LeadService, due: MongoDueDeadlines, now: datetime, name: str) -> str:
    [(deadline, _)] = [(d, n) for d, n in await due.due(now, 10) if d.command == name]
    return await handle(
        service, Topic.COMMANDS, COMMAND.dump_python(deadline.to_command(), mode="json")
    )


async def test_an_accepted_deals_alerts_are_due_and_move_with_the_deal(
    service: LeadService, due: MongoDueDeadlines, clock: FixedClock
) -> None:
    await handle(service, Topic.INBOUND, messages.inbound("deal"))
    await handle(service, Topic.PARTNER_ACTIONS, messages.action("deal", "accept"))
    closes = datetime(2027, 7, 7, tzinfo=UTC)  # messages.DEAL's close date, a week's grace
    assert sorted(await due_at(due, closes)) == [
        ("deal", "close_date_passed", closes),
        ("deal", "deal_escalate", T0 + timedelta(days=21)),
        ("deal", "deal_nudge", T0 + timedelta(days=14)),
    ]
    clock.advance(timedelta(days=15))
    assert await fire(service, due, clock.now(), "deal_nudge") == "applied"
    assert [c for _, c, _ in await due_at(due, closes)] == ["deal_escalate", "close_date_passed"]

    worked = messages.action("deal", "log_activity", kind="call", summary="Called the buyer")
    assert await handle(service, Topic.PARTNER_ACTIONS, worked) == "applied"
    assert sorted(await due_at(due, closes)) == [
        ("deal", "close_date_passed", closes),
        ("deal", "deal_escalate", clock.now() + timedelta(days=21)),
        ("deal", "deal_nudge", clock.now() + timedelta(days=14)),
    ]


async def test_a_deal_that_waited_on_nothing_is_due_again_once_it_moves(
    service: LeadService, due: MongoDueDeadlines, clock: FixedClock
) -> None:
    await handle(service, Topic.INBOUND, messages.inbound("quiet"))
    await handle(service, Topic.PARTNER_ACTIONS, messages.action("quiet", "accept"))
    clock.advance(timedelta(days=365))  # past every alert and the close date
    for name in ("deal_nudge", "deal_escalate", "close_date_passed"):
        assert await fire(service, due, clock.now(), name) == "applied", name
    assert await due.count_due(clock.now() + timedelta(days=365)) == 0

    worked = messages.action("quiet", "log_activity", kind="note", summary="Still active")
    assert await handle(service, Topic.PARTNER_ACTIONS, worked) == "applied"
    assert sorted(await due_at(due, clock.now() + timedelta(days=21))) == [
        ("quiet", "deal_escalate", clock.now() + timedelta(days=21)),
        ("quiet", "deal_nudge", clock.now() + timedelta(days=14)),
    ]
