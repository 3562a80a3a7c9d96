"""Stale deals end to end: `leads serve` and `leads scheduler` on real servers, with
idle windows of seconds, observed only through Kafka topics."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

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
    sweeps_later,
    upstream_of,
)
from tests.servers import isolated_settings

NUDGE = timedelta(seconds=4)
ESCALATE = timedelta(seconds=8)
AUTO_CLOSE = timedelta(seconds=30)
CLOSE_DATE_PASSES_IN = timedelta(seconds=25)
"""From the service's start: close dates are days, so the grace puts today's in reach."""
ALERTS = ["deal_nudge", "deal_escalate", "close_date_passed", "auto_close"]


def stale_deal_settings(servers: Servers) -> Settings:
    now = datetime.now(UTC)
    since_midnight = now - now.replace(hour=0, minute=0, second=0, microsecond=0)
    return sweeping_fast(isolated_settings(servers, "stale")).model_copy(
        update={
            "deal_nudge_after": NUDGE,
            "deal_escalate_after": ESCALATE,
            "close_date_grace": since_midnight + CLOSE_DATE_PASSES_IN,
            "deal_auto_close_after": AUTO_CLOSE,
        }
    )


@pytest.fixture(scope="module")
def stale_service(servers: Servers) -> Iterator[ServiceProcess]:
    with service_running(stale_deal_settings(servers)) as service:
        yield service


@pytest.fixture
async def upstream(stale_service: ServiceProcess) -> AsyncIterator[Upstream]:
    async with upstream_of(stale_service) as client:
        yield client


async def accepted_deal(upstream: Upstream, closes_today: bool = False) -> str:
    lead = messages.inbound()
    lead_id = str(lead["lead_id"])
    await upstream.send(Topic.INBOUND, lead)
    await upstream.until(lambda o: "lead.received" in o.event_types(lead_id), what="received")
    deal = {**messages.DEAL}
    if closes_today:
        deal["estimated_close_date"] = datetime.now(UTC).date().isoformat()
    await upstream.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "accept", deal=deal))
    await upstream.until(lambda o: "lead.accepted" in o.event_types(lead_id), what="accepted")
    return lead_id


def alerts(outputs: Outputs, lead_id: str) -> list[tuple[str, str | None]]:
    """The deal's alerts as published, in order: (event, idle step)."""
    return [
        (e["type"], e.get("step"))
        for e in outputs.events(lead_id)
        if e["type"] in ("lead.deal_idle", "lead.close_date_passed", "lead.lost")
    ]


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def first(outputs: Outputs, lead_id: str, kind: str) -> dict[str, Any]:
    return next(e for e in outputs.events(lead_id) if e["type"] == kind)


async def test_an_untouched_deal_is_nudged_escalated_flagged_and_closed_once_each_in_order(
    stale_service: ServiceProcess, upstream: Upstream
) -> None:
    with scheduler_running(stale_service.settings, "x") as worker:
        lead_id = await accepted_deal(upstream, closes_today=True)
        outputs = await upstream.until(
            lambda o: "lead.lost" in o.event_types(lead_id), timeout=90, what="auto-closed"
        )
        await sweeps_later([worker], quiet_period())

    accepted = at(first(outputs, lead_id, "lead.accepted"))
    close_date = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    due = {
        ("lead.deal_idle", "nudge"): accepted + NUDGE,
        ("lead.deal_idle", "escalate"): accepted + ESCALATE,
        ("lead.close_date_passed", None): close_date + stale_service.settings.close_date_grace,
        ("lead.lost", None): accepted + AUTO_CLOSE,
    }
    assert alerts(outputs, lead_id) == sorted(due, key=due.__getitem__)
    lost = first(outputs, lead_id, "lead.lost")
    assert (lost["actor"]["kind"], lost["lead"]["decline_reason"]) == ("system", "no_update")
    told = [n for n in outputs.notifications(lead_id) if n["template"] == "deal_idle"]
    assert [n["data"]["step"] for n in told] == ["nudge", "escalate"]
    assert told[-1]["recipient"]["role"] == "mpn_partner_admin"
    emitted = {c["message_id"]: c["command"] for c in outputs.commands(lead_id)}
    assert sorted(emitted.values()) == sorted(ALERTS)  # one command each, never two


async def test_logged_work_restarts_the_clock_and_a_snooze_pauses_it(
    stale_service: ServiceProcess, upstream: Upstream
) -> None:
    with scheduler_running(stale_service.settings, "y"):
        worked, snoozed = await accepted_deal(upstream), await accepted_deal(upstream)
        await upstream.until(
            lambda o: ("lead.deal_idle", "nudge") in alerts(o, worked), what="first nudge"
        )
        note = {"kind": "note", "summary": "Still active"}
        await upstream.send(Topic.PARTNER_ACTIONS, messages.action(worked, "log_activity", **note))
        until = datetime.now(UTC) + timedelta(seconds=6)
        await upstream.send(
            Topic.PARTNER_ACTIONS, messages.action(snoozed, "snooze", until=until.isoformat())
        )
        outputs = await upstream.until(
            lambda o: (
                alerts(o, worked).count(("lead.deal_idle", "nudge")) == 2
                and ("lead.deal_idle", "nudge") in alerts(o, snoozed)
            ),
            timeout=60,
            what="nudged again after the work, and after the snooze",
        )

    activity = first(outputs, worked, "lead.activity_logged")
    second_nudge = [e for e in outputs.events(worked) if e.get("step") == "nudge"][1]
    assert at(second_nudge) >= at(activity) + NUDGE
    assert alerts(outputs, worked)[:2] == [("lead.deal_idle", "nudge")] * 2  # no escalation
    paused = first(outputs, snoozed, "lead.snoozed")["lead"]
    nudge = next(e for e in outputs.events(snoozed) if e.get("step") == "nudge")
    assert datetime.fromisoformat(paused["idle_since"]) > at(
        first(outputs, snoozed, "lead.accepted")
    )
    assert at(nudge) >= datetime.fromisoformat(paused["idle_since"]) + NUDGE


async def test_a_killed_scheduler_replica_doubles_no_alert(
    stale_service: ServiceProcess, upstream: Upstream
) -> None:
    settings = stale_service.settings
    with scheduler_running(settings, "a") as a, scheduler_running(settings, "b") as b:
        leader = await sweeping_leader([a, b])
        survivor = b if leader is a else a
        deals = [await accepted_deal(upstream) for _ in range(6)]
        await upstream.until(
            lambda o: any(alerts(o, deal) for deal in deals), what="the first alert"
        )
        leader.kill()
        outputs = await upstream.until(
            lambda o: all("lead.lost" in o.event_types(deal) for deal in deals),
            timeout=90,
            what="every deal auto-closed",
        )
        await sweeps_later([survivor], quiet_period())

    for deal in deals:
        assert alerts(outputs, deal) == [
            ("lead.deal_idle", "nudge"),
            ("lead.deal_idle", "escalate"),
            ("lead.lost", None),
        ], deal
