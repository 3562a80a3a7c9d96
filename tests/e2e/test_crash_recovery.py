"""The service killed with SIGKILL several times in the middle of a stream, then restarted.

Leads and their actions are published back to back, as upstream systems and
partners do: after a restart the consumer may read an accept before its lead
(the topics are read side by side). The accept waits for its lead, and every
lead still ends won, each transition published once.
"""

import asyncio
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from contracts.topics import Topic
from services.lifecycle.adapters.mongo import connect
from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.drivers import Outputs, ServiceProcess, Upstream, service_running, upstream_of

LEADS = 150
KILLS_AT = (0.25, 0.6)
"""Share of the leads won (in the store) when each SIGKILL comes. A kill lands in a
batch's transaction more often than not: the server keeps that transaction, and
its writes, until its lifetime ends (60 s on mongod and SecantusDB), and the next
batches of its leads retry until then. Two kills show it and keep the test short."""


@pytest.fixture
def service(settings: Settings) -> Iterator[ServiceProcess]:
    # Restarts take seconds: an action must wait for its lead longer than that. Small
    # batches make progress visible step by step, so the kills land mid-stream. A
    # killed replica holds the group until the broker gives up on it (Tansu waits the
    # rebalance timeout, which the hand-over bounds; Kafka the session timeout).
    patient = settings.model_copy(
        update={
            "early_action_grace": timedelta(minutes=10),
            "batch_max": 5,
            "kafka_max_poll_records": 20,
            "shutdown_grace": timedelta(seconds=2),
            "kafka_session_timeout": timedelta(seconds=3),
        }
    )
    with service_running(patient) as process:
        yield process


@pytest.fixture
async def client(service: ServiceProcess) -> AsyncIterator[Upstream]:
    async with upstream_of(service) as upstream:
        yield upstream


def count(outputs: Outputs, type_: str, lead_ids: list[str]) -> int:
    return sum(1 for lead_id in lead_ids if type_ in outputs.event_types(lead_id))


async def committed_won(settings: Settings, lead_ids: list[str], at_least: float) -> int:
    """Polls the store until at least `at_least` of the leads are won there: the
    service's own progress (the events reach a reader in fetches, a moment later,
    while the service takes the whole stream in a second or two)."""
    client = connect(settings.mongodb_uri)
    query = {"_id": {"$in": lead_ids}, "outcome": "won"}
    try:
        deadline = time.monotonic() + 60
        while (won := await client[settings.mongodb_database]["leads"].count_documents(query)) < (
            at_least
        ):
            assert time.monotonic() < deadline, f"only {won} won"
            await asyncio.sleep(0.01)
    finally:
        await client.close()
    return won


@pytest.mark.timeout(360)
async def test_killed_mid_stream_every_lead_ends_once(
    service: ServiceProcess, client: Upstream
) -> None:
    run = uuid.uuid4().hex[:6]
    lead_ids = [f"crash-{run}-{n}" for n in range(LEADS)]
    for lead_id in lead_ids:
        await client.send(Topic.INBOUND, messages.inbound(lead_id=lead_id))
    for lead_id in lead_ids:
        await client.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "accept"))
        await client.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "won"))

    kills = 0
    for share in KILLS_AT:
        if await committed_won(service.settings, lead_ids, share * LEADS) < LEADS:
            service.kill()
            kills += 1
            service.start()
    assert kills >= 2, "the stream ended before the service could be killed mid-way"
    outputs = await client.until(
        lambda o: count(o, "lead.won", lead_ids) == LEADS, timeout=120, what="all won"
    )

    by_lead = outputs.event_ids()
    contents: dict[str, set[bytes]] = defaultdict(set)
    for record in outputs.records:
        value: dict[str, Any] = json.loads(record.value)
        if record.topic.endswith(Topic.EVENTS.value) and value["lead_id"] in lead_ids:
            contents[value["event_id"]].add(record.value)
    for lead_id in lead_ids:
        ids = by_lead[lead_id]
        assert sorted(ids) == ["lead.accepted", "lead.received", "lead.won"], lead_id
        # A re-published event is the very same event: one id, one content.
        assert all(len(event_ids) == 1 for event_ids in ids.values()), (lead_id, ids)
    assert all(len(versions) == 1 for versions in contents.values())
    assert outputs.values(Topic.REJECTED) == []
