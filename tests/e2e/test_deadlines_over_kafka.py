"""Deadlines end to end: `leads serve` and `leads scheduler` processes on real servers,
with windows of seconds, observed only through Kafka topics."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from contracts.topics import Topic
from services.dev_servers import Servers
from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.drivers import (
    Outputs,
    ServiceProcess,
    Upstream,
    quiet_period,
    scheduler_running,
    service_running,
    sweeping_fast,
    sweeping_leader,
    sweeps,
    sweeps_later,
    upstream_of,
)
from tests.servers import isolated_settings

RESPONSE_S = 10.0


def deadline_settings(servers: Servers) -> Settings:
    return sweeping_fast(isolated_settings(servers, "deadlines")).model_copy(
        update={
            "response_window": timedelta(seconds=RESPONSE_S),
            "contact_request_window": timedelta(seconds=4),
            "reminder_offsets": (timedelta(seconds=6), timedelta(seconds=3)),
        }
    )


@pytest.fixture(scope="module")
def deadlines_service(servers: Servers) -> Iterator[ServiceProcess]:
    with service_running(deadline_settings(servers)) as service:
        yield service


@pytest.fixture(scope="module")
def worker(deadlines_service: ServiceProcess) -> Iterator[ServiceProcess]:
    with scheduler_running(deadlines_service.settings) as worker:
        yield worker


@pytest.fixture
async def upstream(
    deadlines_service: ServiceProcess, worker: ServiceProcess
) -> AsyncIterator[Upstream]:
    async with upstream_of(deadlines_service) as client:
        yield client


# --- helpers -------------------------------------------------------------------------


async def send_lead(upstream: Upstream, **overrides: Any) -> str:
    lead = messages.inbound(**overrides)
    await upstream.send(Topic.INBOUND, lead)
    return str(lead["lead_id"])


def templates(outputs: Outputs, lead_id: str, template: str) -> list[dict[str, Any]]:
    return [n for n in outputs.notifications(lead_id) if n["template"] == template]


async def expired(upstream: Upstream, *lead_ids: str, timeout: float = 40.0) -> Outputs:
    return await upstream.until(
        lambda o: all("lead.expired" in o.event_types(lead) for lead in lead_ids),
        timeout=timeout,
        what=f"{len(lead_ids)} leads expired",
    )


# --- tests ---------------------------------------------------------------------------


async def test_an_unanswered_lead_is_reminded_in_order_then_expires_and_its_sender_is_told_once(
    upstream: Upstream, worker: ServiceProcess
) -> None:
    lead_id = await send_lead(upstream)
    outputs = await expired(upstream, lead_id)
    await sweeps_later([worker], quiet_period())

    assert outputs.event_types(lead_id) == ["lead.received", "lead.expired"]
    [told] = templates(outputs, lead_id, "lead_expired")
    assert told["recipient"]["kind"] == "referrer"
    reminders = templates(outputs, lead_id, "expiry_reminder")
    assert [r["recipient"]["kind"] for r in reminders] == ["partner", "partner"]
    left = [_seconds_of(r["data"]["remaining"]) for r in reminders]
    assert 6 >= left[0] > left[1] > 0, left
    # Each deadline under one id, in order (a slow pipeline may see one re-sent).
    sent = {c["message_id"]: (c["command"], c.get("remaining")) for c in outputs.commands(lead_id)}
    assert list(sent.values()) == [("remind", "PT6S"), ("remind", "PT3S"), ("expire", None)]
    expiry = outputs.events(lead_id)[-1]["lead"]
    assert (expiry["stage"], expiry["outcome"]) == ("archived", "expired")
    assert datetime.fromisoformat(outputs.events(lead_id)[-1]["occurred_at"]) >= (
        datetime.fromisoformat(expiry["respond_by"])
    )


async def test_a_reopened_lead_expires_again_when_left_unanswered_and_says_who_did_what(
    upstream: Upstream,
) -> None:
    lead_id = await send_lead(upstream)
    await expired(upstream, lead_id)
    await upstream.send(Topic.INBOUND, messages.reopen(lead_id, reason="expired_in_error"))
    outputs = await upstream.until(
        lambda o: o.event_types(lead_id).count("lead.expired") == 2,
        timeout=40,
        what="expired again",
    )
    events = outputs.events(lead_id)
    assert [e["type"] for e in events] == [
        "lead.received",
        "lead.expired",
        "lead.reopened",
        "lead.expired",
    ]
    assert [e["actor"]["kind"] for e in events] == ["referrer", "system", "referrer", "system"]
    assert (events[2]["reopen_count"], events[2]["from_outcome"]) == (1, "expired")
    assert len(templates(outputs, lead_id, "lead_reopened")) == 1


async def test_a_lead_accepted_before_its_deadline_never_expires(upstream: Upstream) -> None:
    accepted = await send_lead(upstream)
    # Leads and actions travel on different topics: answer once the lead is in.
    await upstream.until(lambda o: "lead.received" in o.event_types(accepted), what="received")
    await upstream.send(Topic.PARTNER_ACTIONS, messages.action(accepted, "accept"))
    await upstream.until(lambda o: "lead.accepted" in o.event_types(accepted), what="accepted")
    # A lead received after it, left alone: once it has expired, the first one's
    # deadline has long passed too.
    later = await send_lead(upstream)
    outputs = await expired(upstream, later)

    assert outputs.event_types(accepted) == ["lead.received", "lead.accepted"]
    assert templates(outputs, accepted, "expiry_reminder") == []
    assert outputs.commands(accepted) == []


async def test_a_hot_lead_cools_down_once_and_the_partner_is_told(
    upstream: Upstream, worker: ServiceProcess
) -> None:
    lead_id = await send_lead(upstream, contact_requested=True)
    outputs = await upstream.until(
        lambda o: "lead.contact_request_aged" in o.event_types(lead_id), what="cooled down"
    )
    await sweeps_later([worker], quiet_period())

    aged = [e for e in outputs.events(lead_id) if e["type"] == "lead.contact_request_aged"]
    assert len(aged) == 1
    assert (aged[0]["lead"]["hot"], aged[0]["lead"]["stage"]) == (False, "received")
    [aging] = templates(outputs, lead_id, "contact_request_aging")
    assert aging["recipient"]["kind"] == "partner"


def _seconds_of(duration: str) -> float:
    return TypeAdapter(timedelta).validate_python(duration).total_seconds()


# --- several workers, and workers that die ---------------------------------------------


@pytest.fixture(scope="module")
def replicated_service(servers: Servers) -> Iterator[ServiceProcess]:
    with service_running(deadline_settings(servers)) as service:
        yield service


@pytest.fixture
async def replica_upstream(replicated_service: ServiceProcess) -> AsyncIterator[Upstream]:
    async with upstream_of(replicated_service) as client:
        yield client


def assert_expired_once(outputs: Outputs, lead_ids: list[str]) -> None:
    for lead_id in lead_ids:
        assert outputs.event_types(lead_id).count("lead.expired") == 1, lead_id
        assert len(templates(outputs, lead_id, "lead_expired")) == 1, lead_id
        expiries = {c["message_id"] for c in outputs.commands(lead_id) if c["command"] == "expire"}
        assert len(expiries) == 1, lead_id


async def test_two_workers_expire_each_lead_exactly_once(
    replicated_service: ServiceProcess, replica_upstream: Upstream
) -> None:
    settings = replicated_service.settings
    with scheduler_running(settings, "a") as a, scheduler_running(settings, "b") as b:
        leads = [await send_lead(replica_upstream, contact_requested=i % 2 == 0) for i in range(20)]
        outputs = await expired(replica_upstream, *leads)
        await sweeps_later([a, b], quiet_period())

    assert_expired_once(outputs, leads)
    for lead_id in leads[::2]:
        assert outputs.event_types(lead_id).count("lead.contact_request_aged") == 1


async def test_a_killed_leader_is_replaced_and_no_deadline_is_missed(
    replicated_service: ServiceProcess, replica_upstream: Upstream
) -> None:
    settings = replicated_service.settings
    with scheduler_running(settings, "c") as c, scheduler_running(settings, "d") as d:
        leader = await sweeping_leader([c, d])
        survivor = d if leader is c else c
        leads = [await send_lead(replica_upstream) for _ in range(15)]
        leader.kill()
        outputs = await expired(replica_upstream, *leads)
        await sweeps_later([survivor], quiet_period())

    assert_expired_once(outputs, leads)
    assert sweeps(survivor) > 0


async def test_a_worker_stopped_past_a_whole_window_catches_up_when_it_returns(
    replicated_service: ServiceProcess, replica_upstream: Upstream
) -> None:
    settings = replicated_service.settings
    with scheduler_running(settings, "e"):
        pass  # started, then stopped: nothing sweeps while the leads wait
    leads = [await send_lead(replica_upstream, contact_requested=True) for _ in range(10)]
    outputs = await replica_upstream.until(
        lambda o: all(o.event_types(lead) == ["lead.received"] for lead in leads), what="received"
    )
    last_deadline = max(
        datetime.fromisoformat(outputs.events(lead)[0]["lead"]["respond_by"]) for lead in leads
    )
    while datetime.now(last_deadline.tzinfo) < last_deadline + timedelta(seconds=1):
        await asyncio.sleep(0.1)
    assert all(outputs.event_types(lead) == ["lead.received"] for lead in leads)

    with scheduler_running(settings, "f") as returned:
        outputs = await expired(replica_upstream, *leads)
        await sweeps_later([returned], quiet_period())

    assert_expired_once(outputs, leads)
    for lead_id in leads:
        assert outputs.event_types(lead_id).count("lead.contact_request_aged") == 1
        # Reminders that fell due while nobody swept are not sent after the deadline.
        assert templates(outputs, lead_id, "expiry_reminder") == []
