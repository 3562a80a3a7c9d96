"""Servers taken away mid-stream and brought back: the broker frozen, the database
stopped and started again, the database frozen. Every lead still ends won, nothing
is published twice under another id, nothing is parked, and the service never exits.

Each outage lasts LEADS_TEST_CHAOS_SECONDS (8 s in `make test`; 30 s is the figure
users ask about: the code path is the same).

The servers are the embedded ones (SIGSTOP, SIGCONT, a stop and a start on the same
port), or containers when LEADS_TEST_SERVERS names them (`docker pause`, `unpause`,
`stop` and `start` of the same container).
"""

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import pytest

from contracts.topics import Topic
from services.dev_servers import Child, EmbeddedServers, Servers
from tests import messages
from tests.e2e.drivers import Outputs, Upstream, service_running, upstream_of
from tests.servers import CONTAINERS, container_cluster, isolated_settings, servers_choice

OUTAGE_S = float(os.environ.get("LEADS_TEST_CHAOS_SECONDS", "8"))
LEADS = 60


class Freezable(Protocol):
    def pause(self) -> None: ...

    def resume(self) -> None: ...


class Restartable(Freezable, Protocol):
    def stop(self) -> None: ...

    def restart(self) -> None:
        """Start it again after `stop`, at the same address, with the data it had."""


class Cluster(Protocol):
    """Servers a test takes away and brings back."""

    @property
    def servers(self) -> Servers: ...

    @property
    def kafka(self) -> Freezable: ...

    @property
    def mongodb(self) -> Restartable: ...


@dataclass(frozen=True)
class Embedded:
    servers: Servers
    kafka: Child
    mongodb: Child


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Servers of this module's own; the embedded database on disk so it survives a
    restart (a stopped container keeps its data)."""
    security = CONTAINERS.get(servers_choice())
    if security is not None:
        with container_cluster(security) as containers:
            yield containers
        return
    with EmbeddedServers(mongo_storage=str(tmp_path_factory.mktemp("mongodb"))) as started:
        assert started.kafka is not None and started.mongodb is not None
        yield Embedded(started.servers, started.kafka, started.mongodb)


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


async def outage(cluster: Cluster, fault: str) -> None:
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
async def test_every_lead_ends_won_through_an_outage(cluster: Cluster, fault: str) -> None:
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
