"""`leads.state` end to end: a connector that starts after 200 leads went through their
lifecycle rebuilds exactly what the read API holds, with the example consumer
(examples/lead_table.py). Tansu does not compact: the fold keeps each lead's latest,
and drops a lead whose tombstone came (its retention ended)."""

from datetime import timedelta
from typing import Any

from contracts.topics import Topic
from examples.lead_table import LeadTable, catch_up, load_state
from tests import messages
from tests.e2e.drivers import (
    Outputs,
    ServiceProcess,
    Upstream,
    leads_cli,
    scheduler_running,
    sweeping_fast,
)

LEADS = 200
ENDED_BY = {0: "lead.accepted", 1: "lead.declined", 2: "lead.won", 3: "lead.favorited"}
"""Each lead's last event, by its number modulo 4."""


async def lived(upstream: Upstream, partner: str) -> list[str]:
    """LEADS leads received, then accepted, declined, won or made a favorite."""
    sent = [messages.inbound(partner_id=partner) for _ in range(LEADS)]
    for lead in sent:
        await upstream.send(Topic.INBOUND, lead)
    ids = [str(lead["lead_id"]) for lead in sent]
    await upstream.until(
        lambda o: all("lead.received" in o.event_types(i) for i in ids), timeout=90, what="in"
    )
    for n, lead_id in enumerate(ids):
        for name in _actions(n):
            await upstream.send(
                Topic.PARTNER_ACTIONS, messages.action(lead_id, name, partner_id=partner)
            )
    await upstream.until(
        lambda o: all(ENDED_BY[n % 4] in o.event_types(i) for n, i in enumerate(ids)),
        timeout=120,
        what="every lead's last change",
    )
    return ids


def _actions(n: int) -> list[str]:
    return [["accept"], ["decline"], ["accept", "won"], ["favorite"]][n % 4]


async def table_of_a_connector_joining_now(upstream: Upstream) -> LeadTable:
    table = LeadTable()
    settings = upstream.settings
    state, events = (t.named(settings.topic_prefix) for t in (Topic.STATE, Topic.EVENTS))
    await load_state(settings.kafka_bootstrap_servers, state, table)
    consumer = await catch_up(settings.kafka_bootstrap_servers, events, table)
    await consumer.stop()
    return table


async def as_the_read_api_has_it(upstream: Upstream, partner: str, lead_id: str) -> Any:
    detail = (await upstream.api.get(f"/v1/leads/{lead_id}", partner)).json()
    return {k: v for k, v in detail.items() if k not in ("history", "undo_until")}


async def test_a_connector_joining_late_rebuilds_every_lead_as_stored(upstream: Upstream) -> None:
    partner = messages.new_id("partner")
    await upstream.profile(messages.profile(partner))
    ids = await lived(upstream, partner)

    table = await table_of_a_connector_joining_now(upstream)

    for lead_id in ids:
        assert table.leads[lead_id] == await as_the_read_api_has_it(upstream, partner, lead_id)
    states = _states(upstream.outputs, ids[2])
    assert [s["version"] for s in states] == [1, 2, 3]  # one state per change, in order


async def test_republished_states_fill_the_topic_with_each_leads_latest(
    upstream: Upstream,
) -> None:
    partner, other = messages.new_id("partner"), messages.new_id("partner")
    for each in (partner, other):
        await upstream.profile(messages.profile(each))
    mine = [messages.inbound(partner_id=partner) for _ in range(3)]
    theirs = messages.inbound(partner_id=other)
    for lead in (*mine, theirs):
        await upstream.send(Topic.INBOUND, lead)
    accepted = str(mine[0]["lead_id"])
    await upstream.until(lambda o: "lead.received" in o.event_types(accepted), what="in")
    await upstream.send(
        Topic.PARTNER_ACTIONS, messages.action(accepted, "accept", partner_id=partner)
    )
    ids = [str(lead["lead_id"]) for lead in mine]
    before = await upstream.until(
        lambda o: (
            "lead.accepted" in o.event_types(accepted)
            and all(_states(o, i) for i in (*ids, str(theirs["lead_id"])))
        ),
        what="each lead's state",
    )
    counts = {i: len(_states(before, i)) for i in (*ids, str(theirs["lead_id"]))}

    ran = leads_cli(upstream.settings, "state", "republish", "--partner", partner)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("3 lead state(s) in the outbox")

    after = await upstream.until(
        lambda o: all(len(_states(o, i)) == counts[i] + 1 for i in ids), what="republished"
    )
    for lead_id in ids:
        *_, latest, again = _states(after, lead_id)
        assert again == latest  # the same state, after it: what compaction keeps is current
    assert len(_states(after, str(theirs["lead_id"]))) == 1  # only the partner named


async def test_a_lead_past_its_retention_leaves_the_state_topic_and_the_connectors_table(
    running_service: ServiceProcess, upstream: Upstream
) -> None:
    partner = messages.new_id("partner")
    await upstream.profile(messages.profile(partner))
    ended, open_ = (messages.inbound(partner_id=partner) for _ in range(2))
    for lead in (ended, open_):
        await upstream.send(Topic.INBOUND, lead)
    gone, kept = str(ended["lead_id"]), str(open_["lead_id"])
    await upstream.until(lambda o: "lead.received" in o.event_types(kept), what="received")
    await upstream.send(Topic.PARTNER_ACTIONS, messages.action(gone, "decline", partner_id=partner))
    await upstream.until(lambda o: "lead.declined" in o.event_types(gone), what="declined")

    retention = {"lead_retention": timedelta(seconds=1)}
    with scheduler_running(sweeping_fast(running_service.settings).model_copy(update=retention)):
        await upstream.until(lambda o: gone in o.tombstones(Topic.STATE), what="a tombstone")

    table = await table_of_a_connector_joining_now(upstream)
    assert gone not in table.leads and kept in table.leads
    assert upstream.outputs.tombstones(Topic.STATE).count(gone) == 1
    assert (await upstream.api.get(f"/v1/leads/{gone}", partner)).status_code == 404


def _states(outputs: Outputs, lead_id: str) -> list[dict[str, Any]]:
    return [s for s in outputs.values(Topic.STATE) if s["lead_id"] == lead_id]
