"""Servers taken away mid-stream and brought back: the broker frozen, the database
stopped and started again, the database frozen. Every lead still ends won, nothing
is published twice under another id, nothing is parked, and the service never exits.

Each outage lasts LEADS_TEST_CHAOS_SECONDS (8 s in `make test`; 30 s is the figure
users ask about: the code path is the same).
"""

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from contracts.topics import Topic
from services.dev_servers import EmbeddedServers
from tests import messages
from tests.conftest import isolated_settings
from tests.e2e.conftest import Outputs, Upstream, service_running, upstream_of

OUTAGE_S = float(os.environ.get("LEADS_TEST_CHAOS_SECONDS", "8"))
LEADS = 60


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServers]:
    """Servers of this module's own, the database on disk so it survives a restart."""
    with EmbeddedServers(mongo_storage=str(tmp_path_factory.mktemp("mongodb"))) as started:
        yield started


def won(lead_ids: list[str]) -> Callable[[Outputs], int]:
    return lambda outputs: sum("lead.won" in outputs.event_types(i) for i in lead_ids)


async def stream(upstream: Upstream, lead_ids: list[str]) -> None:
    """Leads, then their accepts and wins, back to back, at a steady pace."""
    for lead_id in lead_ids:
        await upstream.send(Topic.INBOUND, messages.inbound(lead_id=lead_id))
        await asyncio.sleep(0.02)
    for lead_id in lead_ids:
        await upstream.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "accept"))
        await upstream.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "won"))
        await asyncio.sleep(0.02)


async def outage(cluster: EmbeddedServers, fault: str) -> None:
    assert cluster.kafka is not None and cluster.mongodb is not None
    if fault == "broker frozen":
        cluster.kafka.pause()
        await asyncio.sleep(OUTAGE_S)  # how long the broker is away: the test's input
        cluster.kafka.resume()
    elif fault == "database frozen":
        cluster.mongodb.pause()
        await asyncio.sleep(OUTAGE_S)
        cluster.mongodb.resume()
    else:
        cluster.mongodb.stop()
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(cluster.mongodb.restart)


@pytest.mark.parametrize("fault", ["broker frozen", "database restarted", "database frozen"])
async def test_every_lead_ends_won_through_an_outage(cluster: EmbeddedServers, fault: str) -> None:
    settings = isolated_settings(cluster.servers, "chaos")
    lead_ids = [f"chaos-{uuid.uuid4().hex[:6]}-{n}" for n in range(LEADS)]
    with service_running(settings) as service:
        async with upstream_of(service) as upstream:
            publishing = asyncio.create_task(stream(upstream, lead_ids))
            await upstream.until(lambda o: won(lead_ids)(o) >= 5, timeout=60, what="a few won")
            assert won(lead_ids)(upstream.outputs) < LEADS, "the stream ended before the outage"
            await outage(cluster, fault)
            await publishing
            await upstream.until(
                lambda o: won(lead_ids)(o) == LEADS, timeout=120 + OUTAGE_S, what="all won"
            )
            outputs = await upstream.settled(timeout=120)
        assert service.process is not None and service.process.poll() is None  # never exited
    events = outputs.event_ids()
    for lead_id in lead_ids:
        assert {t: len(ids) for t, ids in events[lead_id].items()} == {
            "lead.received": 1,
            "lead.accepted": 1,
            "lead.won": 1,
        }, lead_id
    assert outputs.values(Topic.DEAD_LETTER) == []
    assert not [r for r in outputs.values(Topic.REJECTED) if r["reason"] == "internal_error"]
    assert not [line for line in service.lines if "parked" in line]
